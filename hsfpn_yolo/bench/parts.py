"""`hsfpn-yolo bench parts`: what each part of the HFP and SDP blocks costs in inference, per runtime.

One model (fused, batch 1) is profiled in PyTorch (`torch.profiler`, each module's forward inside a labelled range),
ONNX Runtime (its own profiler, per graph node) and OpenVINO (per-layer performance counters) on the exports of
`bench deploy`. Every operator is attributed by the module it comes from (ONNX node names and OpenVINO layer names
carry the module path) and its type to one part: HFP's high-pass, pooling, channel gate, gating multiply and
residual, output conv; SDP's projections, key upsampling, block reshapes, attention and residual; or the rest of the
model. Profilers add their own overhead per operator, so the parts' sum is compared with each runtime's profiled
total, and the same table for the model without the blocks (yolov8n-finepath) shows what the blocks add.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import environment, header, md_table, save_json

if TYPE_CHECKING:  # torch loads only when a command runs (`--help` stays light)
    import torch

RUNTIMES = ("pytorch", "onnx", "openvino-f32")
REST = "rest of the model"
LAYOUT = (
    "layout conversions, any layer"  # runtimes' reorders between blocked and plain layouts, named after a neighbour
)
PARTS = (
    "HFP high-pass",
    "HFP pooling",
    "HFP channel gate",
    "HFP gating multiply + residual",
    "HFP output conv",
    "SDP q/k projections",
    "SDP key upsample",
    "SDP block reshapes",
    "SDP attention",
    "SDP residual",
)
_RESHAPE = ("reshape", "transpose", "view", "contiguous", "clone", "copy", "permute", "flatten", "gather", "shapeof",
            "concat", "unsqueeze", "squeeze", "slice", "floor", "divide", "div", "constant")  # fmt: skip
_POOL = ("pool", "reducesum", "reducemax", "reducemean", "sum", "amax", "mean", "relu", "max")


def part_of(path: list[str], op: str, kinds: dict[str, str]) -> str:
    """Return the part an operator belongs to from its module path and type.

    Args:
        path (list[str]): Module path, e.g. ['model', '13', 'highpass'] or ['model', '14'].
        op (str): Operator type or name (ONNX op type, OpenVINO layer type, aten op name), any case.
        kinds (dict[str, str]): Layer index -> block type ('HFP', 'SDP') of the model's blocks.
    """
    if "reorder" in op.lower():
        return LAYOUT
    kind = kinds.get(path[1]) if len(path) > 1 and path[0] == "model" else None
    if kind is None:
        return REST
    sub, op = (path[2] if len(path) > 2 else ""), op.lower()
    if kind == "HFP":
        if sub == "highpass" or "addmm" in op or "matmul" in op or op in ("mm", "aten::mm", "gemm"):
            return "HFP high-pass"
        if sub in ("g1", "g2") or "sigmoid" in op or "concat" in op or "cat" == op.split("::")[-1]:
            return "HFP channel gate"
        if sub == "out" or sub == "spatial":
            return "HFP output conv"
        if any(k in op for k in _POOL):
            return "HFP pooling"
        return "HFP gating multiply + residual"
    if sub in ("q", "k"):
        return "SDP q/k projections"
    if any(k in op for k in ("interpolate", "resize", "upsample")):
        return "SDP key upsample"
    if any(k in op for k in ("matmul", "softmax", "attention", "bmm", "multiply", "mul")) and sub != "scale":
        return "SDP attention"
    if sub == "scale" or "add" in op:
        return "SDP residual"
    if any(k in op for k in _RESHAPE):
        return "SDP block reshapes"
    return "SDP attention"


def block_kinds(model: torch.nn.Module) -> dict[str, str]:
    """Return {layer index: 'HFP' | 'SDP'} of an Ultralytics model's HS-FPN layers."""
    return {str(i): type(m).__name__ for i, m in enumerate(model.model) if type(m).__name__ in ("HFP", "SDP")}


