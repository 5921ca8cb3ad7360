"""Tiny-object AP and latency of OpenVINO exports at the CPU's default inference precision and at fp32.

Usage: python scripts/openvino_precision.py --json RESULTS.json [RESULTS.json ...] [--models A,B] [--out OUT.json]

OpenVINO's CPU plugin runs fp32 models at the CPU's own default precision: bf16 on CPUs with bf16 units (Intel AMX,
AVX512-BF16), fp32 elsewhere; Ultralytics' AutoBackend keeps that default on Linux x86. For every run of the
`bench accuracy` results files, this exports the final checkpoint (`best.pt`) to OpenVINO at the run's image size and
validates it twice on the run's own validation set through AutoBackend (batch 1): at the default, then compiled at
fp32 (`hsfpn_yolo.export.openvino_compiling`). At each precision it also runs the export on one fixed random input,
as the export check does, for the largest and the mean |exported - PyTorch| of the box coordinates (pixels).
It prints AP, AP50, AP_vt, AP_t, AP_s, the inference time per image and the box differences (mean ± sd (min–max) over
seeds, per model and precision); the default minus fp32 difference per seed, paired (mean ± sd over seeds: both
validations read the same checkpoint) with the fp32 / default time ratio; and, over all runs, the largest single-run
difference in an AP metric and the range of the time ratio.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hsfpn_yolo.bench.stats import mean_sd, runs_in, spread
from hsfpn_yolo.bench.common import environment, header

AP_KEYS = ("AP", "AP50", "AP_vt", "AP_t", "AP_s")
SHOWN = (*AP_KEYS, "ms", "box_max", "box_mean")
DIGITS = {**dict.fromkeys(AP_KEYS, 3), "ms": 1, "box_max": 2, "box_mean": 3}


def precision_metrics(save_dir: Path) -> dict[str, dict[str, float]]:
    """Export a run's best.pt to OpenVINO and validate it at the CPU's default precision and at fp32.

    Args:
        save_dir (Path): Ultralytics run folder (weights/best.pt, args.yaml).
    """
    import torch
    import yaml

    from hsfpn_yolo.export import openvino_compiling, reference_output, run_export
    from hsfpn_yolo.metrics import enable_tiny_metrics
    from ultralytics import YOLO

    args = yaml.safe_load((save_dir / "args.yaml").read_text(encoding="utf-8"))
    checkpoint = YOLO(str(save_dir / "weights" / "best.pt"))
    exported = checkpoint.export(format="openvino", imgsz=args["imgsz"], batch=1)
    im = torch.rand((1, 3, args["imgsz"], args["imgsz"]), generator=torch.Generator().manual_seed(0))
    expected = reference_output(checkpoint.model, im)[:, :4]  # box rows (cx, cy, w, h) of every anchor
    out = {}
    for name, precision in (("default", None), ("fp32", "f32")):
        with openvino_compiling(precision) as used:
            box = np.abs(run_export(exported, im, torch.device("cpu"))[:, :4] - expected)
            yolo = enable_tiny_metrics(YOLO(exported, task=args["task"]))
            metrics = yolo.val(
                data=args["data"], imgsz=args["imgsz"], batch=1, device="cpu", plots=False, verbose=False,
                project=str(save_dir / "openvino-precision"), name=name, exist_ok=True,
            )  # fmt: skip
        out[name] = {
            **{k: metrics.tiny[k] for k in AP_KEYS}, "ms": metrics.speed["inference"],
            "box_max": float(box.max()), "box_mean": float(box.mean()), "ran_at": used[-1],
        }  # fmt: skip
    return out


def main() -> None:
    """Export and validate every run at both precisions and print the Markdown table."""
    import openvino as ov

    from hsfpn_yolo.export import openvino_cpu_precision

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", nargs="+", required=True, help="`bench accuracy` results files")
    parser.add_argument("--models", default=None, help="comma-separated models to keep (default: every run's)")
    parser.add_argument("--out", type=Path, default=None, help="save the per-run values here")
    args = parser.parse_args()
    keep = set(args.models.split(",")) if args.models else None
    env = {**environment(), "openvino": ov.__version__, "openvino_cpu_default": openvino_cpu_precision()}
    rows = []
    for run in sorted(runs_in(args.json), key=lambda r: (r["model"], r["seed"])):
        if keep is not None and run["model"] not in keep:
            continue
        rows.append({"model": run["model"], "seed": run["seed"], **precision_metrics(Path(run["save_dir"]))})
    if args.out:
        args.out.write_text(json.dumps({"environment": env, "runs": rows}, indent=1), encoding="utf-8")
    print(header(env))
    print(f"- OpenVINO {env['openvino']}; CPU default inference precision: {env['openvino_cpu_default']}\n")
    print("| model | seeds | precision | " + " | ".join(SHOWN) + " | time fp32 / default |")
    print("|---|---:|---|" + "---:|" * (len(SHOWN) + 1))
    for model in dict.fromkeys(r["model"] for r in rows):
        runs = [r for r in rows if r["model"] == model]
        for p in ("default", "fp32"):
            cells = [mean_sd(spread([r[p][k] for r in runs]), DIGITS[k]) for k in SHOWN]
            print(f"| {model} | {len(runs)} | {p} | " + " | ".join(cells) + " | |")
        diffs = {k: spread([r["default"][k] - r["fp32"][k] for r in runs]) for k in SHOWN}
        cells = [f"{d['mean']:+.{DIGITS[k]}f} ± {d['std']:.{DIGITS[k]}f}" for k, d in diffs.items()]
        ratio = mean_sd(spread([time_ratio(r) for r in runs]), 2)
        print(f"| {model} | | default − fp32 | " + " | ".join(cells) + f" | {ratio} |")
    worst = max(rows, key=largest_ap_change)
    ratios = [time_ratio(r) for r in rows]
    print(
        f"\nLargest single-run difference in an AP metric: {largest_ap_change(worst):.3f} ({worst['model']} seed "
        f"{worst['seed']}); fp32 / default inference time per run: {min(ratios):.2f}-{max(ratios):.2f}×"
    )


def time_ratio(run: dict) -> float:
    """Return a run's inference time at fp32 over its time at the CPU's default precision."""
    return run["fp32"]["ms"] / run["default"]["ms"]


def largest_ap_change(run: dict) -> float:
    """Return a run's largest |default - fp32| over the AP metrics."""
    return max(abs(run["default"][k] - run["fp32"][k]) for k in AP_KEYS)


if __name__ == "__main__":
    main()
