"""Print how far the residual gates of gated HS-FPN blocks opened in trained checkpoints.

Usage: python scripts/gate_values.py runs/study/default/yolov8n-hsfpn-native-yolo-s*/weights/last.pt

One row per checkpoint and gated block: the layer, its type and the mean and largest |gamma| over its channels.
A gate that stays near zero means the block's branch barely contributes to what the model computes. Training writes
the same values for every epoch to `gates.csv` in the run folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="+", type=Path, help="trained checkpoints (.pt)")
    args = parser.parse_args()

    from ultralytics import YOLO

    from hsfpn_yolo.gates import gate_values

    print("| checkpoint | layer | block | mean abs(gamma) | max abs(gamma) |")
    print("|:---|---:|:---|---:|---:|")
    for path in args.weights:
        name = path.parent.parent.name if path.parent.name == "weights" else path.name
        for r in gate_values(YOLO(path).model):
            print(f"| {name} | {r['layer']} | {r['block']} | {r['mean_abs_gamma']:.4f} | {r['max_abs_gamma']:.4f} |")


if __name__ == "__main__":
    main()
