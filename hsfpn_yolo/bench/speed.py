"""`hsfpn-yolo bench speed`: models and HS-FPN blocks side by side, in one process and one run.

Models: parameters, GFLOPs, inference latency (batch 1 and `batch`), one training step and peak memory, with ratios
to plain YOLOv8 of the same scale. Blocks: HFP and SDP against the reference versions in `reference.py`, forward and
forward+backward at the feature sizes an `imgsz` input produces, plus HFP's unavoidable conv3x3+ReLU+GroupNorm alone.
Callables that are compared are timed interleaved (see `timing.measure`), so their ratios survive a noisy machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from . import report
from .common import counterpart, default_models, environment, save_json
from .reference import HFPCore, ReferenceHFP, ReferenceSDP
from .timing import measure
from .workloads import build, deployed, inference, synthetic_batch, train_step

WIDTH = {"n": 0.25, "s": 0.50, "m": 0.75, "l": 1.00, "x": 1.25}  # neck width = 256 x this (64 channels at 'n')
BUDGET = {"cpu": 6.0, "cuda": 2.0}  # default seconds of timed rounds per comparison group of models
BLOCK_BUDGET = {"cpu": 3.0, "cuda": 1.0}  # the same per pair of block implementations


def targets_for(device: str) -> list[tuple[str, bool]]:
    """Return (device, fp16 autocast) pairs to run: CPU fp32 always unless 'cuda' is asked for; CUDA fp32 and fp16."""
    cuda = torch.cuda.is_available() and device != "cpu"
    if device == "cuda" and not cuda:
        raise ValueError("--device cuda asked for, but torch sees no CUDA device")
    return ([] if device == "cuda" else [("cpu", False)]) + ([("cuda", False), ("cuda", True)] if cuda else [])


def _attention_flops() -> dict:
    """Return FlopCounterMode formulas for the CPU kernel of `scaled_dot_product_attention`, which torch's registry
    leaves out (it counts the CUDA kernels): without them the full count would miss SDP's attention on a CPU."""
    from torch.utils.flop_counter import sdpa_flop_count

    def cpu_sdpa(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: cpu_sdpa} if op is not None else {}  # the registry is keyed by the overload packet


def flops(model: torch.nn.Module, imgsz: int) -> dict[str, float]:
    """Return Ultralytics' GFLOPs (thop: convolutions and norms) and torch's full count (matmuls, attention too)."""
    from torch.utils.flop_counter import FlopCounterMode
    from ultralytics.utils.torch_utils import get_flops

    p = next(model.parameters())
    counter = FlopCounterMode(display=False, custom_mapping=_attention_flops())
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, imgsz, imgsz, device=p.device))
    return {"gflops_ultralytics": get_flops(model, imgsz), "gflops_full": counter.get_total_flops() / 1e9}


