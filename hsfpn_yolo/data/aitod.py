"""AI-TOD (COCO-style JSON) → Ultralytics YOLO labels, and the first-use preparation for cfg/datasets/AI-TOD.yaml."""

from __future__ import annotations

from numbers import Real
from pathlib import Path
from typing import Any

from hsfpn_yolo.data.convert_utils import (
    ConversionError,
    ConversionSummary,
    Sample,
    load_sample,
    prepare_splits,
    read_json,
    safe_relpath,
    write_dataset,
)

AITOD_NAMES = ("airplane", "bridge", "storage-tank", "ship", "swimming-pool", "vehicle", "person", "wind-mill")
AITOD_SPLITS = ("train", "val", "test")
AITOD_JSONS = ("aitod_{}_v1.json", "aitodv2_{}.json")  # v1 and v2 annotation file names, per split
AITOD_URL = "https://github.com/jwwangchn/AI-TOD"


def _class_key(name: str) -> str:
    """Return a category name in the form used by AITOD_NAMES ('Storage_Tank' → 'storage-tank')."""
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def need(record: Any, keys: tuple[str, ...], where: str) -> None:
    """Raise a ConversionError naming WHERE unless RECORD is a JSON object holding all KEYS."""
    if not isinstance(record, dict):
        raise ConversionError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if missing := [k for k in keys if k not in record]:
        raise ConversionError(f"{where}: missing key(s) {missing}")


def need_id(record: dict, key: str, where: str) -> Any:
    """Return RECORD[KEY] after checking that it is usable as an id (an integer or a string)."""
    v = record[key]
    if not isinstance(v, (int, str)) or isinstance(v, bool):
        raise ConversionError(f"{where}: '{key}' must be an integer or string, got {v!r}")
    return v


def load_coco(path: Path) -> dict[str, list]:
    """Load a COCO-style JSON and check that it has 'images', 'annotations' and 'categories' lists."""
    data = read_json(path)
    need(data, ("images", "annotations", "categories"), str(path))
    for key in "images", "annotations", "categories":
        if not isinstance(data[key], list):
            raise ConversionError(f"{path}: '{key}' must be a list, got {type(data[key]).__name__}")
    return data


def class_map(categories: list, path: Path) -> dict[Any, int | str]:
    """Map each category id to its AI-TOD class index by name; names outside the class list map to themselves."""
    classes = {}
    for i, cat in enumerate(categories):
        need(cat, ("id", "name"), f"{path}: categories[{i}]")
        if need_id(cat, "id", f"{path}: categories[{i}]") in classes:
            raise ConversionError(f"{path}: category id {cat['id']} is defined twice")
        key = _class_key(str(cat["name"]))
        classes[cat["id"]] = AITOD_NAMES.index(key) if key in AITOD_NAMES else str(cat["name"])
    return classes


def group_annotations(
    data: dict[str, list], path: Path, summary: ConversionSummary, skip_bad: bool
) -> list[tuple[dict, list[dict]]]:
    """Return (image record, its annotations) pairs; annotations that point at no image are rejected."""
    groups: dict[Any, tuple[dict, list[dict]]] = {}
    for i, image in enumerate(data["images"]):
        try:
            need(image, ("id",), f"{path}: images[{i}]")
            need_id(image, "id", f"{path}: images[{i}]")
        except ConversionError as e:
            summary.reject(e, skip_bad)
            continue
        if image["id"] in groups:
            raise ConversionError(f"{path}: image id {image['id']} is used by more than one image")
        groups[image["id"]] = (image, [])
    for i, ann in enumerate(data["annotations"]):
        where = f"{path}: annotation id {ann.get('id', '?') if isinstance(ann, dict) else '?'} (annotations[{i}])"
        try:
            need(ann, ("image_id",), where)
            if need_id(ann, "image_id", where) not in groups:
                raise ConversionError(f"{where}: image id {ann['image_id']!r} is not in 'images'")
        except ConversionError as e:
            summary.reject(e, skip_bad)
            continue
        groups[ann["image_id"]][1].append(ann)
    return list(groups.values())


