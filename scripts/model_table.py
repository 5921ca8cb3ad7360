"""Print layers, parameters and GFLOPs at 640 for YOLOv8 baselines and HS-FPN models, every scale.

Usage: python scripts/model_table.py [--scales nsmlx] [--imgsz 640]

Two GFLOPs columns: Ultralytics' own figure (thop, the number `model.info()` prints; it counts convolutions and
norms but not matrix products or attention) and a full count from `torch.utils.flop_counter` at the real input size
(convolutions, matrix products and attention; multiply-adds x 2).
"""

from __future__ import annotations

import argparse
import platform
from datetime import date
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import hsfpn_yolo  # noqa: F401  (registers the blocks)
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import model_info

CFG = Path(__file__).resolve().parents[1] / "cfg"
FAMILIES = ("yolov8{}.yaml", "yolov8{}-p2.yaml", str(CFG / "yolov8{}-hsfpn.yaml"), str(CFG / "yolov8{}-hsfpn-p2.yaml"))


def full_gflops(model: torch.nn.Module, imgsz: int) -> float:
    """Return GFLOPs of one forward pass at imgsz x imgsz counted by torch's FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, imgsz, imgsz))
    return counter.get_total_flops() / 1e9


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="nsmlx", help="scales to list, e.g. 'n' or 'nsmlx'")
    parser.add_argument("--imgsz", type=int, default=640, help="input size for the GFLOPs columns")
    args = parser.parse_args()
    print(f"# {date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(f"| model | layers | parameters | GFLOPs@{args.imgsz} (Ultralytics) | GFLOPs@{args.imgsz} (full count) |")
    print("|---|---:|---:|---:|---:|")
    for scale in args.scales:
        for family in FAMILIES:
            model = DetectionModel(family.format(scale), verbose=False).eval()
            layers, params, _, ul = model_info(model, imgsz=args.imgsz)  # the numbers of Ultralytics' summary line
            name = Path(family.format(scale)).stem
            print(f"| {name} | {layers} | {params:,} | {ul:.1f} | {full_gflops(model, args.imgsz):.1f} |")


if __name__ == "__main__":
    main()
