"""The benchmark tooling: references equal our blocks, `bench speed` and `bench plot` run end to end, and the blocks
compile without graph breaks."""

import json

import pytest
import torch

from hsfpn_yolo.bench import memory, plots
from hsfpn_yolo.bench.reference import HFPCore, ReferenceHFP, ReferenceSDP
from hsfpn_yolo.cli import main
from hsfpn_yolo.nn import HFP, SDP


@pytest.mark.parametrize("dct,size", [(True, (24, 16)), (True, (80, 80)), (False, (20, 12))])
def test_reference_hfp_equals_ours(dct, size):
    torch.manual_seed(0)
    m = HFP(64, dct=dct, patch=8)
    x = torch.randn(2, 64, *size, requires_grad=True)
    ours, ref = m(x), ReferenceHFP(m)(x)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    g = torch.randn_like(ours)
    (gx,) = torch.autograd.grad(ours, x, g)
    (rx,) = torch.autograd.grad(ReferenceHFP(m)(x), x, g)
    torch.testing.assert_close(gx, rx, rtol=1e-3, atol=1e-4)  # the backward timed is the same function's too


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("shape,grid", [((2, 32, 16, 16), 4), ((1, 64, 12, 20), 2)])
def test_reference_sdp_equals_ours(shape, grid, batched):
    torch.manual_seed(0)
    m = SDP(shape[1], grid)
    low, high = torch.randn(shape), torch.randn(shape)
    torch.testing.assert_close(m([low, high]), ReferenceSDP(m, batched)([low, high]), rtol=1e-4, atol=1e-5)


def test_hfp_core_is_conv_relu_norm():
    m = HFP(32)
    x = torch.randn(1, 32, 8, 8)
    torch.testing.assert_close(HFPCore(m)(x), m.norm(torch.relu(m.out.conv(x))))


def test_bench_speed_end_to_end(tmp_path, capsys):
    out = tmp_path / "speed.json"
    args = ["bench", "speed", "--imgsz", "64", "--iters", "1", "--batch", "2", "--device", "cpu", "--no-memory"]
    assert main([*args, "--models", "yolov8n,yolov8n-hsfpn", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    expected = (
        "| model | params (M) | GFLOPs (UL) | GFLOPs (full) | infer_b1 ms | infer_b1 ×v8 |",
        "train_b2 ×v8",
        "| block | input | implementation | forward ms | fwd ÷ ours | fwd+bwd ms | fwd+bwd ÷ ours |",
        "conv3x3+ReLU+GN",
        "reference (loops)",
        "| target | measured | goal | met |",
        "- Command: `",
    )
    for column in expected:
        assert column in text
    result = json.loads(out.read_text())
    hsfpn = result["models"]["cpu"]["yolov8n-hsfpn"]
    assert hsfpn["params"] > 0 and hsfpn["train_b2"]["n"] == 1 and hsfpn["infer_b2"]["median_ms"] > 0
    blocks = [b["block"] for b in result["blocks"]["cpu"]]
    assert blocks == ["HFP dct=True p=8", "HFP dct=False", "SDP grid 4", "SDP grid 2"]
    assert {t["target"].split(":")[0] for t in result["targets"]} >= {"yolov8n-hsfpn train step b2"}


def test_memory_measures_each_phase():
    mem = memory.measure("yolov8n-hsfpn", imgsz=64, batch=2)
    assert set(mem) == {"method", "infer_b1_mb", "infer_b2_mb", "train_b2_mb"}
    assert all(mem[k] >= 0 for k in mem if k.endswith("_mb"))


def test_bench_plot_writes_pngs(tmp_path, capsys):
    latency = {"yolov8n": {"infer_b1": {"median_ms": 10.0}}, "yolov8n-hsfpn": {"infer_b1": {"median_ms": 12.0}}}
    speed = {"settings": {"imgsz": 640}, "models": {"cpu": latency}}
    rows = [
        {"model": "yolov8n", "AP": 0.2, "AP_vt": 0.05, "AP_t": 0.2, "AP_s": 0.4, "AP_m": -1.0},
        {"model": "yolov8n-hsfpn", "AP": 0.25, "AP_vt": 0.08, "AP_t": 0.25, "AP_s": 0.45, "AP_m": -1.0},
    ]
    (tmp_path / "s.json").write_text(json.dumps(speed))
    (tmp_path / "a.json").write_text(json.dumps({"settings": {"epochs": 1, "imgsz": 320}, "results": rows}))
    args = ["bench", "plot", "--speed", str(tmp_path / "s.json"), "--accuracy", str(tmp_path / "a.json")]
    assert main([*args, "--out", str(tmp_path / "docs")]) == 0
    printed = capsys.readouterr().out
    for name in (plots.AP_PNG, plots.LATENCY_PNG):
        png = tmp_path / "docs" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png) in printed


@pytest.mark.parametrize("make", [lambda: HFP(32, dct=True, patch=4), lambda: HFP(32), lambda: SDP(32, 4)])
def test_blocks_compile_without_graph_breaks(make):
    torch._dynamo.reset()
    m = make()
    x = torch.randn(2, 32, 16, 24)
    args = (x,) if isinstance(m, HFP) else ([x, torch.randn_like(x)],)
    explained = torch._dynamo.explain(m)(*args)
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons
    compiled = torch.compile(m, fullgraph=True, backend="eager")  # fullgraph raises on any graph break
    torch.testing.assert_close(compiled(*args), m(*args))


@pytest.mark.slow
def test_blocks_compile_with_inductor():
    torch._dynamo.reset()
    m, x = HFP(32, dct=True, patch=4), torch.randn(2, 32, 16, 24)
    torch.testing.assert_close(torch.compile(m, fullgraph=True)(x), m(x), rtol=1e-4, atol=1e-5)
