"""`hsfpn-yolo bench deploy`: inference latency of exported models in each runtime, batch 1, as users run them.

Each model is built from its YAML (seed 0), given BatchNorm statistics of random images and opened gates
(`common.calibrate_norms`, `common.make_responsive`: realistic activations, and no block a runtime could fold away),
saved as a checkpoint and exported once per format and size with Ultralytics' exporter (the package's export check
included). Every export is loaded through Ultralytics' AutoBackend, which is what `YOLO("exported")` runs, and called
on the same input; the output's largest difference from PyTorch is kept. All models and formats of one size are then
timed call by call in turns (`timing.measure_until_steady`): warm-up calls discarded; each turn pauses 50 ms (other
runtimes' spinning worker threads go to sleep), makes one untimed call and one timed call; rounds are added until the
IQR of every model's per-round ratio to its stock counterpart is within `--spread` of its median, or a limit is
reached. Exports are cached under `--out`, keyed by the package's block code, the YAMLs and the versions, so a
changed block is re-exported and an unchanged one is not.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .common import counterpart, environment, header, md_table, model_yaml, save_json

if TYPE_CHECKING:  # torch loads only when a command runs (`--help` stays light)
    import torch

MODELS = ("yolov8n", "yolov8n-finepath", "yolov8n-hsfpn", "yolov8n-p2", "yolov8n-hsfpn-p2")
# name -> (Ultralytics export format, OpenVINO inference precision at load: None keeps the CPU's default)
FORMATS: dict[str, tuple[str | None, str | None]] = {
    "pytorch": (None, None),  # the .pt through AutoBackend: Conv+BN fused, as `predict` runs it
    "torchscript": ("torchscript", None),
    "onnx": ("onnx", None),  # ONNX Runtime's CPU provider
    "openvino-f32": ("openvino", "f32"),
    "openvino": ("openvino", None),  # the CPU's default precision (bf16 on CPUs with bf16 units)
    "ncnn": ("ncnn", None),
    "mnn": ("mnn", None),
}
SIZES = (640, 320)
SETTLE, LEAD = 0.05, 1  # each turn: a pause for other runtimes' spinning threads, one untimed call, the timed call


def code_digest(models: list[str]) -> str:
    """Return a short digest of what an export depends on: the package's blocks, the YAMLs and the versions."""
    import torch
    import ultralytics

    h = hashlib.sha1(f"{torch.__version__} {ultralytics.__version__}".encode())
    nn_dir = Path(__file__).resolve().parents[1] / "nn"
    for path in sorted(nn_dir.glob("*.py")):
        h.update(path.read_bytes())
    for name in models:
        yaml = Path(model_yaml(name))
        h.update(yaml.read_bytes() if yaml.is_file() else name.encode())
    return h.hexdigest()[:10]


def checkpoint(name: str, folder: Path) -> Path:
    """Build `name` from its YAML with seed 0, give it realistic norms and open gates (`calibrate_norms`,
    `make_responsive`) and save it as `folder/<name>.pt` (kept if there)."""
    import torch
    from ultralytics import YOLO

    from .common import calibrate_norms, make_responsive

    path = folder / f"{name}.pt"
    if not path.is_file():
        torch.manual_seed(0)
        model = YOLO(model_yaml(name))
        calibrate_norms(model.model)
        make_responsive(model.model)
        folder.mkdir(parents=True, exist_ok=True)
        model.save(path)
    return path


def export(ckpt: Path, fmt: str, imgsz: int, folder: Path) -> Path:
    """Export `ckpt` to Ultralytics format `fmt` at `imgsz` in `folder` (its own, since exports write next to the
    checkpoint); return the exported path, kept from an earlier run when present."""
    from ultralytics import YOLO

    done = folder / "exported.txt"
    if done.is_file() and Path(done.read_text().strip()).exists():
        return Path(done.read_text().strip())
    shutil.rmtree(folder, ignore_errors=True)  # a half-written export of a stopped run
    folder.mkdir(parents=True)
    shutil.copy(ckpt, folder / ckpt.name)
    path = YOLO(folder / ckpt.name).export(format=fmt, imgsz=imgsz, batch=1, device="cpu", verbose=False)
    done.write_text(str(Path(path).resolve()))
    return Path(path)


def load(path: Path, precision: str | None) -> Callable[[torch.Tensor], Any]:
    """Return the AutoBackend of `path` (OpenVINO compiled at `precision`, or at the CPU's default when None)."""
    import torch
    from ultralytics.nn.autobackend import AutoBackend

    from hsfpn_yolo.export import openvino_compiling

    ctx = openvino_compiling(precision) if precision else contextlib.nullcontext()
    with ctx:
        return AutoBackend(str(path), device=torch.device("cpu"), fuse=True, verbose=False)


