"""Where a model's training step spends its time: operator families (forward + backward) and forward time per layer.

`torch.profiler` records a few training steps (forward, detection loss, backward, SGD step) on a synthetic batch.
Self times of the operators are summed into families: convolution, normalisation, attention, other matrix products
(the DCT high-pass among them), pooling and the rest. Each top-level YAML layer's forward runs inside a
`record_function` range named after its module type, so the forward time of HFP, SDP, C2f, ... is also reported.

Example:
    hsfpn-yolo bench profile --models yolov8n,yolov8n-hsfpn --imgsz 256 --batch 8
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from .common import environment, header, md_table, save_json
from .workloads import build, synthetic_batch, train_step

FAMILIES = {  # operator family: substrings of aten op names (first match wins, in this order)
    "attention": ("scaled_dot_product", "flash_attention", "_efficient_attention", "softmax"),
    "norm": ("batch_norm", "group_norm", "native_layer_norm"),
    "conv": ("convolution", "conv2d", "mkldnn_conv"),
    "matmul": ("mm", "matmul", "linear", "baddbmm"),
    "pool": ("pool",),
}


def family(op: str) -> str:
    """Return the operator family of an aten op name ('other' when none matches)."""
    name = op.lower()
    return next((f for f, keys in FAMILIES.items() if any(k in name for k in keys)), "other")


def _annotate(model: torch.nn.Module) -> None:
    """Run every top-level layer's forward inside a profiler range named 'layer:<type>'."""
    for m in model.model:
        forward, label = m.forward, f"layer:{type(m).__name__}"

        def wrapped(*args, _forward=forward, _label=label, **kwargs):
            with torch.profiler.record_function(_label):
                return _forward(*args, **kwargs)

        m.forward = wrapped


def profile_model(name: str, imgsz: int, batch: int, steps: int = 3, device: str = "cpu") -> dict[str, Any]:
    """Profile `steps` training steps of one model after one warm-up step.

    Args:
        name (str): Model name or YAML path.
        imgsz (int): Square input size.
        batch (int): Batch size.
        steps (int): Profiled steps.
        device (str): 'cpu' or 'cuda'.
    """
    model = build(name, device)
    _annotate(model)
    step = train_step(model, synthetic_batch(batch, imgsz, model.model[-1].nc, device))
    step()  # warm-up: allocator, cached DCT bases
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device != "cpu":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            step()
    ops: dict[str, float] = defaultdict(float)
    layers: dict[str, float] = defaultdict(float)
    for e in prof.key_averages():
        if e.key.startswith("layer:"):
            layers[e.key[len("layer:") :]] += e.cpu_time_total / 1e3 / steps  # inclusive forward time, ms
        elif not e.key.startswith(("ProfilerStep", "Optimizer", "autograd::engine")):
            ops[family(e.key)] += e.self_cpu_time_total / 1e3 / steps
    total = sum(ops.values())
    return {
        "model": name,
        "step_ms": total,
        "families_ms": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
        "forward_ms_by_layer": dict(sorted(layers.items(), key=lambda kv: -kv[1])),
    }


def run(
    models: list[str],
    imgsz: int = 256,
    batch: int = 8,
    steps: int = 3,
    device: str = "cpu",
    threads: int | None = 1,
    json_path: str | None = None,
) -> dict[str, Any]:
    """Profile each model's training step and print where the time goes.

    Args:
        models (list[str]): Model names or YAML paths.
        imgsz (int): Square input size.
        batch (int): Batch size.
        steps (int): Profiled steps per model.
        device (str): 'cpu' or 'cuda'.
        threads (int, optional): torch CPU threads (default 1, what Ultralytics trains with on 2 cores).
        json_path (str, optional): Where to save the numbers.
    """
    if threads:
        torch.set_num_threads(threads)
    env = environment()
    results = [profile_model(m, imgsz, batch, steps, device) for m in models]
    out = {
        "env": env,
        "settings": {"imgsz": imgsz, "batch": batch, "steps": steps, "device": device},
        "results": results,
    }
    if json_path:
        save_json(json_path, out)
    print(markdown(out))
    return out


def markdown(out: dict[str, Any]) -> str:
    """Return the profile tables: share of the step per operator family, and forward ms per layer type."""
    fams = list(FAMILIES) + ["other"]
    rows = []
    for r in out["results"]:
        row = {"model": r["model"], "step ms": f"{r['step_ms']:.0f}"}
        for f in fams:
            ms = r["families_ms"].get(f, 0.0)
            row[f] = f"{ms:.0f} ({100 * ms / r['step_ms']:.0f} %)"
        rows.append(row)
    kinds = list(dict.fromkeys(k for r in out["results"] for k in r["forward_ms_by_layer"]))
    fwd = [
        {
            "model": r["model"],
            **{k: f"{r['forward_ms_by_layer'][k]:.1f}" for k in kinds if k in r["forward_ms_by_layer"]},
        }
        for r in out["results"]
    ]
    s = out["settings"]
    return (
        f"\n## Training-step profile\n\n{header(out['env'])}\n- Settings: batch {s['batch']} at {s['imgsz']}², "
        f"{s['steps']} profiled steps, {s['device']}\n\nSelf time per operator family, forward + backward (ms per "
        f"step, share of the step):\n\n{md_table(rows, ['model', 'step ms', *fams])}\n\nForward time per layer type "
        f"(ms per step, inclusive):\n\n{md_table(fwd, ['model', *kinds])}\n"
    )
