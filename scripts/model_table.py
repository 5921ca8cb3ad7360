"""Print layers, parameters and GFLOPs at 640 for the stock baselines and every HS-FPN model, every scale.

Usage: python scripts/model_table.py [--scales nsmlx] [--imgsz 640] [--families yolov8,yolo11,yolo26] [--lines]
                                     [--hfp-out dw]

Layers, parameters and the first GFLOPs column are the numbers of Ultralytics' own summary line (`model.info()`;
thop counts convolutions and norms but not matrix products or attention); the second GFLOPs column is torch's
`FlopCounterMode` on a real imgsz x imgsz forward (convolutions, matrix products and attention). Models are built
unfused, as `YOLO(yaml)` builds them: the end-to-end YOLO26 heads count both branches (one-to-many and one-to-one).
`--lines` prints the same numbers as the summary lines of the YAML headers instead of a Markdown table. `--hfp-out dw`
(or `pw`) adds a row after each model with HFP blocks: the same model with that cheaper output convolution in every
HFP row (docs/hsfpn.md).
"""

from __future__ import annotations

import argparse
from datetime import date

import torch

import hsfpn_yolo  # noqa: F401  (registers the blocks)
from hsfpn_yolo.bench.common import default_models, model_yaml
from hsfpn_yolo.bench.speed import flops
from hsfpn_yolo.nn import HFP
from ultralytics.nn.tasks import DetectionModel, OBBModel, yaml_model_load
from ultralytics.utils.torch_utils import model_info

# Per family: the models listed at one scale, stock ones first ('yolo11{}-p2' has no stock YAML: not listed)
FAMILIES = {
    "yolov8": lambda s: [
        *default_models(s),
        f"yolov8{s}-finepath",
        f"yolov8{s}-finepath-p2",
        f"yolov8{s}-hsfpn-paper",
        f"yolov8{s}-hsfpn-paper-p2",
    ],
    "yolo11": lambda s: [
        f"yolo11{s}",
        f"yolo11{s}-finepath",
        f"yolo11{s}-hsfpn",
        f"yolo11{s}-finepath-p2",
        f"yolo11{s}-hsfpn-p2",
        f"yolo11{s}-obb",
        f"yolo11{s}-finepath-obb",
        f"yolo11{s}-hsfpn-obb",
    ],
    "yolo26": lambda s: [
        f"yolo26{s}",
        f"yolo26{s}-finepath",
        f"yolo26{s}-hsfpn",
        f"yolo26{s}-p2",
        f"yolo26{s}-finepath-p2",
        f"yolo26{s}-hsfpn-p2",
        f"yolo26{s}-obb",
        f"yolo26{s}-finepath-obb",
        f"yolo26{s}-hsfpn-obb",
    ],
}


def with_hfp_out(yaml_path: str, out: str) -> dict:
    """Return the model dict of `yaml_path` (scale from its name) with option `out` set in every HFP row."""
    d = yaml_model_load(yaml_path)
    for row in d["backbone"] + d["head"]:
        if row[2] == "HFP":
            args = row[3]
            if args and isinstance(args[-1], dict):
                args[-1] = {**args[-1], "out": out}
            else:
                args.append({"out": out})
    return d


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="nsmlx", help="scales to list, e.g. 'n' or 'nsmlx'")
    parser.add_argument("--imgsz", type=int, default=640, help="input size for the GFLOPs columns")
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"families to list, from {','.join(FAMILIES)}")
    parser.add_argument("--lines", action="store_true", help="print YAML-header summary lines instead of a table")
    parser.add_argument("--hfp-out", choices=("dw", "pw"), default=None, help="also list HFP models with this out conv")
    args = parser.parse_args()
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    if unknown := set(families) - set(FAMILIES):
        parser.error(f"unknown families {sorted(unknown)}, choose from {list(FAMILIES)}")
    print(f"# {date.today()}, torch {torch.__version__}")
    if not args.lines:
        print(f"| model | layers | parameters | GFLOPs@{args.imgsz} (Ultralytics) | GFLOPs@{args.imgsz} (full count) |")
        print("|---|---:|---:|---:|---:|")
    for family in families:
        for scale in args.scales:
            for name in FAMILIES[family](scale):
                cls = OBBModel if name.endswith("-obb") else DetectionModel
                model = cls(model_yaml(name), verbose=False).eval()
                rows = [(name, model)]
                if args.hfp_out and any(isinstance(m, HFP) for m in model.model):
                    cfg = with_hfp_out(model_yaml(name), args.hfp_out)
                    rows.append((f"{name} (HFP out: {args.hfp_out})", cls(cfg, verbose=False).eval()))
                for label, m in rows:
                    layers, params, _, ul = model_info(m, imgsz=args.imgsz)
                    full = flops(m, args.imgsz)["gflops_full"]
                    if args.lines:
                        print(
                            f"{label}: {layers} layers, {params:,} parameters, {ul:.1f} GFLOPs "
                            f"(FlopCounterMode: {full:.1f})"
                        )
                    else:
                        print(f"| {label} | {layers} | {params:,} | {ul:.1f} | {full:.1f} |")


if __name__ == "__main__":
    main()
