"""Shared parts of the dataset writers: bad-input errors, safe output names, YOLO label and image files, atomic
output folders with the manifest that marks them finished, and summaries.

Used by the VisDrone / AI-TOD converters, the tiler and the synthetic generator; Ultralytics and OpenCV are imported
only where they are needed, so that writing a dataset from memory (`hsfpn_yolo.data.synth`) does not pull in torch.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

import numpy as np

MANIFEST = "hsfpn_manifest.json"  # marks a folder as converter output, so a re-run may replace it
OWNED = ("images", "labels")  # what a writer owns inside DST, besides its manifest and extra files
STALE = ("labels.cache",)  # Ultralytics' label cache next to labels/; wrong once the labels are rewritten
LABEL_ROWS = {5: "a detection row 'cls xc yc w h'", 9: "an oriented-box row 'cls x1 y1 x2 y2 x3 y3 x4 y4'"}


class ConversionError(ValueError):
    """Bad converter input; the message names the file and line, or the annotation/image id, and what is wrong."""


class WriteSummary:
    """Base of the summaries `write_dataset` fills; a subclass has `dst`, `skipped`, `desc`, `count`, `as_dict` and
    `log`."""

    def reject(self, error: ConversionError, skip_bad: bool) -> None:
        """Raise ERROR, or with SKIP_BAD record it as a skipped item."""
        if not skip_bad:
            raise error
        self.skipped.append(str(error))

    def log_skipped(self) -> None:
        """Log the first skipped items and how many more there are."""
        from ultralytics.utils import LOGGER

        for msg in self.skipped[:10]:
            LOGGER.warning(f"skipped: {msg}")
        if len(self.skipped) > 10:
            LOGGER.warning(f"... and {len(self.skipped) - 10} more skipped items, see {Path(self.dst) / MANIFEST}")


@dataclass
class ConversionSummary(WriteSummary):
    """What one conversion wrote (images, boxes), dropped on purpose (by reason) and skipped as bad input."""

    dataset: str
    dst: str
    images: int = 0
    boxes: int = 0
    clipped: int = 0
    dropped: Counter = field(default_factory=Counter)
    skipped: list = field(default_factory=list)

    @property
    def desc(self) -> str:
        """Progress bar label."""
        return f"Converting {self.dataset}"

    def count(self, sample: Sample) -> None:
        """Count one written image: its boxes, the boxes clipped to it and those dropped, by reason."""
        self.images += 1
        self.boxes += len(sample.rows)
        self.clipped += sample.clipped
        self.dropped.update(sample.dropped)

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as plain JSON-able data."""
        return {
            "dataset": self.dataset,
            "dst": self.dst,
            "images": self.images,
            "boxes": self.boxes,
            "clipped": self.clipped,
            "dropped": dict(sorted(self.dropped.items())),
            "skipped": list(self.skipped),
        }

    def log(self) -> None:
        """Log a one-line summary, plus the first skipped items."""
        from ultralytics.utils import LOGGER

        dropped = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        LOGGER.info(
            f"{self.dataset} → {self.dst}: {self.images} images, {self.boxes} boxes ({self.clipped} clipped to the "
            f"image); dropped {sum(self.dropped.values())} boxes ({dropped}); skipped {len(self.skipped)} bad items"
        )
        self.log_skipped()


def yolo_row(cls: int, *coords: float) -> str:
    """Return one YOLO label line from normalised coordinates with 6 decimals: 'cls xc yc w h' for a box,
    'cls x1 y1 x2 y2 x3 y3 x4 y4' for an oriented box."""
    return " ".join([str(int(cls)), *(f"{v:.6f}" for v in coords)])