def prepare(models: list[str], formats: list[str], sizes: list[int], out: Path, log=print) -> dict[tuple, dict]:
    """Export every model to every format and size and load it; return {(imgsz, format, model): runner record}."""
    import numpy as np
    import torch

    from hsfpn_yolo.export import first_tensor

    root = out / code_digest(models)
    runners = {}
    for imgsz in sizes:
        im = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(imgsz))
        for name in models:
            ckpt = checkpoint(name, root)
            reference = None
            for fmt in formats:
                kind, precision = FORMATS[fmt]
                t = time.perf_counter()
                path = ckpt if kind is None else export(ckpt, kind, imgsz, root / f"{name}-{imgsz}-{kind}")
                export_s = time.perf_counter() - t
                runner = load(path, precision)
                with torch.inference_mode():
                    y = first_tensor(runner(im))  # AutoBackend returns a tensor, an array or a list
                reference = y if fmt == "pytorch" else reference
                diff = None if reference is None else float(np.abs(y - reference).max())
                runners[imgsz, fmt, name] = {"run": runner, "input": im, "max_abs_diff": diff, "prepare_s": export_s}
                log(f"bench deploy: {name} {fmt} {imgsz}: ready ({export_s:.0f} s), max |diff| vs PyTorch {diff}")
    return runners


def run(
    models: list[str] | None = None,
    formats: list[str] | None = None,
    sizes: list[int] | tuple[int, ...] = SIZES,
    spread: float = 0.10,
    min_calls: int = 20,
    max_calls: int = 300,
    budget: float = 600.0,
    threads: int | None = None,
    out: str | Path = "runs/bench/deploy",
    json_path: str | Path | None = None,
) -> dict[str, Any]:
    """Export, load and time every model in every format at every size (batch 1); print and return the tables.

    Args:
        models (list[str], optional): Model names (default `MODELS`); ratios are to each one's stock counterpart.
        formats (list[str], optional): Keys of `FORMATS` (default all).
        sizes (Sequence[int]): Square input sizes.
        spread (float): IQR / median to reach for every model's per-round ratio to its counterpart.
        min_calls (int): Timed calls per runner before the spread is first checked.
        max_calls (int): Timed calls per runner after which timing stops, steady or not.
        budget (float): Seconds of timing per size after which timing stops, steady or not.
        threads (int, optional): torch CPU threads (default: all cores).
        out (str | Path): Folder for checkpoints and exports (cached).
        json_path (str | Path, optional): Where to save the results.

    Returns:
        (dict): {'env', 'settings', 'rows'}.
    """
    import torch

    from .timing import measure_until_steady

    models, formats = list(models or MODELS), list(formats or FORMATS)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    if "pytorch" in formats:  # the parity reference: loaded first
        formats.remove("pytorch")
        formats.insert(0, "pytorch")
    runners = prepare(models, formats, list(sizes), Path(out).resolve(), log=lambda s: print(s, file=sys.stderr))
    torch.set_num_threads(threads or os.cpu_count() or 1)  # exports may leave it lower
    from hsfpn_yolo.export import openvino_cpu_precision

    settings = {
        "models": models,
        "formats": formats,
        "sizes": list(sizes),
        "batch": 1,
        "spread": spread,
        "min_calls": min_calls,
        "max_calls": max_calls,
        "budget_s": budget,
        "settle_s": SETTLE,
        "untimed_calls_per_turn": LEAD,
        "openvino_default_precision": openvino_cpu_precision()
        if any(FORMATS[f][0] == "openvino" for f in formats)
        else None,
    }
    rows = []
    for imgsz in sizes:
        keys = [k for k in runners if k[0] == imgsz]
        fns = {k: (lambda r=runners[k]: r["run"](r["input"])) for k in keys}
        # each model against its stock counterpart in the same format, round by round
        pairs = {k: (k[0], k[1], counterpart(k[2])) for k in keys if (k[0], k[1], counterpart(k[2])) in fns}
        pairs = {k: b for k, b in pairs.items() if b != k}

        def progress(rounds: int, worst: float, imgsz=imgsz) -> None:
            print(
                f"bench deploy: {imgsz} px, {rounds} calls each, largest ratio IQR/median {worst:.1%}", file=sys.stderr
            )

        with torch.inference_mode():
            timed = measure_until_steady(
                fns, spread, min_calls, max_calls, budget, progress=progress, settle=SETTLE, lead=LEAD, pairs=pairs
            )
        for (size, fmt, name), t in timed.items():
            row = {"imgsz": size, "format": fmt, "model": name, "ratio": None, "ratio_spread": None, **t}
            row["counterpart"] = counterpart(name) if row["ratio"] is not None else None
            rows.append({**row, **_extras(runners[size, fmt, name])})
    result = {"env": environment(), "settings": settings, "rows": rows}
    if json_path:
        save_json(json_path, result)
    print(markdown(result))
    return result