def cpu_memory(name: str, imgsz: int, batch: int, threads: int) -> dict[str, Any]:
    """Measure peak CPU memory of one model in a fresh subprocess (see `memory.py`)."""
    cmd = [sys.executable, "-m", "hsfpn_yolo.bench.memory", name, f"--imgsz={imgsz}", f"--batch={batch}"]
    out = subprocess.run([*cmd, f"--threads={threads}"], capture_output=True, text=True, env=os.environ.copy())
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def cuda_memory(fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Return MB that each call allocates at its peak above what was allocated before it."""
    out = {}
    for key, fn in fns.items():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        out[f"{key}_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    return out


def model_runs(names: list[str], cfg: dict[str, Any], device: str, amp: bool, step: Callable) -> dict[str, dict]:
    """Time inference at batch 1 and `batch` and one training step of every model, interleaved across models.

    Args:
        names (list[str]): Model names.
        cfg (dict): Settings (imgsz, batch, budget, iters, threads, memory).
        device (str): 'cpu' or 'cuda'.
        amp (bool): fp16 autocast (CUDA).
        step (Callable): Progress callback taking a description.
    """
    b, kw = cfg["batch"], {"device": device, "budget": cfg["budget"] or BUDGET[device], "iters": cfg["iters"]}
    models = {n: build(n, device) for n in names}
    fused = {n: deployed(m) for n, m in models.items()}
    data = {n: synthetic_batch(b, cfg["imgsz"], m.model[-1].nc, device) for n, m in models.items()}
    out = {
        n: {"params": sum(p.numel() for p in models[n].parameters()), **flops(fused[n], cfg["imgsz"])} for n in names
    }
    for key, images in (("infer_b1", lambda n: data[n]["img"][:1]), (f"infer_b{b}", lambda n: data[n]["img"])):
        step(f"{device}{' fp16' if amp else ''} {key}")
        warmup = 2 if key == "infer_b1" else 1  # one batch-`b` call already takes seconds on a CPU
        times = measure({n: inference(fused[n], images(n), amp) for n in names}, warmup=warmup, **kw)
        for n in names:
            out[n][key] = times[n]
    step(f"{device}{' fp16' if amp else ''} train_b{b}")
    times = measure({n: train_step(models[n], data[n], amp) for n in names}, **kw)
    for n in names:
        out[n][f"train_b{b}"] = times[n]
        if device == "cuda":
            infer, train = inference(fused[n], data[n]["img"], amp), train_step(models[n], data[n], amp)
            out[n]["memory"] = cuda_memory({f"infer_b{b}": infer, f"train_b{b}": train})
        elif cfg["memory"]:
            step(f"memory {n}")
            out[n]["memory"] = cpu_memory(n, cfg["imgsz"], b, cfg["threads"])
    return out


def block_cases(c: int, imgsz: int, batch: int, device: str) -> list[dict[str, Any]]:
    """Return the block comparisons at the feature sizes of an `imgsz` input: name, inputs and implementations."""
    from hsfpn_yolo.nn import HFP, SDP

    torch.manual_seed(0)
    p3, p4 = imgsz // 8, imgsz // 16
    hfp, plain, sdp4, sdp2 = HFP(c, dct=True, patch=8), HFP(c), SDP(c, 4), SDP(c, 2)

    def hfp_refs(m: HFP) -> dict[str, torch.nn.Module]:
        return {"conv3x3+ReLU+GN": HFPCore(m), "reference": ReferenceHFP(m)}

    def sdp_refs(m: SDP) -> dict[str, torch.nn.Module]:
        return {"reference (loops)": ReferenceSDP(m), "reference (batched)": ReferenceSDP(m, batched=True)}

    cases = [
        ("HFP dct=True p=8", hfp, p3, 1, hfp_refs(hfp)),
        ("HFP dct=False", plain, p4, 1, hfp_refs(plain)),
        ("SDP grid 4", sdp4, p3, 2, sdp_refs(sdp4)),
        ("SDP grid 2", sdp2, p4, 2, sdp_refs(sdp2)),
    ]
    return [
        {"block": name, "shape": [batch, c, s, s], "inputs": k, "impls": {"ours": m, **refs}, "device": device}
        for name, m, s, k, refs in cases
    ]


def _forward(m: torch.nn.Module, x: list[torch.Tensor], k: int) -> Callable[[], object]:
    """Return a no-grad forward call of a one- or two-input block."""

    def run():
        with torch.no_grad():
            return m(x[0] if k == 1 else x)

    return run


def _backward(m: torch.nn.Module, x: list[torch.Tensor], k: int, grad: torch.Tensor) -> Callable[[], None]:
    """Return a forward + backward call (fixed output gradient) of a one- or two-input block."""

    def run():
        m(x[0] if k == 1 else x).backward(grad)

    return run


def paired(fns: dict[str, Callable[[], object]], **kw) -> tuple[dict[str, dict], dict[str, float]]:
    """Time "ours" against every other callable in its own interleaved pair (a slow reference does not starve the
    rounds of a fast comparison); return each one's timing (ours from its first pair) and its median ratio to ours.
    """
    times, ratios = {}, {"ours": 1.0}
    for name, fn in fns.items():
        if name != "ours":
            t = measure({"ours": fns["ours"], name: fn}, **kw)
            times.setdefault("ours", t["ours"])
            times[name], ratios[name] = t[name], t[name]["median_ms"] / t["ours"]["median_ms"]
    return times, ratios


def block_runs(cfg: dict[str, Any], device: str, amp: bool, step: Callable) -> list[dict[str, Any]]:
    """Time every block case forward and forward+backward against its other implementations."""
    kw = {"device": device, "budget": cfg["budget"] or BLOCK_BUDGET[device], "iters": cfg["iters"], "warmup": 2}
    rows = []
    for case in block_cases(int(256 * WIDTH[cfg["scale"]]), cfg["imgsz"], cfg["batch"], device):
        impls = {i: m.to(device) for i, m in case["impls"].items()}
        g = torch.Generator().manual_seed(0)
        x = [torch.randn(case["shape"], generator=g).to(device).requires_grad_() for _ in range(case["inputs"])]
        grad = torch.randn(case["shape"], generator=g).to(device)
        row = {"block": case["block"], "shape": case["shape"]}
        with torch.autocast(device, torch.float16, enabled=amp):
            step(f"{device}{' fp16' if amp else ''} {case['block']} forward")
            fwd = {i: _forward(m, x, case["inputs"]) for i, m in impls.items()}
            row["forward"], row["forward_ratio"] = paired(fwd, **kw)
            step(f"{device}{' fp16' if amp else ''} {case['block']} forward+backward")
            fb = {i: _backward(m, x, case["inputs"], grad) for i, m in impls.items()}
            row["forward_backward"], row["forward_backward_ratio"] = paired(fb, **kw)
        rows.append(row)
    return rows


def compile_run(scale: str, cfg: dict[str, Any], device: str) -> dict[str, Any]:
    """Time a torch.compile'd HS-FPN model's batch-1 forward against eager, and say where dynamo breaks its graph."""
    import time

    fused = deployed(build(f"yolov8{scale}-hsfpn", device))
    img = torch.rand(1, 3, cfg["imgsz"], cfg["imgsz"], device=device)
    from .graph_breaks import explain, split_breaks

    with torch.no_grad():
        first, first_breaks = explain(fused, img)  # Ultralytics' Detect builds its anchors on a first call (.item())
        torch._dynamo.reset()
        later = torch._dynamo.explain(fused)(img)  # anchors cached, as on every later call of that size
    ours, _ = split_breaks(first_breaks)
    sites = {f"{Path(file).name}:{line}" for file, line in first_breaks}
    torch._dynamo.reset()
    compiled = torch.compile(fused)
    t = time.perf_counter()
    inference(compiled, img)()
    compile_s = time.perf_counter() - t
    fns = {"eager": inference(fused, img), "compiled": inference(compiled, img)}
    times = measure(fns, device=device, budget=cfg["budget"] or BUDGET[device], iters=cfg["iters"], warmup=2)
    breaks = {
        "graph_breaks_first_call": first.graph_break_count,
        "graph_breaks": later.graph_break_count,
        "graph_breaks_hsfpn": len(ours),
        "break_sites": sorted(sites),
    }
    return {"model": f"yolov8{scale}-hsfpn", "device": device, **breaks, "compile_s": compile_s, **times}


def run(
    models: list[str] | None = None,
    scale: str = "n",
    imgsz: int = 640,
    batch: int = 8,
    iters: int | None = None,
    budget: float | None = None,
    device: str | None = None,
    threads: int | None = None,
    blocks: bool = True,
    memory: bool = True,
    compile: bool = False,
    json_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Run the speed benchmark, print its Markdown report and optionally save the raw numbers.

    Args:
        models (list[str], optional): Model names; default yolov8{scale}, -p2, -hsfpn, -hsfpn-p2.
        scale (str): Scale of the default models and the neck width of the block cases.
        imgsz (int): Input size (multiple of the largest stride, 32).
        batch (int): Large batch for latency, the training step and the blocks.
        iters (int, optional): Fixed timed rounds per group; default from the time budget.
        budget (float, optional): Seconds of timed rounds per group; default 6 on CPU, 2 on CUDA.
        device (str, optional): 'cpu', 'cuda', or None for CPU plus CUDA when present.
        threads (int, optional): torch CPU threads; default every core.
        blocks (bool): Run the block-level comparison.
        memory (bool): Measure peak memory.
        compile (bool): Also time torch.compile'd HS-FPN inference.
        json_path (str | PathLike, optional): Where to save the raw numbers.

    Returns:
        (dict): Everything measured: env, settings, models, blocks, compile, targets.
    """
    from ultralytics.utils import TQDM

    if imgsz % 32 or scale not in WIDTH:
        raise ValueError(f"imgsz must be a multiple of 32 and scale one of {list(WIDTH)}, got {imgsz}, {scale!r}")
    torch.set_num_threads(threads or os.cpu_count() or 1)  # Ultralytics may have set fewer for its own training
    names = models or default_models(scale)
    cfg = {
        "scale": scale,
        "imgsz": imgsz,
        "batch": batch,
        "iters": iters,
        "budget": budget,
        "threads": torch.get_num_threads(),
        "memory": memory,
    }
    result = {"env": environment(), "settings": dict(cfg), "models": {}, "blocks": {}}
    tasks = targets_for(device or "auto")
    total = len(tasks) * (3 + 8 * blocks) + memory * len(names) * (("cpu", False) in tasks) + compile
    bar = TQDM(total=total, desc="bench speed")
    started = []

    def step(desc: str) -> None:
        if started:  # a new case starts: the previous one is done
            bar.update(1)
        started.append(desc)
        bar.set_description(f"bench speed: {desc}")

    for dev, amp in tasks:
        key = f"{dev}{'-fp16' if amp else ''}"
        result["models"][key] = model_runs(names, cfg, dev, amp, step)
        if blocks:
            result["blocks"][key] = block_runs(cfg, dev, amp, step)
    if compile:
        step("torch.compile")
        result["compile"] = compile_run(scale, cfg, tasks[0][0])
    bar.update(1)
    bar.close()
    result["targets"] = report.targets(result, counterpart)
    print(report.markdown(result))
    if json_path:
        save_json(json_path, result)
    return result