def read_yolo_labels(path: Path, columns: tuple[int, ...] = (5,)) -> np.ndarray:
    """Read a YOLO label file strictly, as written: one row of floats per non-blank line.

    Args:
        path: Label file.
        columns: Allowed values per row (see LABEL_ROWS): 5 for 'cls xc yc w h', 9 for 'cls x1 y1 ... x4 y4'.

    Returns:
        (np.ndarray): (N, C) rows, C the same for every row; (0, columns[0]) for a file without rows. Bad input raises
            ConversionError naming the file and line.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ConversionError(f"{path}: cannot read label file ({e})") from e
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            raise ConversionError(f"{path}:{n}: non-numeric value in {line.strip()!r}") from None
        if len(values) not in columns or not all(map(math.isfinite, values)) or values[0] < 0 or values[0] % 1:
            raise ConversionError(
                f"{path}:{n}: expected {' or '.join(LABEL_ROWS[c] for c in columns)} (class a non-negative integer), "
                f"got {line!r}"
            )
        if rows and len(values) != len(rows[0]):
            raise ConversionError(f"{path}:{n}: {len(values)} values, but the rows above have {len(rows[0])}")
        rows.append(values)
    return np.array(rows, np.float64).reshape(-1, len(rows[0]) if rows else columns[0])


def encode_image(img: np.ndarray, suffix: str = ".jpg") -> bytes:
    """Return a BGR image encoded as PNG (SUFFIX '.png') or as full-chroma JPEG (tiny objects are told apart by
    colour)."""
    import cv2

    jpeg = [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    ok, buf = cv2.imencode(suffix, img, [] if suffix == ".png" else jpeg)
    if not ok:
        raise OSError(f"could not encode a {suffix} image")
    return buf.tobytes()


@dataclass
class Sample:
    """One image's output: its safe relative name, source image file or encoded bytes, size (w, h), YOLO rows, drops."""

    name: PurePosixPath
    image: Path | bytes
    size: tuple[int, int]
    rows: list = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    clipped: int = 0

    def add_box(self, cls: int, box: Iterable[float], where: str) -> None:
        """Clip a pixel [x, y, w, h] box to the image and keep it as a YOLO row, or count why it is dropped."""
        x, y, w, h = box
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            raise ConversionError(f"{where}: box {[x, y, w, h]} has non-finite values")
        if w < 0 or h < 0:
            raise ConversionError(f"{where}: box {[x, y, w, h]} has negative size")
        if w == 0 or h == 0:
            self.dropped["zero-area"] += 1
            return
        iw, ih = self.size
        x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, iw), min(y + h, ih)
        if x2 <= x1 or y2 <= y1:
            self.dropped["outside-image"] += 1
            return
        self.clipped += (x1, y1, x2, y2) != (x, y, x + w, y + h)
        xc, yc, bw, bh = (x1 + x2) / 2 / iw, (y1 + y2) / 2 / ih, (x2 - x1) / iw, (y2 - y1) / ih
        self.rows.append(yolo_row(cls, xc, yc, bw, bh))


def safe_relpath(name: Any, where: str) -> PurePosixPath:
    """Return NAME (an image name from annotations) as a relative path that cannot leave its folder.

    Args:
        name: File name as found in the annotations, e.g. 'a.png' or 'sub/a.png'.
        where: Location used in the error message.

    Returns:
        (PurePosixPath): Normalised relative path; absolute paths, drive letters and '..' raise ConversionError.
    """
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise ConversionError(f"{where}: invalid file name {name!r}")
    posix = name.replace("\\", "/")  # Windows-made annotation files use backslashes
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix) or ".." in parts or not parts:
        raise ConversionError(
            f"{where}: unsafe file name {name!r} (absolute or containing '..'); "
            "image names must be relative paths inside the images folder"
        )
    return PurePosixPath(*parts)


def is_image(path: Path) -> bool:
    """Return True if PATH has a suffix Ultralytics loads as an image."""
    from ultralytics.data.utils import IMG_FORMATS

    return path.suffix[1:].lower() in IMG_FORMATS


def load_sample(name: PurePosixPath, image: Path, where: str) -> Sample:
    """Check that IMAGE exists, has an image suffix and a readable header, and start its Sample."""
    from PIL import Image, UnidentifiedImageError
    from ultralytics.data.utils import IMG_FORMATS
    from ultralytics.utils import patches

    # Pillow's own opener: Ultralytics' patched Image.open tries to pip-install pi-heif for any unidentified file
    pil_open = getattr(patches, "_image_open", Image.open)
    if not is_image(image):
        raise ConversionError(f"{where}: {image} is not an image type Ultralytics reads ({sorted(IMG_FORMATS)})")
    if not image.is_file():
        raise ConversionError(f"{where}: image {image} not found")
    try:
        with pil_open(image) as im:
            size = im.size  # header only; Ultralytics verifies the pixels when it builds its label cache
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise ConversionError(f"{where}: unreadable image {image} ({e})") from e
    return Sample(name, image, size)