def against(result: dict[str, Any], earlier: dict[str, Any], label: str = "before") -> str:
    """Return each model's ratio to its stock counterpart per size and format, in `earlier` and in `result` side by
    side (e.g. the blocks before and after a change; each run times its own stock models, so the ratios compare)."""

    def ratios(res: dict[str, Any]) -> dict[tuple, float]:
        return {(r["imgsz"], r["format"], r["model"]): r["ratio"] for r in res["rows"] if r["ratio"] is not None}

    old, new = ratios(earlier), ratios(result)
    formats = result["settings"]["formats"]
    rows = []
    for size in result["settings"]["sizes"]:
        for model in result["settings"]["models"]:
            cells = {
                f: f"{old[k]:.2f}× → {new[k]:.2f}×" for f in formats if (k := (size, f, model)) in old and k in new
            }
            if cells:
                rows.append({"size": size, "model": model, **cells})
    dates = f"{earlier['env']['date']} → {result['env']['date']}"
    return f"Ratio to the stock counterpart, {label} → now ({dates}):\n\n" + md_table(rows, ["size", "model", *formats])


def _extras(record: dict[str, Any]) -> dict[str, Any]:
    """Return the saved fields of a runner record (no callables or tensors)."""
    return {"max_abs_diff": record["max_abs_diff"], "prepare_s": record["prepare_s"]}


def markdown(result: dict[str, Any]) -> str:
    """Return the latency tables: per size, models by rows and formats by columns, each cell 'ms (× counterpart)';
    then the runners whose spread exceeded the target."""
    s, rows = result["settings"], result["rows"]
    lines = [header(result["env"])]
    precision = s.get("openvino_default_precision")
    lines.append(
        f"- Settings: batch 1, fp32 exports, each runner called through AutoBackend; median ms of the timed calls "
        f"(warm-up discarded; each turn a {s.get('settle_s', 0) * 1e3:.0f} ms pause, "
        f"{s.get('untimed_calls_per_turn', 0)} untimed call, 1 timed call), × its stock counterpart in the same format "
        f"(yolov8n; yolov8n-p2 for -p2 models); calls added until IQR ≤ {s['spread']:.0%} of the median (at least "
        f"{s['min_calls']}, at most {s['max_calls']})"
        + (f"; `openvino` runs at this CPU's default precision ({precision})" if precision else "")
    )
    for imgsz in s["sizes"]:
        here = [r for r in rows if r["imgsz"] == imgsz]
        if not here:
            continue
        calls = sorted({r["n"] for r in here})
        lines.append(f"\n**{imgsz}×{imgsz}, batch 1** ({calls[0]} timed calls per runner)\n")
        table = []
        for name in s["models"]:
            row = {"model": name}
            for fmt in s["formats"]:
                r = next((x for x in here if x["model"] == name and x["format"] == fmt), None)
                if r:
                    x = f" ({r['ratio']:.2f}×)" if r["ratio"] is not None else ""
                    row[fmt] = f"{r['median_ms']:.1f}{x}"
            table.append(row)
        lines.append(md_table(table, ["model", *s["formats"]]))
    paired = [r for r in rows if r.get("ratio_spread") is not None]
    unsteady = [r for r in paired if not r["steady"]]
    worst = max((r["ratio_spread"] for r in paired), default=0.0)
    if unsteady:
        names = ", ".join(f"{r['model']} {r['format']} {r['imgsz']} ({r['ratio_spread']:.0%})" for r in unsteady)
        lines.append(f"\nRatio IQR above {s['spread']:.0%} of its median: {names}. Rerun on an idle machine.")
    elif paired:
        lines.append(
            f"\nEach ratio is the median of the per-round ratios (model over counterpart, timed in the same round); "
            f"every ratio's IQR is within {s['spread']:.0%} of its median (largest {worst:.1%})."
        )
    drift = max((r["spread"] for r in rows), default=0.0)
    lines.append(f"Largest IQR / median of a runner's own times: {drift:.0%} (how far the machine's speed moved).")
    fp32 = [
        r["max_abs_diff"] for r in rows if r["format"] not in ("pytorch", "openvino") and r["max_abs_diff"] is not None
    ]
    if fp32:  # `openvino` may run in bf16, reported apart
        lines.append(
            f"Largest |exported − PyTorch| of the fp32 runtimes: {max(fp32):.2g} (boxes in pixels, scores 0-1)."
        )
    default = [r["max_abs_diff"] for r in rows if r["format"] == "openvino" and r["max_abs_diff"] is not None]
    if default and precision and precision != "f32":
        lines.append(f"Largest |exported − PyTorch| of `openvino` at {precision}: {max(default):.2g}.")
    return "\n".join(lines)
