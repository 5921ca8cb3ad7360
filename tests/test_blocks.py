"""HFP, SDP and their pieces against straightforward oracles written here."""

import math
import pickle
import re

import pytest
import torch
import torch.nn.functional as F
import torch_dct

from hsfpn_yolo.nn import HFP, SDP, ConvBNAct, DCTHighPass, fuse_blocks, group_count
from hsfpn_yolo.nn import highpass as hp_module
from hsfpn_yolo.nn.pooling import pooled_relu_sum
from hsfpn_yolo.nn.tracing import exporting
from hsfpn_yolo.nn.sdp import from_blocks, to_blocks


def oracle_highpass(x: torch.Tensor, ratio=(0.25, 0.25)) -> torch.Tensor:
    """DCT -> zero the low-frequency corner -> IDCT, with torch_dct (FFT based)."""
    h, w = x.shape[-2:]
    freq = torch_dct.dct_2d(x.double(), norm="ortho")
    freq[..., : math.floor(ratio[0] * h), : math.floor(ratio[1] * w)] = 0
    return torch_dct.idct_2d(freq, norm="ortho").to(x.dtype)


@pytest.mark.parametrize("size", [(8, 8), (20, 20), (7, 13), (40, 24), (3, 5), (1, 9), (80, 80)])
@pytest.mark.parametrize("ratio", [0.25, (0.5, 0.1)])
def test_highpass_equals_torch_dct(size, ratio):
    x = torch.randn(2, 3, *size)
    hp = DCTHighPass(ratio)
    torch.testing.assert_close(hp(x), oracle_highpass(x, hp.ratio), rtol=0, atol=1e-5)


def test_highpass_removes_exactly_the_low_corner():
    x = torch.randn(1, 2, 16, 12)
    freq = torch_dct.dct_2d(DCTHighPass(0.25)(x).double(), norm="ortho")
    assert freq[..., :4, :3].abs().max() < 1e-5  # masked corner is gone
    torch.testing.assert_close(
        freq[..., 4:, :], torch_dct.dct_2d(x.double(), norm="ortho")[..., 4:, :], atol=1e-5, rtol=0
    )


