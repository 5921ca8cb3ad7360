"""Print the training-step time of models with and without NWD assignment and box loss, timed interleaved.

Usage: python scripts/nwd_cost.py [--models yolov8n,yolov8n-p2] [--imgsz 640] [--batch 8] [--budget 20] [--json PATH]

Each model is built twice from the same seed, once with `nwd: {constant: C}` in its YAML dict; both run
`hsfpn_yolo.bench.workloads.train_step` (forward, Ultralytics' own loss, backward, SGD step) on the same synthetic
batch of tiny boxes, round-robin with `hsfpn_yolo.bench.timing.measure`. Inference does not change: the key leaves the
head and its outputs alone. Also timed: the loss alone (assignment included) on fixed predictions.
"""

from __future__ import annotations

import argparse

import torch

from hsfpn_yolo import nwd
from hsfpn_yolo.bench.common import environment, header, md_table, save_json
from hsfpn_yolo.bench.timing import measure
from hsfpn_yolo.bench.workloads import build, synthetic_batch, train_step


def loss_only(model: torch.nn.Module, batch: dict):
    """Return a call that computes the detection loss on predictions made once (assignment, box and class terms)."""
    model.train()
    model.criterion = model.init_criterion()
    with torch.no_grad():
        preds = model(batch["img"])

    def run():
        return model.loss(batch, preds)

    return run


def main() -> None:
    """Time, print a Markdown table and optionally save the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="yolov8n,yolov8n-p2")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--constant", type=float, default=12.8, help="C in pixels (the cost does not depend on it)")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timed rounds per measurement")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows, out = [], {"env": environment(), "settings": vars(args), "models": {}}
    for name in args.models.split(","):
        stock, with_nwd = build(name), build(name)
        nwd.enable(with_nwd, assign="max", constant=args.constant)  # max: NWD and CIoU both, the most work
        batch = synthetic_batch(args.batch, args.imgsz, stock.model[-1].nc, "cpu")
        steps = measure({"stock": train_step(stock, batch), "nwd": train_step(with_nwd, batch)}, budget=args.budget)
        losses = measure({"stock": loss_only(stock, batch), "nwd": loss_only(with_nwd, batch)}, budget=args.budget / 4)
        out["models"][name] = {"train_step": steps, "loss": losses}
        rows.append(
            {
                "model": name,
                "train step stock (ms)": f"{steps['stock']['median_ms']:.0f}",
                "train step NWD (ms)": f"{steps['nwd']['median_ms']:.0f}",
                "×": f"{steps['nwd']['median_ms'] / steps['stock']['median_ms']:.3f}",
                "loss stock (ms)": f"{losses['stock']['median_ms']:.1f}",
                "loss NWD (ms)": f"{losses['nwd']['median_ms']:.1f}",
            }
        )
    print(header(out["env"]))
    print(
        f"- batch {args.batch} at {args.imgsz} px, {args.budget:g} s per measurement; medians of interleaved rounds\n"
    )
    print(md_table(rows, list(rows[0])))
    if args.json:
        save_json(args.json, out)


if __name__ == "__main__":
    main()