def profile_pytorch(model: torch.nn.Module, im: torch.Tensor, runs: int) -> dict[str, float]:
    """Return ms per call of each part in eager PyTorch: every top-level aten op, attributed by its innermost module."""
    import torch

    labels = {}
    handles = []
    for name, m in model.named_modules():
        if name:
            labels[m] = f"module:{name}"

            def pre(mod, args):
                mod._rf = torch.autograd.profiler.record_function(labels[mod])
                mod._rf.__enter__()

            def post(mod, args, out):
                mod._rf.__exit__(None, None, None)

            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    kinds = block_kinds(model)
    with torch.inference_mode():
        model(im)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(runs):
                model(im)
    for h in handles:
        h.remove()
    parts: dict[str, float] = defaultdict(float)
    for e in prof.events():
        if e.name.startswith("module:") or (e.cpu_parent is not None and not e.cpu_parent.name.startswith("module:")):
            continue  # ranges themselves, and ops called inside other ops (counted in their caller's time)
        if e.cpu_parent is None and not e.name.startswith("aten::"):
            continue
        path = e.cpu_parent.name[len("module:") :].split(".") if e.cpu_parent is not None else []
        parts[part_of(path, e.name, kinds)] += e.cpu_time_total / 1e3 / runs
    return dict(parts)


def profile_onnx(path: Path, im: torch.Tensor, runs: int, kinds: dict[str, str]) -> dict[str, float]:
    """Return ms per call of each part in ONNX Runtime (CPU), from its profiler's node events."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: im.numpy()}
    session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())  # warm-up call only: discarded
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, feed)  # warm-up
    for _ in range(runs):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    calls = runs + 1
    parts: dict[str, float] = defaultdict(float)
    for e in nodes:
        name = e["name"][: -len("_kernel_time")]
        parts[part_of(_onnx_path(name), e.get("args", {}).get("op_name", name), kinds)] += e["dur"] / 1e3 / calls
    return dict(parts)


def _onnx_path(node: str) -> list[str]:
    """Return the module path of an ONNX node name: '/model.13/out/out.0/Conv' -> ['model', '13', 'out', '0']."""
    scopes = [p for p in node.split("/") if p][:-1]  # each scope after the first repeats its parent's name
    path = scopes[0].split(".") + [p.split(".")[-1] for p in scopes[1:]] if scopes else []
    return path if path[:1] == ["model"] else []


def profile_openvino(path: Path, im: torch.Tensor, runs: int, kinds: dict[str, str]) -> dict[str, float]:
    """Return ms per call of each part in OpenVINO (CPU, fp32), from its per-layer performance counters."""
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(path)), "CPU", {"PERF_COUNT": "YES", "INFERENCE_PRECISION_HINT": "f32"}
    )
    request = compiled.create_infer_request()
    request.infer({0: im.numpy()})
    parts: dict[str, float] = defaultdict(float)
    for _ in range(runs):
        request.infer({0: im.numpy()})
        for p in request.get_profiling_info():
            if p.status == p.Status.EXECUTED:
                parts[part_of(_openvino_path(p.node_name), p.node_type, kinds)] += (
                    p.real_time.total_seconds() * 1e3 / runs
                )
    return dict(parts)


def _openvino_path(layer: str) -> list[str]:
    """Return the module path of an OpenVINO layer name such as '__module.model.13.highpass/aten::matmul/MatMul'."""
    m = re.match(r"__module\.([\w.]+)", layer)
    return m.group(1).split(".") if m else []


def run(
    models: list[str] | None = None,
    imgsz: int = 640,
    runs: int = 20,
    runtimes: list[str] | None = None,
    out: str | Path = "runs/bench/deploy",
    json_path: str | Path | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Profile each model in each runtime and print the parts table (ms per call).

    Args:
        models (list[str], optional): Models (default yolov8n-finepath and yolov8n-hsfpn).
        imgsz (int): Square input size.
        runs (int): Profiled calls per model and runtime, after one warm-up call.
        runtimes (list[str], optional): Of `RUNTIMES` (default all).
        out (str | Path): `bench deploy`'s folder of checkpoints and exports (cached, shared).
        json_path (str | Path, optional): Where to save the results.
        threads (int, optional): torch CPU threads (default: all cores, as `bench deploy` times PyTorch).
    """
    import torch

    from .deploy import FORMATS, checkpoint, code_digest, export, load

    models = list(models or ("yolov8n-finepath", "yolov8n-hsfpn"))
    runtimes = list(runtimes or RUNTIMES)
    root = Path(out).resolve() / code_digest(models)
    im = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(imgsz))
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name in models:
        ckpt = checkpoint(name, root)
        torch.set_num_threads(threads or os.cpu_count() or 1)  # an export may have left it lower
        fused = load(ckpt, None).model.float().eval()
        kinds = block_kinds(fused)
        table[name] = {}
        for rt in runtimes:
            print(f"bench parts: {name} {rt} {imgsz}", file=sys.stderr, flush=True)
            if rt == "pytorch":
                table[name][rt] = profile_pytorch(fused, im, runs)
                continue
            kind = FORMATS[rt][0]
            path = export(ckpt, kind, imgsz, root / f"{name}-{imgsz}-{kind}")
            if rt == "onnx":
                table[name][rt] = profile_onnx(path, im, runs, kinds)
            else:
                xml = next(Path(path).glob("*.xml"))
                table[name][rt] = profile_openvino(xml, im, runs, kinds)
    settings = {
        "models": models,
        "imgsz": imgsz,
        "runs": runs,
        "runtimes": runtimes,
        "torch_threads": torch.get_num_threads(),
    }
    result = {"env": environment(), "settings": settings,
              "parts_ms": table}  # fmt: skip
    if json_path:
        save_json(json_path, result)
    print(markdown(result))
    return result