def test_highpass_uses_no_fft(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("FFT called on the hot path")

    for name in ("fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn"):
        monkeypatch.setattr(torch.fft, name, forbidden)
    HFP(32, dct=True)(torch.randn(1, 32, 24, 24)).sum().backward()


def test_highpass_basis_is_cached_and_never_a_parameter_or_buffer():
    hp_module._cached_basis.cache_clear()
    m = HFP(32, dct=True)
    x = torch.randn(2, 32, 24, 16)
    m(x)
    misses = hp_module._cached_basis.cache_info().misses
    m(x)
    m(x)
    info = hp_module._cached_basis.cache_info()
    assert info.misses == misses and info.hits >= 4  # same size: no new basis
    assert not any("basis" in k or "highpass" in k for k in m.state_dict())
    # A pickled (checkpointed) block carries no size-dependent tensor.
    assert len(pickle.dumps(m)) < len(pickle.dumps(HFP(32, dct=True))) + 512


def test_basis_built_in_inference_mode_still_trains():
    hp_module._cached_basis.cache_clear()
    m = HFP(32, dct=True)
    with torch.inference_mode():
        m(torch.randn(1, 32, 20, 20))  # e.g. a predict() before training builds the cached basis
    x = torch.randn(1, 32, 20, 20, requires_grad=True)
    m(x).sum().backward()
    grad, x.grad = x.grad, None
    hp_module._cached_basis.cache_clear()  # the same step with a basis built for training
    m(x).sum().backward()
    torch.testing.assert_close(grad, x.grad, rtol=0, atol=0)


def oracle_pooled_relu_sum(x: torch.Tensor, p: int, mode: str) -> torch.Tensor:
    """Σ over the p x p grid of relu(adaptive pooling), with PyTorch's adaptive pooling."""
    pool = F.adaptive_max_pool2d if mode == "max" else F.adaptive_avg_pool2d
    return pool(x, p).relu().sum((2, 3), keepdim=True)


@pytest.mark.parametrize("size", [(16, 16), (20, 12), (13, 7), (48, 80), (12, 20)])
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooling_equals_adaptive_pooling_in_eager_and_export_formulations(size, mode):
    x = torch.randn(2, 3, *size)
    expected = oracle_pooled_relu_sum(x, 8, mode)
    torch.testing.assert_close(pooled_relu_sum(x, 8, mode), expected, rtol=1e-5, atol=1e-5)
    with exporting():  # the bin-matrix formulation every export uses, here on concrete sizes
        torch.testing.assert_close(pooled_relu_sum(x, 8, mode), expected, rtol=1e-5, atol=1e-5)


class PooledRelu(torch.nn.Module):
    """`pooled_relu_sum` as a module, for tracing."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x):
        return pooled_relu_sum(x, 8, self.mode)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_traced_pooling_is_exact_at_sizes_other_than_the_traced_one(mode):
    traced = torch.jit.trace(PooledRelu(mode), torch.randn(1, 3, 16, 16))  # 16 = 2 x 8: plain pooling in eager
    for size in [(16, 16), (20, 12), (13, 7), (48, 80)]:  # bins of 2.5 and 1.5: they overlap
        x = torch.randn(2, 3, *size)
        torch.testing.assert_close(traced(x), oracle_pooled_relu_sum(x, 8, mode), rtol=1e-5, atol=1e-5)


def unportable_ops(graph: torch._C.Graph) -> list[str]:
    """Return the nodes of a traced graph that not every converter carries: >4-D tensors, batch-axis concats or splits,
    adaptive pooling."""
    torch._C._jit_pass_inline(graph)
    found = []
    for node in graph.nodes():
        kind = node.kind()
        ranks = [o.type().dim() for o in node.outputs() if isinstance(o.type(), torch._C.TensorType)]
        if any(r is not None and r > 4 for r in ranks):
            found.append(f"{kind} gives a {max(ranks)}-D tensor")
        if "adaptive" in kind:
            found.append(kind)
        if kind in ("aten::cat", "aten::slice", "aten::split", "aten::chunk", "aten::tensor_split"):
            dim = next(i for i in list(node.inputs())[1:2])
            if dim.node().kind() == "prim::Constant" and dim.toIValue() == 0:
                found.append(f"{kind} along the batch axis")
    return found


class Pair(torch.nn.Module):
    """SDP with its two inputs as two arguments, for tracing."""

    def __init__(self, sdp: SDP):
        super().__init__()
        self.sdp = sdp

    def forward(self, low, high):
        return self.sdp([low, high])


@pytest.mark.parametrize("block", ["hfp_dct", "hfp", "sdp_half", "sdp_same"])
def test_blocks_trace_to_ops_every_converter_carries(block):
    x = torch.randn(2, 32, 24, 40)  # 24 and 40 are not multiples of the pooling grid
    if block.startswith("sdp"):
        high = x if block == "sdp_same" else torch.randn(2, 32, 12, 20)
        traced = torch.jit.trace(Pair(SDP(32, 4).eval()), (x, high))
    else:
        traced = torch.jit.trace(HFP(32, dct=block == "hfp_dct").eval(), x)
    assert unportable_ops(traced.graph) == []
    # A no-op check would pass on any graph: the old 6-D block split and batch-axis concat are found.
    legacy = torch.jit.trace(lambda t: torch.cat((t, t)).view(4, 32, 2, 12, 2, 20).sum(3), x)
    assert len(unportable_ops(legacy.graph)) == 3


def test_hfp_dct_matches_spec_formula():
    torch.manual_seed(0)
    c = 32
    m = HFP(c, dct=True, patch=4).eval()
    x = torch.randn(2, c, 12, 20)
    h = oracle_highpass(x)

    def gate(v):
        return F.relu(m.g1.conv(v))

    a = F.relu(F.adaptive_max_pool2d(h, 4)).sum((2, 3), keepdim=True)
    b = F.relu(F.adaptive_avg_pool2d(h, 4)).sum((2, 3), keepdim=True)
    w = torch.sigmoid(F.relu(m.g2.conv(gate(a) + gate(b))))
    expected = m.out[1](F.relu(m.out[0].conv(x * h + x * w)))
    torch.testing.assert_close(m(x), expected, rtol=1e-4, atol=1e-5)


def test_hfp_plain_matches_spec_formula():
    torch.manual_seed(0)
    c = 64
    m = HFP(c, dct=False, act=True).eval()
    x = torch.randn(2, c, 10, 6)
    s = x * torch.sigmoid(F.relu(m.spatial.conv(x)))
    a, b = F.adaptive_max_pool2d(x, 1), F.adaptive_avg_pool2d(x, 1)
    w = torch.sigmoid(F.relu(m.g2.conv(F.relu(m.g1.conv(F.relu(a))) + F.relu(m.g1.conv(F.relu(b))))))
    expected = m.out[1](F.relu(m.out[0].conv(s + x * w)))
    torch.testing.assert_close(m(x), expected, rtol=1e-4, atol=1e-5)


def test_act_false_drops_the_relus():
    m = HFP(32, dct=True, act=False)
    assert not any(isinstance(x, torch.nn.ReLU) for x in m.modules())
    assert any(isinstance(x, torch.nn.ReLU) for x in HFP(32, dct=True).modules())


def test_group_count_falls_back_to_largest_divisor():
    assert group_count(64) == 32 and group_count(320) == 32 and group_count(48) == 24 and group_count(20) == 20
    assert group_count(37) == 1
    assert HFP(48).out[1].num_groups == 24


def naive_sdp(m: SDP, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Per-block softmax(q kᵀ / sqrt(d)) k written out with loops; `high` already at `low`'s size."""
    q, k = m.q(low), m.k(high)
    n, d, h, w = q.shape
    g = m.grid
    bh, bw = h // g, w // g
    out = torch.empty_like(q)
    for i in range(g):
        for j in range(g):
            rows, cols = slice(i * bh, (i + 1) * bh), slice(j * bw, (j + 1) * bw)
            qb = q[:, :, rows, cols].flatten(2).transpose(1, 2)  # n, L, d
            kb = k[:, :, rows, cols].flatten(2).transpose(1, 2)
            attn = torch.softmax(qb @ kb.transpose(1, 2) / math.sqrt(d), dim=-1)
            out[:, :, rows, cols] = (attn @ kb).transpose(1, 2).reshape(n, d, bh, bw)
    return out + low


@pytest.mark.parametrize(
    "shape,grid", [((1, 32, 8, 8), 2), ((3, 32, 12, 20), 4), ((2, 64, 16, 8), 8), ((2, 32, 6, 6), 1)]
)
def test_sdp_equals_per_block_attention(shape, grid):
    torch.manual_seed(0)
    m = SDP(shape[1], grid).eval()
    low, high = torch.randn(shape), torch.randn(shape)
    torch.testing.assert_close(m([low, high]), naive_sdp(m, low, high), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm,act", [("gn", True), ("bn", "silu")])
def test_sdp_fused_equals_explicit_attention(norm, act):
    torch.manual_seed(0)
    m = SDP(32, 4, act=act, norm=norm).eval()
    low, high = torch.randn(2, 32, 16, 24), torch.randn(2, 32, 16, 24)
    fused = m([low, high])
    m.fused_attn = False
    torch.testing.assert_close(m([low, high]), fused, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fused, naive_sdp(m, low, high), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size,coarse", [((16, 24), True), ((12, 20), False)])
def test_sdp_coarse_input_at_half_size_equals_upsampled_input(size, coarse):
    """Keys projected before the nearest x2 upsampling equal keys of the upsampled level (GN statistics included);
    with even block sides (16 x 24, grid 4) attention reads them at the coarse size, with odd ones (12 x 20)
    upsampled."""
    torch.manual_seed(0)
    m = SDP([32, 64], 4).eval()  # the coarser level also has more channels
    low, high = torch.randn(2, 32, *size), torch.randn(2, 64, size[0] // 2, size[1] // 2)
    up = F.interpolate(high, scale_factor=2.0, mode="nearest")
    assert m.coarse_keys(high, size) is coarse and m.coarse_keys(up, size) is False
    torch.testing.assert_close(m([low, high]), m([low, up]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(m([low, up]), naive_sdp(m, low, up), rtol=1e-4, atol=1e-5)
    assert m([low, high]).shape == low.shape


@pytest.mark.parametrize("block", ["hfp", "hfp_dct", "sdp"])
def test_gated_blocks_start_as_identity_and_learn(block):
    torch.manual_seed(0)
    x = torch.randn(2, 32, 16, 16)
    if block == "sdp":
        m = SDP(32, 4, act="silu", norm="bn", gate=True)
        run = lambda: m([x, torch.randn(2, 32, 8, 8)])  # noqa: E731
    else:
        m = HFP(32, dct=block == "hfp_dct", act="silu", norm="bn", gate=True)
        run = lambda: m(x)  # noqa: E731
    y = run()
    torch.testing.assert_close(y, x)  # zero-initialised gate: the block is an identity at the start
    y.square().mean().backward()
    assert m.scale.gamma.grad.abs().sum() > 0  # ... and the gate receives a gradient, so it opens during training
    assert not any(isinstance(t, torch.nn.GroupNorm) for t in m.modules())
    assert any(isinstance(t, torch.nn.BatchNorm2d) for t in m.modules())


def test_gate_starting_at_one_is_a_residual_branch():
    torch.manual_seed(0)
    gated, plain = HFP(32, dct=True, norm="bn", act="silu", gate=1.0).eval(), HFP(32, dct=True, norm="bn", act="silu")
    plain.load_state_dict({k: v for k, v in gated.state_dict().items() if not k.startswith("scale.")})
    x = torch.randn(2, 32, 16, 16)
    torch.testing.assert_close(gated(x), x + plain.eval()(x))


def test_block_options_are_checked():
    with pytest.raises(ValueError, match="norm must be one of"):
        HFP(32, norm="ln")
    with pytest.raises(ValueError, match="act must be"):
        SDP(32, 2, act="gelu")
    with pytest.raises(ValueError, match="act must be"):
        HFP(32, act=1)
    with pytest.raises(ValueError, match="gate must be"):
        SDP(32, 2, gate=1.5)


def test_block_layout_round_trip():
    x = torch.randn(2, 5, 12, 8)
    blocks = to_blocks(x, 4)
    assert blocks.shape == (2, 16, 6, 5)
    torch.testing.assert_close(blocks[:, 1, :, 0], x[:, 0, :3, 2:4].flatten(1))  # block (0, 1) of channel 0
    torch.testing.assert_close(from_blocks(blocks, 4, 12, 8), x)


def test_sdp_rejects_sizes_it_cannot_cut():
    m = SDP(32, 4)
    with pytest.raises(ValueError, match="divisible by grid=4"):
        m([torch.randn(1, 32, 10, 8), torch.randn(1, 32, 10, 8)])
    with pytest.raises(ValueError, match="at half of it"):
        m([torch.randn(1, 32, 8, 8), torch.randn(1, 32, 2, 2)])


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Return ||a - b|| / ||b|| in fp32."""
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def autocast_vs_fp32(device: str, dtype: torch.dtype, size: tuple[int, int]):
    """Run HFP(dct) + HFP + SDP in fp32 and under autocast on the same weights; return both outputs and input grads."""
    torch.manual_seed(0)
    blocks = [HFP(64, dct=True), HFP(64), SDP(64, 4)]
    hfp, hfp_plain, sdp = (m.to(device) for m in blocks)
    x = torch.randn(2, 64, *size, device=device)
    runs = []
    for enabled in (False, True):
        xi = x.clone().requires_grad_()
        with torch.autocast(device, dtype=dtype, enabled=enabled):
            y = sdp([hfp(xi), hfp_plain(xi)])
        y.float().square().mean().backward()
        runs.append((y.detach(), xi.grad))
        assert all(torch.isfinite(p.grad).all() for m in blocks for p in m.parameters())
        for m in blocks:
            m.zero_grad(set_to_none=True)
    return runs


# Tolerances as relative norm errors against fp32 (half precision rounds each op at ~2**-9 (bf16) / 2**-11 (fp16)):
# outputs within 2 %, input gradients (attention and norm backward in half precision) within 10 %.
@pytest.mark.parametrize("size", [(20, 12), (40, 40), (24, 36)])
def test_blocks_under_cpu_bf16_autocast_match_fp32(size):
    (y32, g32), (y16, g16) = autocast_vs_fp32("cpu", torch.bfloat16, size)
    assert y16.dtype == torch.bfloat16 and g16.dtype == torch.float32
    assert relative_error(y16, y32) < 0.02
    assert relative_error(g16, g32) < 0.10


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, (0.2, 1.5), (0.1, 0.2, 0.3)])
def test_ratio_outside_unit_interval_is_rejected(bad):
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        HFP(32, dct=True, ratio=bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("size", [(80, 80), (128, 128), (20, 36)])
def test_blocks_under_cuda_fp16_autocast_match_fp32(size):
    (y32, g32), (y16, g16) = autocast_vs_fp32("cuda", torch.float16, size)
    assert y16.dtype == torch.float16 and g16.dtype == torch.float32
    assert relative_error(y16, y32) < 0.02
    assert relative_error(g16, g32) < 0.10


def test_blocks_pickled_by_version_0_1_still_load():
    """Checkpoints pickle whole modules: blocks saved before the norm/gate options must unpickle and compute the same."""
    torch.manual_seed(0)
    hfp, sdp = HFP(32, dct=True).eval(), SDP(32, 2).eval()
    old_hfp, old_sdp = pickle.loads(pickle.dumps(hfp)), pickle.loads(pickle.dumps(sdp))
    conv, norm = old_hfp._modules.pop("out")  # 0.1 layout: `out` conv, separate `norm`, no gate
    old_hfp._modules.update(out=conv, norm=norm)
    del old_hfp.__dict__["scale"], old_sdp.__dict__["scale"], old_sdp.__dict__["fused_attn"]
    x, hi = torch.randn(1, 32, 16, 16), torch.randn(1, 32, 16, 16)
    new_hfp, new_sdp = pickle.loads(pickle.dumps(old_hfp)), pickle.loads(pickle.dumps(old_sdp))
    torch.testing.assert_close(new_hfp(x), hfp(x))
    torch.testing.assert_close(new_sdp([x, hi]), sdp([x, hi]))


@pytest.mark.parametrize("block", ["hfp", "sdp"])
def test_fuse_folds_the_block_batchnorm_and_keeps_the_output(block):
    """`norm: bn` blocks fold their BatchNorm into the convolution (as `model.fuse()` does for YOLO's Conv), with the
    same output; the weights keep the keys of the plain Sequential layout that checkpoints already hold."""
    torch.manual_seed(0)
    m = HFP(32, dct=True, norm="bn", gate=1.0) if block == "hfp" else SDP(32, 2, norm="bn", gate=1.0)
    for bn in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.uniform_(0.5, 1.5)
    m.eval()
    units = [x for x in m.modules() if isinstance(x, ConvBNAct)]
    assert units and all({"0.weight", "1.running_var"} <= set(u.state_dict()) for u in units)
    x = (torch.randn(2, 32, 16, 16),) if block == "hfp" else ([torch.randn(2, 32, 16, 16), torch.randn(2, 32, 8, 8)],)
    expected = m(*x)
    assert fuse_blocks(m) == len(units) and fuse_blocks(m) == 0
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())
    torch.testing.assert_close(m(*x), expected, rtol=1e-4, atol=1e-5)


def test_model_fuse_folds_every_batchnorm_of_an_hsfpn_model():
    from ultralytics import YOLO

    model = YOLO("yolov8n-hsfpn.yaml").model.eval()
    x = torch.rand(1, 3, 64, 64)
    expected = model(x)[0]
    model.fuse(verbose=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(model(x)[0], expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("kind", ["dw", "pw"])
def test_cheaper_output_convs_fuse_and_cost_less(kind):
    """HFP's cheaper output convolutions: a depthwise 3x3 + 1x1 or a 1x1 instead of the full 3x3, fewer weights, the
    same output after `fuse_blocks`, and selectable from a model YAML row."""
    torch.manual_seed(0)
    c = 64
    full, cheap = (
        HFP(c, dct=True, norm="bn", act="silu", gate=1.0),
        HFP(c, dct=True, norm="bn", act="silu", gate=1.0, out=kind),
    )
    weights = {
        n: sum(p.numel() for n_, p in m.out.named_parameters() if n_.endswith("weight") and p.ndim == 4)
        for n, m in (("full", full), ("cheap", cheap))
    }
    assert weights["full"] == 9 * c * c and weights["cheap"] == c * c + (9 * c if kind == "dw" else 0)
    cheap.eval()
    x = torch.randn(2, c, 16, 16)
    expected = cheap(x)
    assert fuse_blocks(cheap) == 1
    torch.testing.assert_close(cheap(x), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="out must be one of"):
        HFP(c, out="3x3")


def test_cheaper_output_conv_from_a_model_yaml(tmp_path):
    from ultralytics import YOLO

    from hsfpn_yolo.lookup import packaged_yaml

    text = packaged_yaml("yolov8n-hsfpn").read_text()
    hfp_rows = re.compile(r"(HFP, \[\{.*?)\}")
    assert len(hfp_rows.findall(text)) == 2  # HFP(C3) and HFP(C2)
    (tmp_path / "yolov8-hsfpn-dw.yaml").write_text(hfp_rows.sub(r"\1, out: dw}", text))
    model = YOLO(tmp_path / "yolov8n-hsfpn-dw.yaml").model.eval()
    hfps = [m for m in model.model if isinstance(m, HFP)]
    assert len(hfps) == 2 and all(m.out[0].groups == m.out[0].in_channels > 1 for m in hfps)
    assert model(torch.rand(1, 3, 64, 64))[0].shape[1] == 4 + 80


@pytest.mark.parametrize("shape,grid", [((2, 8, 12, 20), 4), ((1, 16, 6, 6), 2), ((1, 4, 8, 8), 1)])
def test_block_layout_of_eager_mode_equals_the_export_steps(shape, grid):
    from hsfpn_yolo.nn.sdp import from_blocks, to_blocks

    x = torch.randn(shape)
    eager = to_blocks(x, grid)
    with exporting():
        exported = to_blocks(x, grid)
        assert torch.equal(from_blocks(exported, grid, *shape[-2:]), x)
    assert torch.equal(eager, exported) and eager.is_contiguous()
    assert torch.equal(from_blocks(eager, grid, *shape[-2:]), x)