def read_json(path: Path) -> Any:
    """Load a JSON file, turning a missing or malformed file into a ConversionError."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as e:
        raise ConversionError(f"{path}: file not found") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConversionError(f"{path}: cannot read JSON ({e})") from e


def read_manifest(folder: str | Path, name: str = MANIFEST, **expected: Any) -> dict[str, Any] | None:
    """Return the manifest a DatasetWriter left in FOLDER if it has each EXPECTED entry, else None.

    The manifest is written last, once every file is in place, so it marks a finished folder that a re-run may replace;
    EXPECTED entries (e.g. converter=..., params=...) tell whether it was made with given settings and can be reused.

    Args:
        folder: Output folder.
        name: Manifest file name.
        **expected: Top-level manifest entries that must be equal.

    Returns:
        (dict | None): The manifest; None when it is missing, unreadable or made otherwise.
    """
    try:
        manifest = json.loads((Path(folder) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or any(manifest.get(k) != v for k, v in expected.items()):
        return None
    return manifest


def _place_image(src: Path, dst: Path) -> None:
    """Hardlink SRC to DST (copy across filesystems or when SRC is a JPEG Ultralytics would re-save in place)."""
    if src.suffix.lower() in {".jpg", ".jpeg"}:
        with open(src, "rb") as f:
            f.seek(max(src.stat().st_size - 2, 0))
            truncated = f.read() != b"\xff\xd9"
        if truncated:  # Ultralytics rewrites such JPEGs in place, which through a hardlink would alter the raw data
            shutil.copy2(src, dst)
            return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class DatasetWriter:
    """Build DST/images, DST/labels and any extra files in a temporary sibling folder; move them into DST on success.

    A failed run removes everything it made (temp folder and any parent folders it created); a successful re-run
    replaces the previous output (recognised by its manifest file) instead of adding to it, and a non-empty DST that
    is not such output is refused.
    """

    def __init__(self, dst: str | Path, manifest: dict[str, Any], manifest_name: str = MANIFEST):
        """Remember DST, the manifest header (e.g. converter and source paths) and the manifest file name."""
        self.dst = Path(dst).absolute()
        self.manifest = manifest
        self.manifest_name = manifest_name
        self.tmp: Path | None = None
        self._made: list[Path] = []
        self._labels: set[str] = set()
        self._files: list[str] = []  # extra top-level files, e.g. a data YAML

    def __enter__(self) -> "DatasetWriter":
        """Check DST and create the temporary folder next to it."""
        if self.dst.exists() and not self.dst.is_dir():
            raise ConversionError(f"{self.dst}: output path exists and is not a folder")
        if self.dst.is_dir() and any(self.dst.iterdir()) and read_manifest(self.dst, self.manifest_name) is None:
            raise ConversionError(
                f"{self.dst}: folder is not empty and holds no {self.manifest_name} from an earlier conversion; "
                "refusing to write into it (choose a new or empty folder)"
            )
        self._made = [p for p in (self.dst.parent, *self.dst.parent.parents) if not p.exists()][::-1]
        try:
            self.dst.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.dst.name}.", suffix=".partial", dir=self.dst.parent))
            (self.tmp / "images").mkdir()
            (self.tmp / "labels").mkdir()
        except BaseException:
            self._cleanup()
            raise
        return self

    def add(self, sample: Sample) -> None:
        """Write SAMPLE's image (its file linked or copied, or its bytes) and label file into the temporary folder."""
        label = sample.name.with_suffix(".txt")
        source = sample.image if isinstance(sample.image, Path) else sample.name
        key = label.as_posix().casefold()  # case-insensitive filesystems would merge these
        if key in self._labels:
            raise ConversionError(f"{source}: label file labels/{label} is already taken by another image")
        img_out, lbl_out = self.tmp / "images" / sample.name, self.tmp / "labels" / label
        for out in img_out, lbl_out:  # defence in depth: safe_relpath already rules this out
            if not out.resolve().is_relative_to(self.tmp.resolve()):
                raise ConversionError(f"{source}: output {out} would leave {self.dst}")
        self._labels.add(key)
        img_out.parent.mkdir(parents=True, exist_ok=True)
        lbl_out.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(sample.image, bytes):
            img_out.write_bytes(sample.image)
        else:
            _place_image(sample.image, img_out)
        lbl_out.write_text("".join(f"{r}\n" for r in sample.rows), encoding="utf-8")

    def add_file(self, name: str, text: str) -> None:
        """Write a top-level text file NAME (e.g. a data YAML) that is moved into DST with the images and labels."""
        if Path(name).name != name or name.startswith(".") or name in (*OWNED, *STALE, self.manifest_name):
            raise ValueError(f"{name!r} is not a free top-level file name")
        (self.tmp / name).write_text(text, encoding="utf-8")
        self._files.append(name)

    def __exit__(self, exc_type, exc, tb) -> None:
        """Commit on success; on any error (Ctrl-C included) remove everything this run created."""
        try:
            if exc_type is None:
                self._commit()
                self._made = []  # DST now lives in them
        finally:
            self._cleanup()

    def _commit(self) -> None:
        """Write the manifest, then move the new conversion into DST in place of any previous one."""
        text = json.dumps(self.manifest, indent=2, sort_keys=True, ensure_ascii=False)
        (self.tmp / self.manifest_name).write_text(text + "\n", encoding="utf-8")
        if self.dst.is_dir() and not any(self.dst.iterdir()):
            self.dst.rmdir()  # rename() replaces an empty folder on POSIX only
            try:
                self.tmp.rename(self.dst)
            except BaseException:
                self.dst.mkdir(exist_ok=True)
                raise
        elif not self.dst.exists():
            self.tmp.rename(self.dst)
        else:
            self._swap()
            return
        self.tmp = None

    def _swap(self) -> None:
        """Replace the previous conversion in DST by the new one, rolling back if a move fails."""
        old = self.tmp / ".previous"  # the previous conversion waits here and is deleted with the temp folder
        old.mkdir()
        owned = (*OWNED, self.manifest_name, *self._files)
        moved, placed = [], []
        try:
            for n in (*owned, *STALE):
                if os.path.lexists(self.dst / n):
                    (self.dst / n).rename(old / n)
                    moved.append(n)
            for n in owned:
                (self.tmp / n).rename(self.dst / n)
                placed.append(n)
        except BaseException:
            for n in placed:
                (self.dst / n).rename(self.tmp / n)
            for n in moved:
                (old / n).rename(self.dst / n)
            raise

    def _cleanup(self) -> None:
        """Remove the temporary folder and the parent folders this run created."""
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        for p in reversed(self._made):
            try:
                p.rmdir()
            except OSError:
                break


