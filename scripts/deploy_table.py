"""Export stock and HS-FPN models to every deployment format, then print parity and CPU latency as a Markdown table.

Usage: python scripts/deploy_table.py [--models yolov8n,yolov8n-hsfpn] [--formats torchscript,onnx,...] [--imgsz 320]
       [--runs 30] [--out runs/deploy-table]

Each model is trained for one epoch on a small synthetic set and made responsive (`make_responsive`: HS-FPN gates
opened, BatchNorm variances scaled down), so that its output depends on its input and blocks. Each format is exported
at `--imgsz` (fp32, batch 1) and run by its own runtime through Ultralytics' AutoBackend, the way `YOLO(exported)`
runs it (OpenVINO at the CPU's default precision: bf16 on CPUs with bf16 units). Parity: the largest
|exported - PyTorch| on the raw output (boxes in pixels, class scores in [0, 1]) for one random input. Latency: median
(IQR) over `--runs` calls after 3 warm-up calls, each on a fresh random input, one process, all models and formats
timed in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from hsfpn_yolo.bench.common import make_responsive, model_yaml
from hsfpn_yolo.data.synth import generate
from hsfpn_yolo.export import first_tensor

FORMATS = ("pytorch", "torchscript", "onnx", "openvino", "ncnn", "mnn", "litert", "saved_model")


def checkpoint(name: str, out: Path, data: str) -> Path:
    """Train `name` one epoch on `data`, make it responsive and save the checkpoint; return its path."""
    from ultralytics import YOLO

    model = YOLO(model_yaml(name))
    model.train(data=data, epochs=1, imgsz=128, batch=4, workers=0, device="cpu", project=str(out / "runs"),
                name=name, exist_ok=True, plots=False, val=False, verbose=False)  # fmt: skip
    model = YOLO(model.trainer.last)
    make_responsive(model.model)
    path = out / f"{name}.pt"
    model.save(path)
    return path


def export(ckpt: Path, fmt: str, imgsz: int, out: Path) -> tuple[str, float]:
    """Export a copy of `ckpt` to `fmt` in its own folder under `out`; return the export's path and seconds taken."""
    from ultralytics import YOLO

    folder = out / f"{ckpt.stem}-{fmt}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ckpt, folder / ckpt.name)
    t = time.perf_counter()
    with contextlib.chdir(out):  # the SavedModel export reads its calibration sample from the working directory
        path = YOLO(folder / ckpt.name).export(format=fmt, imgsz=imgsz, batch=1, device="cpu")
    return str(path), time.perf_counter() - t


def timed(runners: dict, inputs: list[torch.Tensor]) -> dict:
    """Return {key: (median, IQR)} in ms of each runner over `inputs`, after three warm-up calls; the runners take
    turns call by call, so that a change of machine load weighs on all of them alike."""
    times = {key: [] for key in runners}
    for i, x in enumerate(inputs):
        for key, run in runners.items():
            t = time.perf_counter()
            run(x)
            if i >= 3:
                times[key].append((time.perf_counter() - t) * 1e3)
    out = {}
    for key, values in times.items():
        q1, med, q3 = np.percentile(values, [25, 50, 75])
        out[key] = float(med), float(q3 - q1)
    return out


def main() -> None:
    """Parse arguments, export, measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="yolov8n,yolov8n-hsfpn,yolov8n-hsfpn-p2")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--runs", type=int, default=30, help="timed calls per model and format")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads while timing")
    parser.add_argument("--out", type=Path, default=Path("runs/deploy-table"))
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    sample = np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32)  # offline: see docs/deploy.md
    np.save(out / "calibration_image_sample_data_20x128x128x3_float32.npy", sample)
    generate(out / "tiny", train=16, val=8, imgsz=128, seed=2, progress=False)
    models, formats = args.models.split(","), args.formats.split(",")
    from ultralytics import YOLO
    from ultralytics.nn.autobackend import AutoBackend

    rng = np.random.default_rng(0)
    inputs = [
        torch.from_numpy(rng.random((1, 3, args.imgsz, args.imgsz), dtype=np.float32)) for _ in range(args.runs + 3)
    ]
    rows, runners = {}, {}
    for name in models:
        ckpt = checkpoint(name, out, str(out / "tiny" / "data.yaml"))
        reference = YOLO(ckpt).model.float().eval()
        with torch.inference_mode():
            expected = first_tensor(reference(inputs[0]))
        for fmt in formats:
            if fmt == "pytorch":
                run, seconds = reference, 0.0
            else:
                path, seconds = export(ckpt, fmt, args.imgsz, out)
                run = AutoBackend(path, device=torch.device("cpu"), verbose=False)
            with torch.inference_mode():
                rows[name, fmt] = float(np.abs(first_tensor(run(inputs[0])) - expected).max()), seconds
            runners[name, fmt] = run
            print(f"{name} {fmt}: max |diff| {rows[name, fmt][0]:.2g}", file=sys.stderr, flush=True)
    torch.set_num_threads(args.threads)  # training leaves it at 1 here
    with torch.inference_mode():
        latency = timed(runners, inputs)

    import ultralytics

    lines = []

    lines.append(f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
          f"torch threads {torch.get_num_threads()}; no GPU used")  # fmt: skip
    lines.append(f"- Date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    versions = f"Python {platform.python_version()}, torch {torch.__version__}, ultralytics {ultralytics.__version__}"
    lines.append(f"- Versions: {versions}")
    lines.append(f"- Command: `python scripts/deploy_table.py {' '.join(sys.argv[1:])}`")
    settings = f"imgsz {args.imgsz}, batch 1, fp32, {args.runs} timed calls; ms are median (IQR)"
    if "openvino" in formats:  # what users get through AutoBackend: bf16 on CPUs with bf16 units (docs/deploy.md)
        from hsfpn_yolo.export import openvino_cpu_precision

        settings += f"; OpenVINO at this CPU's default inference precision ({openvino_cpu_precision()})"
    lines.append(f"- Settings: {settings}\n")
    base = models[0]
    lines.append("| format | model | max abs diff vs PyTorch | latency ms | × " + base + " | export s |")
    lines.append("|:---|:---|---:|---:|---:|---:|")
    for fmt in formats:
        for name in models:
            (diff, seconds), (med, iqr) = rows[name, fmt], latency[name, fmt]
            ratio = med / latency[base, fmt][0]
            export_s = "–" if fmt == "pytorch" else f"{seconds:.0f}"
            lines.append(f"| {fmt} | {name} | {diff:.1e} | {med:.1f} ({iqr:.1f}) | {ratio:.2f}× | {export_s} |")

    table = "\n".join(lines) + "\n"
    (out / "table.md").write_text(table)
    print(table)  # Ultralytics logs to stdout too: the table alone is in table.md


if __name__ == "__main__":
    main()