def convert_image(image: dict, anns: list[dict], images_dir: Path, classes: dict, path: Path) -> Sample:
    """Convert one COCO image record and its annotations into a Sample (raises ConversionError on bad input)."""
    where = f"{path}: image id {image['id']}"
    need(image, ("file_name",), where)
    name = safe_relpath(image["file_name"], where)
    sample = load_sample(name, images_dir / name, where)
    if "width" in image and (image.get("width"), image.get("height")) != sample.size:
        w, h = sample.size
        raise ConversionError(f"{where}: JSON size {image.get('width')}x{image.get('height')} != file size {w}x{h}")
    for ann in anns:
        where = f"{path}: annotation id {ann.get('id', '?')} (image id {image['id']})"
        need(ann, ("category_id", "bbox"), where)
        need_id(ann, "category_id", where)
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            raise ConversionError(f"{where}: bbox must be [x, y, w, h] numbers, got {box!r}")
        cls = classes.get(ann["category_id"])
        if cls is None:
            raise ConversionError(f"{where}: category id {ann['category_id']!r} is not in 'categories'")
        if isinstance(cls, str):
            raise ConversionError(f"{where}: category {cls!r} is not an AI-TOD class {list(AITOD_NAMES)}")
        if ann.get("iscrowd") or ann.get("ignore"):
            sample.dropped["ignored"] += 1
        else:
            sample.add_box(cls, box, where)
    return sample


def _is_number(v: Any) -> bool:
    """Return True for a JSON number (bool excluded)."""
    return isinstance(v, Real) and not isinstance(v, bool)


def convert_aitod(
    annotations_json: str | Path,
    images_dir: str | Path,
    dst: str | Path,
    skip_bad: bool = False,
    progress: bool = True,
) -> ConversionSummary:
    """Convert one AI-TOD split (COCO-style JSON + image folder) into DST/images and DST/labels.

    Args:
        annotations_json: COCO-style annotation file, e.g. 'aitod_train_v1.json'.
        images_dir: Folder that the JSON's `file_name` entries are relative to.
        dst: Output folder; created atomically, or replaced if it holds an earlier conversion.
        skip_bad: Skip and count bad images/annotations instead of raising ConversionError.
        progress: Show a progress bar.

    Returns:
        (ConversionSummary): Images and boxes written, boxes dropped by reason, bad items skipped.
    """
    path, images_dir = Path(annotations_json), Path(images_dir)
    if not images_dir.is_dir():
        raise ConversionError(f"{images_dir}: images folder not found")
    data = load_coco(path)
    classes = class_map(data["categories"], path)
    summary = ConversionSummary("AI-TOD", str(Path(dst).absolute()))
    items = group_annotations(data, path, summary, skip_bad)
    source = {"annotations": str(path.absolute()), "images": str(images_dir.absolute())}
    return write_dataset(
        summary,
        items,
        lambda item: convert_image(*item, images_dir, classes, path),
        {"converter": summary.dataset, "source": source},
        skip_bad=skip_bad,
        progress=progress,
    )


def aitod_json(root: Path, split: str) -> Path:
    """Return ROOT/aitod/annotations' JSON for SPLIT (v1 or v2 name; the v1 name when neither exists)."""
    candidates = [root / "aitod" / "annotations" / n.format(split) for n in AITOD_JSONS]
    return next((p for p in candidates if p.is_file()), candidates[0])


def prepare_aitod(root: str | Path, skip_bad: bool = False, progress: bool = True) -> list[str]:
    """Convert ROOT/aitod/{annotations/aitod_SPLIT_v1.json, images/SPLIT} into ROOT/{train,val,test} on first use.

    Args:
        root: Dataset root, e.g. Ultralytics' datasets_dir / 'AI-TOD'.
        skip_bad: Skip and count bad items instead of raising.
        progress: Show progress bars.

    Returns:
        (list[str]): The splits converted by this call (test only when its raw files are present).
    """
    root = Path(root)
    raw = {s: (aitod_json(root, s), root / "aitod" / "images" / s) for s in AITOD_SPLITS}
    how = (
        f"Build AI-TOD as described at {AITOD_URL} (annotations plus the aitodtoolkit that generates the images from "
        f"the xView training set) and put its 'aitod' output folder at {root / 'aitod'}: "
        f"annotations/aitod_{{train,val,test}}_v1.json (or AI-TOD v2's aitodv2_{{train,val,test}}.json) and "
        "images/{train,val,test}/*.png; nothing is downloaded automatically."
    )

    def convert(split: str, dst: Path) -> None:
        """Convert one raw split into DST."""
        convert_aitod(*raw[split], dst, skip_bad=skip_bad, progress=progress)

    return prepare_splits(root, raw, convert, how)
