"""Train an HS-FPN YOLOv8n for a few epochs on the built-in tiny-object dataset and say where everything went.

Usage: python scripts/demo.py [--model cfg/yolov8n-hsfpn.yaml] [--epochs 10] [--imgsz 320] [--device cpu]

The dataset (cfg/datasets/tiny-synth.yaml) is generated offline on first use in Ultralytics' datasets folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Parse flags, train, validate and print where the weights, plots and tiny-object metrics were saved."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "cfg" / "yolov8n-hsfpn.yaml"), help="model YAML or weights")
    parser.add_argument("--data", default=str(REPO / "cfg" / "datasets" / "tiny-synth.yaml"), help="dataset YAML")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (about 15 s each on 2 CPU cores)")
    parser.add_argument("--imgsz", type=int, default=320, help="training image size")
    parser.add_argument("--batch", type=int, default=16, help="batch size")
    parser.add_argument("--lr0", type=float, default=0.002, help="AdamW learning rate (from-scratch, few epochs)")
    parser.add_argument("--device", default="cpu", help="'cpu', '0', ...")
    parser.add_argument("--project", default=str(REPO / "runs" / "demo"), help="folder for the run")
    args = parser.parse_args()

    from ultralytics import YOLO  # imported late so that --help is instant

    model = YOLO(args.model)
    model.train(
        data=args.data,
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        optimizer="AdamW",
        lr0=args.lr0,
        device=args.device,
        project=args.project,
        name="train",
        exist_ok=True,
        seed=0,
    )
    save_dir = Path(model.trainer.save_dir)
    plots = sorted(p.name for p in save_dir.glob("*.png")) + sorted(p.name for p in save_dir.glob("*.jpg"))
    print(f"\nWeights:  {model.trainer.best}  (last: {model.trainer.last})")
    print(f"Plots:    {save_dir}/  ({', '.join(plots)})")
    print(f"Metrics:  {save_dir / 'results.csv'}, {save_dir / 'tiny_metrics.csv'}")
    print(
        f"Next:     yolo predict model={model.trainer.best} source=<image>   |   "
        f"yolo export model={model.trainer.best} format=onnx"
    )


if __name__ == "__main__":
    main()
