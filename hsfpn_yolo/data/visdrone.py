"""VisDrone2019-DET → Ultralytics YOLO labels, and the first-use preparation behind cfg/datasets/VisDrone.yaml."""

from __future__ import annotations

from pathlib import Path

from hsfpn_yolo.data.convert_utils import (
    ConversionError,
    ConversionSummary,
    Sample,
    is_image,
    load_sample,
    prepare_splits,
    safe_relpath,
    write_dataset,
)

VISDRONE_NAMES = (
    "pedestrian", "people", "bicycle", "car", "van", "truck", "tricycle", "awning-tricycle", "bus", "motor"
)  # fmt: skip
IGNORED, OTHERS = 0, 11  # categories that are never targets: ignored regions and "others"
VISDRONE_SPLITS = {
    "train": "VisDrone2019-DET-train",
    "val": "VisDrone2019-DET-val",
    "test": "VisDrone2019-DET-test-dev",
}
VISDRONE_URL = "https://github.com/VisDrone/VisDrone-Dataset"


def parse_row(line: str, where: str) -> tuple[list[float], int, int]:
    """Parse one annotation row `x,y,w,h,score,category,truncation,occlusion[,]`.

    Args:
        line: The text of the row.
        where: 'file:line' used in error messages.

    Returns:
        (tuple): Box [x, y, w, h] in pixels, score and category.
    """
    fields = [f.strip() for f in line.strip().removesuffix(",").split(",")]
    if len(fields) != 8:
        raise ConversionError(
            f"{where}: expected 8 comma-separated values x,y,w,h,score,category,truncation,occlusion, "
            f"got {len(fields)}: {line.strip()!r}"
        )
    try:
        box = [float(v) for v in fields[:4]]
        score, category, _, _ = (int(v) for v in fields[4:])
    except ValueError:
        raise ConversionError(f"{where}: non-numeric value in {line.strip()!r}") from None
    if not IGNORED <= category <= OTHERS:
        raise ConversionError(f"{where}: category {category} is outside 0..{OTHERS}")
    return box, score, category


def convert_image(images: list[Path], annotation: Path | None) -> Sample:
    """Convert one image and its annotation file into a Sample (raises ConversionError on bad input)."""
    if len(images) > 1:
        raise ConversionError(f"{images[0]}: images {[p.name for p in images]} share one stem, so one label file")
    if annotation is None:
        ann_dir = images[0].parent.parent / "annotations"
        raise ConversionError(f"{images[0]}: no annotation file {images[0].stem}.txt in {ann_dir}")
    if not images:
        raise ConversionError(f"{annotation}: no image {annotation.stem}.* in {annotation.parent.parent}/images")
    image = images[0]
    sample = load_sample(safe_relpath(image.name, str(image)), image, str(image))
    try:
        lines = annotation.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConversionError(f"{annotation}: cannot read annotation file ({e})") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        box, score, category = parse_row(line, f"{annotation}:{n}")
        if category == IGNORED or score == 0:
            sample.dropped["ignored"] += 1
        elif category == OTHERS:
            sample.dropped["others"] += 1
        else:
            sample.add_box(category - 1, box, f"{annotation}:{n}")
    return sample


def pair_files(src: Path) -> list[tuple[list[Path], Path | None]]:
    """Pair the images in SRC/images with SRC/annotations/*.txt by file stem, sorted by stem."""
    images_dir, ann_dir = src / "images", src / "annotations"
    for d in images_dir, ann_dir:
        if not d.is_dir():
            raise ConversionError(f"{d}: folder not found (a VisDrone2019-DET split has images/ and annotations/)")
    images, annotations = {}, {p.stem: p for p in ann_dir.glob("*.txt") if p.is_file()}
    for p in sorted(images_dir.iterdir()):
        if p.is_file() and is_image(p):
            images.setdefault(p.stem, []).append(p)
    return [(images.get(s, []), annotations.get(s)) for s in sorted(images.keys() | annotations.keys())]


def convert_visdrone(
    src: str | Path, dst: str | Path, skip_bad: bool = False, progress: bool = True
) -> ConversionSummary:
    """Convert one VisDrone2019-DET split (SRC/images, SRC/annotations) into DST/images and DST/labels.

    Args:
        src: Split folder as distributed, e.g. 'VisDrone2019-DET-train'.
        dst: Output folder; created atomically, or replaced if it holds an earlier conversion.
        skip_bad: Skip and count images with bad input instead of raising ConversionError.
        progress: Show a progress bar.

    Returns:
        (ConversionSummary): Images and boxes written, boxes dropped by reason, bad items skipped.
    """
    src = Path(src)
    items = pair_files(src)
    summary = ConversionSummary("VisDrone", str(Path(dst).absolute()))
    return write_dataset(
        summary,
        items,
        lambda pair: convert_image(*pair),
        {"converter": summary.dataset, "source": {"src": str(src.absolute())}},
        skip_bad=skip_bad,
        progress=progress,
    )


def prepare_visdrone(root: str | Path, skip_bad: bool = False, progress: bool = True) -> list[str]:
    """Convert the raw splits ROOT/VisDrone2019-DET-{train,val,test-dev} into ROOT/{train,val,test} on first use.

    Args:
        root: Dataset root, e.g. Ultralytics' datasets_dir / 'VisDrone'.
        skip_bad: Skip and count bad items instead of raising.
        progress: Show progress bars.

    Returns:
        (list[str]): The splits converted by this call (test only when its raw folder is present).
    """
    root = Path(root)
    raw = {split: (root / name / "images", root / name / "annotations") for split, name in VISDRONE_SPLITS.items()}
    how = (
        f"Download VisDrone2019-DET-train.zip and VisDrone2019-DET-val.zip (optionally VisDrone2019-DET-test-dev.zip) "
        f"from {VISDRONE_URL} (Task 1: object detection in images) and extract them into {root}, so that "
        f"{root / VISDRONE_SPLITS['train']}/images and .../annotations exist (likewise for val); nothing is "
        "downloaded automatically."
    )

    def convert(split: str, dst: Path) -> None:
        """Convert one raw split into DST."""
        convert_visdrone(root / VISDRONE_SPLITS[split], dst, skip_bad=skip_bad, progress=progress)

    return prepare_splits(root, raw, convert, how)
