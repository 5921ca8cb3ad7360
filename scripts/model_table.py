"""Print layers, parameters and GFLOPs at 640 for YOLOv8 baselines and every HS-FPN model, every scale.

Usage: python scripts/model_table.py [--scales nsmlx] [--imgsz 640]

Layers, parameters and the first GFLOPs column are the numbers of Ultralytics' own summary line (`model.info()`;
thop counts convolutions and norms but not matrix products or attention); the second GFLOPs column is torch's
`FlopCounterMode` on a real imgsz x imgsz forward (convolutions, matrix products and attention).
"""

from __future__ import annotations

import argparse
from datetime import date

import torch

import hsfpn_yolo  # noqa: F401  (registers the blocks)
from hsfpn_yolo.bench.common import default_models, model_yaml
from hsfpn_yolo.bench.speed import flops
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import model_info


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="nsmlx", help="scales to list, e.g. 'n' or 'nsmlx'")
    parser.add_argument("--imgsz", type=int, default=640, help="input size for the GFLOPs columns")
    args = parser.parse_args()
    print(f"# {date.today()}, torch {torch.__version__}")
    print(f"| model | layers | parameters | GFLOPs@{args.imgsz} (Ultralytics) | GFLOPs@{args.imgsz} (full count) |")
    print("|---|---:|---:|---:|---:|")
    for scale in args.scales:
        for name in [*default_models(scale), f"yolov8{scale}-hsfpn-paper", f"yolov8{scale}-hsfpn-paper-p2"]:
            model = DetectionModel(model_yaml(name), verbose=False).eval()
            layers, params, _, ul = model_info(model, imgsz=args.imgsz)
            print(f"| {name} | {layers} | {params:,} | {ul:.1f} | {flops(model, args.imgsz)['gflops_full']:.1f} |")


if __name__ == "__main__":
    main()