def markdown(result: dict[str, Any]) -> str:
    """Return one table per model after the first: its parts (rows) per runtime (columns) in ms per call, then the sum
    of the block parts, the profiled total, the first model's profiled total and the difference between the totals."""
    s, table = result["settings"], result["parts_ms"]
    base, runtimes = s["models"][0], s["runtimes"]
    total = {(m, rt): sum(table[m][rt].values()) for m in s["models"] for rt in runtimes}
    lines = [
        header(result["env"]),
        f"- Settings: {s['imgsz']}×{s['imgsz']}, batch 1, fp32, {s['runs']} profiled calls after one warm-up; ms per "
        "call; profilers add overhead per operator",
    ]
    for name in s["models"][1:]:
        rows = [
            {"part": part, **{rt: f"{table[name][rt].get(part, 0.0):.2f}" for rt in runtimes}}
            for part in PARTS
            if any(table[name][rt].get(part, 0.0) for rt in runtimes)
        ]
        blocks = {
            rt: total[name, rt] - table[name][rt].get(REST, 0.0) - table[name][rt].get(LAYOUT, 0.0) for rt in runtimes
        }
        rows += [
            {"part": "**HFP + SDP (sum of the parts)**", **{rt: f"**{blocks[rt]:.2f}**" for rt in runtimes}},
            *[
                {"part": f"{other} ({m})", **{rt: f"{table[m][rt].get(other, 0.0):.2f}" for rt in runtimes}}
                for other in (LAYOUT, REST)
                for m in (name, base)
            ],
            {"part": f"profiled total, {name}", **{rt: f"{total[name, rt]:.2f}" for rt in runtimes}},
            {"part": f"profiled total, {base}", **{rt: f"{total[base, rt]:.2f}" for rt in runtimes}},
            {
                "part": "**difference of the totals**",
                **{rt: f"**{total[name, rt] - total[base, rt]:.2f}**" for rt in runtimes},
            },
        ]
        lines += [f"\n**{name}** against {base}\n", md_table(rows, ["part", *runtimes])]
    return "\n".join(lines)
