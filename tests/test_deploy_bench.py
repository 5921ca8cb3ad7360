"""`bench deploy` (latency per runtime), `bench parts` (what each part of the blocks costs) and the steady timer."""

from __future__ import annotations

import time

from hsfpn_yolo.bench.parts import LAYOUT, PARTS, REST, _onnx_path, _openvino_path, part_of
from hsfpn_yolo.bench.timing import measure_until_steady


def test_steady_timer_stops_once_every_spread_is_within_the_target():
    steady = measure_until_steady({"a": lambda: time.sleep(0.002)}, spread=0.5, min_rounds=6, max_rounds=50)
    assert steady["a"]["n"] == 6 and steady["a"]["steady"] and steady["a"]["spread"] <= 0.5

    calls = iter(range(10**6))
    jumpy = lambda: time.sleep(0.001 if next(calls) % 2 else 0.006)  # noqa: E731 (half the calls 6x longer)
    out = measure_until_steady({"a": jumpy}, spread=0.05, min_rounds=4, max_rounds=12)
    assert out["a"]["n"] == 12 and not out["a"]["steady"] and out["a"]["spread"] > 0.05


def test_steady_timer_pairs_each_callable_with_its_base_round_by_round():
    fns = {"base": lambda: time.sleep(0.002), "double": lambda: time.sleep(0.004)}
    out = measure_until_steady(fns, spread=0.5, min_rounds=6, max_rounds=6, pairs={"double": "base"})
    assert 1.5 < out["double"]["ratio"] < 2.5 and out["double"]["steady"] is (out["double"]["ratio_spread"] <= 0.5)
    assert "ratio" not in out["base"]


def test_parts_follow_the_module_path_and_operator():
    kinds = {"13": "HFP", "14": "SDP"}
    assert _onnx_path("/model.13/out/out.0/Conv") == ["model", "13", "out", "0"]
    assert _onnx_path("/model.14/MatMul") == ["model", "14"] and _onnx_path("/Concat") == []
    assert _openvino_path("__module.model.13.highpass/aten::matmul/MatMul") == ["model", "13", "highpass"]
    cases = {
        ("/model.13/highpass/Gemm", "Gemm"): "HFP high-pass",
        ("/model.13/MaxPool", "MaxPool"): "HFP pooling",
        ("/model.13/g1/conv/Conv", "Conv"): "HFP channel gate",
        ("/model.13/Mul_2", "Mul"): "HFP gating multiply + residual",
        ("/model.13/out/out.0/Conv", "Conv"): "HFP output conv",
        ("/model.14/q/q.0/Conv", "Conv"): "SDP q/k projections",
        ("/model.14/Transpose_3", "Transpose"): "SDP block reshapes",
        ("/model.14/Softmax", "Softmax"): "SDP attention",
        ("/model.14/Add", "Add"): "SDP residual",
        ("/model.12/cv1/conv/Conv", "Conv"): REST,
        ("/model.13/highpass/MatMul_reorder", "ReorderInput"): LAYOUT,
    }
    for (node, op), part in cases.items():
        assert part_of(_onnx_path(node), op, kinds) == part, node
    assert set(cases.values()) - {REST, LAYOUT} <= set(PARTS)


def test_full_flop_count_includes_attention_on_the_cpu():
    """torch's FlopCounterMode has no formula for the CPU attention kernel; the benchmarks' count adds it."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from hsfpn_yolo.bench.speed import _attention_flops

    q, k = torch.randn(1, 4, 64, 16), torch.randn(1, 4, 16, 16)
    with FlopCounterMode(display=False, custom_mapping=_attention_flops()) as fused:
        F.scaled_dot_product_attention(q, k, k)
    with FlopCounterMode(display=False) as explicit:
        torch.softmax(q @ k.transpose(-1, -2), -1) @ k
    assert fused.get_total_flops() == explicit.get_total_flops() == 4 * 4 * 64 * 16 * 16
