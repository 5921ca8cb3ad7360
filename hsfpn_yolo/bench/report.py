"""Markdown tables and performance-target checks for the `bench speed` results."""

from __future__ import annotations

from typing import Any, Callable

from .common import header, is_p2, md_table

# (description, goal, higher is better) of each target; measured values come from `targets`
GOALS = {
    "hfp_vs_reference": ("HFP dct=True fwd+bwd: reference / ours", 3.0, True),
    "hfp_vs_core": ("HFP dct=True fwd+bwd: ours / its conv3x3+ReLU+GN", 1.5, False),
    "sdp_fwd": ("{block} forward: {ref} / ours", 2.0, True),
    "sdp_fwd_bwd": ("{block} fwd+bwd: {ref} / ours", 1.5, True),
    "train": ("{model} train step b{b}: / {base}", 1.35, False),
    "train_p2": ("{model} train step b{b}: / {base}", 1.25, False),
    "infer": ("{model} {key}: / {base}", 1.25, False),
}


def ms(t: dict[str, float] | None) -> str | None:
    """Format a timing summary as 'median (IQR)' in ms."""
    if not t:
        return None
    digits = 1 if t["median_ms"] >= 10 else 2
    return f"{t['median_ms']:.{digits}f} ({t['iqr_ms']:.{digits}f})"


def ratio(a: dict | None, b: dict | None) -> float | None:
    """Return median(a) / median(b), or None where one is missing."""
    return a["median_ms"] / b["median_ms"] if a and b else None


def _x(r: float | None) -> str | None:
    """Format a ratio."""
    return None if r is None else f"{r:.2f}×"


def model_table(models: dict[str, dict], batch: int, base_of: Callable[[str], str]) -> str:
    """Return the per-model table: size, latency, training step and memory, with ratios to the plain baseline."""
    rows, keys = [], ("infer_b1", f"infer_b{batch}", f"train_b{batch}")
    for name, r in models.items():
        base = models.get(base_of(name))
        mem = r.get("memory", {})
        row = {
            "model": name,
            "params (M)": f"{r['params'] / 1e6:.2f}",
            "GFLOPs (UL)": f"{r['gflops_ultralytics']:.1f}",
            "GFLOPs (full)": f"{r['gflops_full']:.1f}",
            f"peak MB infer b{batch}": f"{mem[f'infer_b{batch}_mb']:.0f}" if f"infer_b{batch}_mb" in mem else None,
            f"peak MB train b{batch}": f"{mem[f'train_b{batch}_mb']:.0f}" if f"train_b{batch}_mb" in mem else None,
        }
        for k in keys:
            row[f"{k} ms"], row[f"{k} ×v8"] = ms(r.get(k)), _x(ratio(r.get(k), base and base.get(k)))
        rows.append(row)
    cols = ["model", "params (M)", "GFLOPs (UL)", "GFLOPs (full)"]
    cols += [c for k in keys for c in (f"{k} ms", f"{k} ×v8")]
    return md_table(rows, cols + [f"peak MB infer b{batch}", f"peak MB train b{batch}"])


def block_table(blocks: list[dict[str, Any]]) -> str:
    """Return the block table: each implementation's forward and forward+backward time and its ratio to ours (timed
    in the same interleaved pair; ours' own time is from its first pair).
    """
    rows = []
    for b in blocks:
        for impl in b["forward"]:
            rows.append(
                {
                    "block": b["block"],
                    "input": "×".join(map(str, b["shape"])),
                    "implementation": impl,
                    "forward ms": ms(b["forward"][impl]),
                    "fwd ÷ ours": _x(b["forward_ratio"][impl]),
                    "fwd+bwd ms": ms(b["forward_backward"][impl]),
                    "fwd+bwd ÷ ours": _x(b["forward_backward_ratio"][impl]),
                }
            )
    cols = ["block", "input", "implementation", "forward ms", "fwd ÷ ours", "fwd+bwd ms", "fwd+bwd ÷ ours"]
    return md_table(rows, cols, "lll" + "r" * 4)


def _check(goal_key: str, value: float | None, **fmt) -> dict[str, Any]:
    """Return one target row: description, measured value, goal and whether it is met."""
    text, goal, higher = GOALS[goal_key]
    met = None if value is None else (value >= goal if higher else value <= goal)
    return {"target": text.format(**fmt), "measured": value, "goal": f"{'≥' if higher else '≤'} {goal}", "met": met}