def write_dataset(
    summary: WriteSummary,
    items: list,
    convert_item: Callable[[Any], Sample | Iterable[Sample]],
    manifest: dict[str, Any],
    skip_bad: bool = False,
    progress: bool = True,
    log: bool = True,
    files: dict[str, str] | None = None,
) -> WriteSummary:
    """Convert ITEMS one by one into SUMMARY.dst atomically, counting each written item in SUMMARY.

    Args:
        summary: Summary to fill; its `dst` is the output folder and it may already hold skipped items.
        items: Work items, e.g. one per image, passed to CONVERT_ITEM.
        convert_item: Returns the Sample, or the iterable of Samples, of one item, which SUMMARY.count takes once
            they are written; raises ConversionError on bad input.
        manifest: Manifest header, e.g. {'converter': name, 'source': paths}; the summary is added as 'summary'.
        skip_bad: Skip and count items with bad input instead of stopping at the first one.
        progress: Show a progress bar.
        log: Log the summary at the end.
        files: Extra top-level text files {name: text} written with the output, e.g. a data YAML.

    Returns:
        (WriteSummary): The filled summary.
    """
    from ultralytics.utils import TQDM

    with DatasetWriter(summary.dst, manifest) as writer:
        for item in TQDM(items, desc=summary.desc, total=len(items), disable=not progress):
            try:
                result = convert_item(item)
                for sample in [result] if isinstance(result, Sample) else result:
                    writer.add(sample)
            except ConversionError as e:
                summary.reject(e, skip_bad)
                continue
            summary.count(result)
        for name, text in (files or {}).items():
            writer.add_file(name, text)
        writer.manifest["summary"] = summary.as_dict()
    if log:
        summary.log()
    return summary


def prepare_splits(
    root: str | Path,
    raw: dict[str, tuple[Path, ...]],
    convert: Callable[[str, Path], Any],
    how_to_get: str,
    required: tuple[str, ...] = ("train", "val"),
) -> list[str]:
    """Convert each split whose raw files exist into ROOT/SPLIT, once; raise naming the raw folders when missing.

    Args:
        root: Dataset root folder (Ultralytics' resolved `path`).
        raw: For each split, the raw files/folders that must all exist to convert it.
        convert: Called as convert(split, ROOT/split) to convert one split.
        how_to_get: Text appended to the error, saying where the raw data comes from.
        required: Splits without which the dataset is unusable; others are converted only if present.

    Returns:
        (list[str]): The splits converted by this call.
    """
    root = Path(root)
    todo, missing = [], []
    for split, paths in raw.items():
        if read_manifest(root / split) is not None:
            continue  # converted on an earlier run
        if all(p.exists() for p in paths):
            todo.append(split)
        elif split in required:
            missing += [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"raw dataset files not found: {', '.join(missing)}. {how_to_get}")
    for split in todo:
        convert(split, root / split)
    return todo
