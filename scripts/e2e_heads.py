"""Tiny-object AP of an end-to-end model's two heads: the one-to-one head it predicts with, and the one-to-many head.

Usage: python scripts/e2e_heads.py --json RESULTS.json [RESULTS.json ...] [--out HEADS.json]

YOLO26's Detect head trains two branches on the same features: one-to-many (10 positives per object, as YOLOv8's
assigner) and one-to-one (1 positive per object, read without NMS). Predictions and validation use the one-to-one
branch; `nms=True` reads the one-to-many branch through NMS instead. For every end-to-end run of the `bench accuracy`
results files, this validates its final checkpoint (`best.pt`, as the run's own final validation) both ways on the
run's own validation set and prints AP, AP50, AP_vt, AP_t and AP_s per head (mean ± sd over seeds, per model), and
the one-to-many minus one-to-one difference of the means. A large difference means the one-to-one branch has not
caught up with what the features already allow. Runs of models without an end-to-end head are skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hsfpn_yolo.bench.stats import difference, mean_sd, runs_in, spread

SHOWN = ("AP", "AP50", "AP_vt", "AP_t", "AP_s")
HEADS = {"one-to-one": False, "one-to-many + NMS": True}  # head -> Ultralytics' `nms` validation argument


def head_metrics(save_dir: Path) -> dict[str, dict[str, float]] | None:
    """Validate a run's best.pt with each head; None when its model has no end-to-end head.

    Args:
        save_dir (Path): Ultralytics run folder (weights/best.pt, args.yaml).
    """
    import yaml

    from hsfpn_yolo.metrics import enable_tiny_metrics
    from ultralytics import YOLO

    args = yaml.safe_load((save_dir / "args.yaml").read_text(encoding="utf-8"))
    weights = save_dir / "weights" / "best.pt"
    yolo = enable_tiny_metrics(YOLO(str(weights)))
    if getattr(yolo.model.model[-1], "one2one_cv2", None) is None:  # no one-to-one branch: not end-to-end
        return None
    out = {}
    for head, nms in HEADS.items():  # each validation sets the branch from `nms` itself
        metrics = yolo.val(
            data=args["data"], imgsz=args["imgsz"], batch=args["batch"], device="cpu", nms=nms, plots=False,
            verbose=False, project=str(save_dir / "heads"), name=head.split()[0], exist_ok=True,
        )  # fmt: skip
        out[head] = {k: metrics.tiny[k] for k in SHOWN}
    return out


def main() -> None:
    """Validate every end-to-end run with both heads and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", nargs="+", required=True, help="`bench accuracy` results files")
    parser.add_argument("--out", type=Path, default=None, help="save the per-run values here")
    args = parser.parse_args()
    rows = []
    for run in sorted(runs_in(args.json), key=lambda r: (r["model"], r["seed"])):
        heads = head_metrics(Path(run["save_dir"]))
        if heads is not None:
            rows.append({"model": run["model"], "seed": run["seed"], "epochs": run["epochs"], **heads})
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print("| model | epochs | head | " + " | ".join(SHOWN) + " |")
    print("|---|---:|---|" + "---:|" * len(SHOWN))
    for model in dict.fromkeys(r["model"] for r in rows):
        runs = [r for r in rows if r["model"] == model]
        spreads = {h: {k: spread([r[h][k] for r in runs]) for k in SHOWN} for h in HEADS}
        for h in HEADS:
            cells = [mean_sd(spreads[h][k]) for k in SHOWN]
            print(f"| {model} | {runs[0]['epochs']} | {h} | " + " | ".join(cells) + " |")
        diffs = [difference(spreads["one-to-many + NMS"][k], spreads["one-to-one"][k]) for k in SHOWN]
        print(
            f"| {model} | | Δ many − one | "
            + " | ".join(f"{d['diff']:+.3f} ± {d['se']:.3f} ({d['verdict'].replace('within ', '')})" for d in diffs)
            + " |"
        )


if __name__ == "__main__":
    main()