def targets(result: dict[str, Any], base_of: Callable[[str], str]) -> list[dict[str, Any]]:
    """Return the performance targets checked against the CPU fp32 results (where they were run).

    Args:
        result (dict): `bench speed` results (settings, blocks, models).
        base_of (Callable[[str], str]): The stock model an HS-FPN model is held against, by name (e.g. `counterpart`).
    """
    out, b = [], result["settings"]["batch"]
    for block in result["blocks"].get("cpu", []):
        fwd, fb = block["forward_ratio"], block["forward_backward_ratio"]
        if block["block"].startswith("HFP dct=True"):
            out.append(_check("hfp_vs_reference", fb["reference"]))
            out.append(_check("hfp_vs_core", 1 / fb["conv3x3+ReLU+GN"]))
        elif block["block"].startswith("SDP"):
            for ref in (r for r in fwd if r.startswith("reference")):
                out.append(_check("sdp_fwd", fwd[ref], block=block["block"], ref=ref))
                out.append(_check("sdp_fwd_bwd", fb[ref], block=block["block"], ref=ref))
    models = result["models"].get("cpu", {})
    for model, m in models.items():
        base = base_of(model)
        if "hsfpn" not in model or base not in models:
            continue
        stock, train = models[base], f"train_b{b}"
        if is_p2(model):  # a P2 model's goal is its training step alone (GOALS)
            out.append(_check("train_p2", ratio(m[train], stock[train]), model=model, b=b, base=base))
            continue
        out.append(_check("train", ratio(m[train], stock[train]), model=model, b=b, base=base))
        for key in ("infer_b1", f"infer_b{b}"):
            out.append(_check("infer", ratio(m[key], stock[key]), model=model, key=key, base=base))
    return out


def target_table(rows: list[dict[str, Any]]) -> str:
    """Return the targets as a table."""
    fmt = [
        {
            **r,
            "measured": None if r["measured"] is None else f"{r['measured']:.2f}",
            "met": {True: "yes", False: "**no**", None: None}[r["met"]],
        }
        for r in rows
    ]
    return md_table(fmt, ["target", "measured", "goal", "met"], "lrrl")


def compile_table(c: dict[str, Any]) -> str:
    """Return the torch.compile comparison as a table."""
    row = {
        "model": c["model"],
        "device": c["device"],
        "graph breaks in HS-FPN blocks": c["graph_breaks_hsfpn"],
        "graph breaks, first call": c["graph_breaks_first_call"],
        "where": ", ".join(c["break_sites"]) or None,
        "graph breaks, later calls": c["graph_breaks"],
        "first compiled call s": f"{c['compile_s']:.1f}",
        "eager b1 ms": ms(c["eager"]),
        "compiled b1 ms": ms(c["compiled"]),
        "speed-up": _x(ratio(c["eager"], c["compiled"])),
    }
    return md_table([row], list(row), "llrrl" + "r" * 5)


def markdown(result: dict[str, Any]) -> str:
    """Return the whole speed report in Markdown."""
    from .common import baseline_of

    s = result["settings"]
    parts = [
        f"## Speed\n\n{header(result['env'])}\n- Settings: imgsz {s['imgsz']}, batch {s['batch']}, "
        f"{s['threads']} torch threads, rounds {s['iters'] or 'by time budget'}; times are median (IQR) in ms"
    ]
    for key, models in result["models"].items():
        memory = (
            "peak MB: peak RSS above the idle process, fresh subprocess per model (see bench/memory.py)"
            if key == "cpu"
            else "peak MB: torch.cuda.max_memory_allocated above the allocation before the call"
        )
        inference = "GFLOPs at batch 1; inference: eval-mode forward of the Conv+BN-fused model, no NMS"
        train = "train: forward + the model's own detection loss + backward + SGD step on a synthetic batch"
        parts.append(
            f"### Models, {key}\n\n{inference}; {train}; {memory}.\n\n{model_table(models, s['batch'], baseline_of)}"
        )
    for key, blocks in result["blocks"].items():
        parts.append(f"### Blocks, {key}\n\n{block_table(blocks)}")
    if result.get("compile"):
        note = (
            "Graph breaks as counted by `torch._dynamo.explain`. On its first call at a new size Ultralytics' "
            "Detect head builds its anchors with a data-dependent `.item()`; later calls reuse them. The timed "
            "model is compiled with inductor's defaults after that first call; its first compiled call includes "
            "compiling (shorter when inductor's on-disk cache already holds the kernels)."
        )
        parts.append(f"### torch.compile\n\n{note}\n\n{compile_table(result['compile'])}")
    if result.get("targets"):
        parts.append(f"### Targets (CPU fp32)\n\n{target_table(result['targets'])}")
    return "\n\n".join(parts) + "\n"
