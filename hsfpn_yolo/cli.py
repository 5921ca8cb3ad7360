"""The `hsfpn-yolo` command line: dataset conversion and synthetic data.

Each subcommand is one `cmd_*` handler plus one parser block in `build_parser`; handlers import their heavy
dependencies lazily so that `--help` stays fast.

Examples:
    hsfpn-yolo convert visdrone VisDrone2019-DET-train datasets/VisDrone/train
    hsfpn-yolo convert aitod aitod_train_v1.json aitod/images/train datasets/AI-TOD/train --skip-bad
    hsfpn-yolo synth datasets/synth --train 200 --val 50 --imgsz 640 --seed 0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ERROR_EXIT = 2  # same code argparse uses for usage errors


def cmd_convert_visdrone(args: argparse.Namespace) -> None:
    """Convert one VisDrone2019-DET split."""
    from hsfpn_yolo.data.visdrone import convert_visdrone

    convert_visdrone(args.src, args.dst, skip_bad=args.skip_bad)


def cmd_convert_aitod(args: argparse.Namespace) -> None:
    """Convert one AI-TOD split."""
    from hsfpn_yolo.data.aitod import convert_aitod

    convert_aitod(args.annotations, args.images, args.dst, skip_bad=args.skip_bad)


def cmd_synth(args: argparse.Namespace) -> None:
    """Generate the synthetic tiny-object dataset."""
    from hsfpn_yolo.data.synth import generate

    # Options left out are not passed, so the generator's own defaults apply
    kwargs = {k: getattr(args, k) for k in ("train", "val", "imgsz", "seed") if hasattr(args, k)}
    generate(args.dst, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """Return the `hsfpn-yolo` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(prog="hsfpn-yolo", description="HS-FPN for Ultralytics YOLO: data tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = commands.add_parser(
        "convert",
        help="convert a dataset to Ultralytics YOLO format",
        description="Convert a dataset split to Ultralytics YOLO layout: DST/images/* and DST/labels/*.txt "
        "('cls xc yc w h', normalised). DST is written atomically; re-running replaces an earlier conversion.",
    )
    formats = convert.add_subparsers(dest="format", required=True, metavar="FORMAT")

    p = formats.add_parser(
        "visdrone",
        help="VisDrone2019-DET split (images/ + annotations/)",
        description="Convert a VisDrone2019-DET split. Ignored regions (category 0 or score 0) and 'others' (11) "
        "are dropped, boxes are clipped to the image, classes 1..10 become 0..9.",
    )
    p.add_argument("src", type=Path, metavar="SRC", help="split folder holding images/ and annotations/")
    p.add_argument("dst", type=Path, metavar="DST", help="output folder")
    p.add_argument("--skip-bad", action="store_true", help="skip and count bad images instead of stopping")
    p.set_defaults(func=cmd_convert_visdrone)

    p = formats.add_parser(
        "aitod",
        help="AI-TOD split (COCO-style JSON + image folder)",
        description="Convert an AI-TOD split. Classes are matched by name, crowd/ignore annotations are dropped, "
        "images without annotations are kept as background.",
    )
    p.add_argument("annotations", type=Path, metavar="ANNOTATIONS.json", help="COCO-style annotation file")
    p.add_argument("images", type=Path, metavar="IMAGES_DIR", help="folder the JSON's file_name entries are in")
    p.add_argument("dst", type=Path, metavar="DST", help="output folder")
    p.add_argument("--skip-bad", action="store_true", help="skip and count bad images/annotations")
    p.set_defaults(func=cmd_convert_aitod)

    p = commands.add_parser(
        "synth",
        help="generate a synthetic tiny-object dataset",
        description="Render a synthetic tiny-object detection dataset in Ultralytics layout at DST. "
        "Options left out take the generator's defaults.",
    )
    p.add_argument("dst", type=Path, metavar="DST", help="output folder")
    p.add_argument("--train", type=int, default=argparse.SUPPRESS, metavar="N", help="number of training images")
    p.add_argument("--val", type=int, default=argparse.SUPPRESS, metavar="M", help="number of validation images")
    p.add_argument("--imgsz", type=int, default=argparse.SUPPRESS, metavar="S", help="image size in pixels")
    p.add_argument("--seed", type=int, default=argparse.SUPPRESS, metavar="K", help="random seed")
    p.set_defaults(func=cmd_synth)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; None reads sys.argv.

    Returns:
        (int): Exit code: 0 on success, 2 on usage errors or bad input (reported as one `error: ...` line).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help and usage errors
        return e.code if isinstance(e.code, int) else ERROR_EXIT
    try:
        args.func(args)
    except (ValueError, OSError) as e:  # bad input (ConversionError is a ValueError) or unusable paths
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
