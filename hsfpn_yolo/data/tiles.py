"""Tile a YOLO-format dataset of large frames into overlapping square tiles, and the first-use tiling of our datasets.

Tile positions come from SAHI's `get_slice_bboxes`, the function its sliced inference uses, so a model trained on
these tiles sees at training time the windows it is shown at prediction time. Boxes are clipped to each tile and kept
when at least `min_visible` of their area lies inside it; a share `empty` of the tiles without any kept box is kept
as background, picked by a hash of the tile name so that a re-run keeps the same ones. A tile is named after its frame
and its pixel window, `<frame stem>_<x0>_<y0>_<x1>_<y1>.<ext>` (SAHI's slice naming), next to where the frame was.

Examples:
    >>> from hsfpn_yolo.data.tiles import tile_dataset
    >>> tile_dataset("datasets/VisDrone/train", "datasets/VisDrone/tiles-640/train", size=640, overlap=0.2)

    $ hsfpn-yolo tile datasets/VisDrone/train datasets/VisDrone/tiles-640/train --size 640 --overlap 0.2
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import numpy as np

from .convert_utils import (
    ConversionError,
    Sample,
    WriteSummary,
    encode_image,
    is_image,
    load_sample,
    read_manifest,
    read_yolo_labels,
    safe_relpath,
    write_dataset,
    yolo_row,
)

STRIDE = 32  # tile sides must be a multiple of YOLO's largest stride, so no padding enters a tile
LOSSLESS = {".png", ".bmp", ".tif", ".tiff"}  # such frames give PNG tiles; any other format gives JPEG tiles
TILER = "hsfpn_yolo.data.tiles"

# Default tiling, shared by tile_dataset, prepare_tiles (behind the *-tiles.yaml datasets) and `hsfpn-yolo tile`
TILE_SIZE = 640  # tile side in pixels: YOLO's usual training size, so tiles train without resizing
OVERLAP = 0.2  # share of the tile side that neighbouring tiles have in common, as in SAHI's sliced inference
MIN_VISIBLE = 0.5  # a box is kept in a tile when at least this share of its area lies inside
EMPTY_SHARE = 0.1  # share of the tiles without boxes kept as background


def check_slicing(size: int, overlap: float) -> None:
    """Raise ValueError unless SIZE is a positive multiple of 32 and OVERLAP lies in [0, 1).

    Args:
        size (int): Tile (slice) side in pixels.
        overlap (float): Fraction of a tile shared with its neighbour.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < STRIDE or size % STRIDE:
        near = size // STRIDE * STRIDE if isinstance(size, (int, np.integer)) and size > STRIDE else None
        hint = f"; use {near} or {near + STRIDE}" if near else ""
        raise ValueError(
            f"tile size must be a positive multiple of {STRIDE} (YOLO's largest stride), got {size!r}{hint}"
        )
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1) (a fraction of the tile side), got {overlap!r}")


def tile_windows(width: int, height: int, size: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """Return the (x0, y0, x1, y1) pixel windows that cover a frame, as SAHI's sliced inference uses them.

    Args:
        width (int): Frame width in pixels.
        height (int): Frame height in pixels.
        size (int): Tile side in pixels; the frame must be at least that large on both sides.
        overlap (float): Fraction of the tile side shared by neighbouring tiles (the last row/column is moved back
            to end at the frame edge, so it may overlap more).
    """
    from sahi.slicing import get_slice_bboxes

    check_slicing(size, overlap)
    if width < size or height < size:
        raise ValueError(f"frame {width}x{height} is smaller than the {size} px tile")
    windows = get_slice_bboxes(height, width, size, size, False, overlap, overlap)
    return [tuple(int(v) for v in w) for w in windows]


def clip_to_window(
    boxes: np.ndarray, window: tuple[int, int, int, int], min_visible: float
) -> tuple[np.ndarray, int, int]:
    """Clip pixel boxes to a window and keep those with at least MIN_VISIBLE of their area inside.

    Args:
        boxes (np.ndarray): (N, 5) rows of [cls, x1, y1, x2, y2] in frame pixels.
        window (tuple): (x0, y0, x1, y1) window in frame pixels.
        min_visible (float): Smallest kept fraction of a box's area that lies inside the window, in (0, 1].

    Returns:
        (np.ndarray): (K, 5) kept rows [cls, x1, y1, x2, y2] clipped to the window, in window pixels.
        (int): Kept boxes that were cut by the window edge.
        (int): Boxes that touch the window but show less than MIN_VISIBLE of their area in it (dropped).
    """
    x0, y0, x1, y1 = window
    inner = np.c_[
        np.clip(boxes[:, 1], x0, x1),
        np.clip(boxes[:, 2], y0, y1),
        np.clip(boxes[:, 3], x0, x1),
        np.clip(boxes[:, 4], y0, y1),
    ]
    inside = (inner[:, 2] - inner[:, 0]) * (inner[:, 3] - inner[:, 1])
    area = (boxes[:, 3] - boxes[:, 1]) * (boxes[:, 4] - boxes[:, 2])
    touches = inside > 0
    visible = np.divide(inside, area, out=np.zeros_like(inside), where=area > 0)
    keep = touches & (visible >= min_visible - 1e-4)  # tolerance for 6-decimal labels: exactly half visible is half
    cut = keep & (np.abs(inner - boxes[:, 1:]).max(1) > 0) if len(boxes) else keep
    kept = np.c_[boxes[keep, :1], inner[keep] - (x0, y0, x0, y0)]
    return kept, int(cut.sum()), int((touches & ~keep).sum())


def read_labels(path: Path, width: int, height: int) -> np.ndarray:
    """Read a YOLO detection label file as (N, 5) rows [cls, x1, y1, x2, y2] in pixels of a WIDTH x HEIGHT frame."""
    lab = read_yolo_labels(path)
    xy, wh = lab[:, 1:3] * (width, height), lab[:, 3:5] * (width, height)
    return np.c_[lab[:, :1], xy - wh / 2, xy + wh / 2]


def _keep_empty(name: PurePosixPath, share: float) -> bool:
    """Return whether an empty tile is kept: a hash of its name below SHARE, the same choice on every run."""
    return zlib.crc32(name.as_posix().encode()) / 2**32 < share


@dataclass
class FrameTiles:
    """The kept tiles of one frame (each Sample's `clipped`: its boxes cut by the tile edge) and what was dropped."""

    tiles: list[Sample]
    unlabelled: bool  # the frame has no label file and is tiled as background
    below_min_visible: int = 0  # box pieces dropped because too little of the box is inside a tile
    empty_dropped: int = 0  # tiles without boxes that were not kept

    def __iter__(self) -> Iterator[Sample]:
        """Iterate over the kept tiles."""
        return iter(self.tiles)


@dataclass
class TileSummary(WriteSummary):
    """What one tiling wrote and dropped: frames, tiles (with and without objects), boxes and skipped frames."""

    src: str
    dst: str
    params: dict[str, Any]
    frames: int = 0
    tiles: int = 0
    empty_kept: int = 0
    empty_dropped: int = 0
    boxes: int = 0
    cut: int = 0
    below_min_visible: int = 0
    unlabelled_frames: int = 0
    skipped: list = field(default_factory=list)

    @property
    def desc(self) -> str:
        """Progress bar label."""
        return f"Tiling {Path(self.src).name}"

    def count(self, frame: FrameTiles) -> None:
        """Count one tiled frame."""
        self.frames += 1
        self.unlabelled_frames += frame.unlabelled
        self.tiles += len(frame.tiles)
        self.empty_kept += sum(not t.rows for t in frame.tiles)
        self.empty_dropped += frame.empty_dropped
        self.boxes += sum(len(t.rows) for t in frame.tiles)
        self.cut += sum(t.clipped for t in frame.tiles)
        self.below_min_visible += frame.below_min_visible

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-able data."""
        return dict(self.__dict__)

    def log(self) -> None:
        """Log a one-line summary and the first skipped frames."""
        from ultralytics.utils import LOGGER

        p = self.params
        LOGGER.info(
            f"Tiled {self.frames} frames of {self.src} into {self.tiles} tiles of {p['size']} px (overlap "
            f"{p['overlap']}) at {self.dst}: {self.boxes} boxes ({self.cut} cut by a tile edge), {self.below_min_visible} "
            f"box pieces dropped below min-visible {p['min_visible']}, empty tiles kept {self.empty_kept} / dropped "
            f"{self.empty_dropped} (share {p['empty']}), {self.unlabelled_frames} frames without a label file tiled as "
            f"background, {len(self.skipped)} bad frames skipped"
        )
        self.log_skipped()


def _frames(src: Path) -> list[tuple[PurePosixPath, Path, Path]]:
    """List (relative name, image, label file) for every image under SRC/images; labels mirror images/ in labels/."""
    images, labels = src / "images", src / "labels"
    if not images.is_dir():
        raise ConversionError(f"{images}: folder not found (a YOLO-format dataset has images/ and labels/)")
    if not labels.is_dir():
        raise ConversionError(
            f"{labels}: folder not found; the frames have no labels (YOLO-format labels/ next to images/, one "
            "'cls xc yc w h' .txt per image)"
        )
    frames = []
    for p in sorted(images.rglob("*")):
        if p.is_file() and is_image(p):
            rel = safe_relpath(p.relative_to(images).as_posix(), str(p))
            frames.append((rel, p, (labels / rel).with_suffix(".txt")))
    if not frames:
        raise ConversionError(f"{images}: no images found")
    return frames


def _tile_frame(rel: PurePosixPath, image: Path, label: Path, params: dict[str, Any]) -> FrameTiles:
    """Return the kept tiles of one frame as Samples, with what was dropped (raises ConversionError on bad input)."""
    import cv2

    w, h = load_sample(rel, image, str(image)).size  # checks type and header first, with a clear message
    size = params["size"]
    if w < size or h < size:
        fits = STRIDE * (min(w, h) // STRIDE)
        raise ConversionError(
            f"{image}: frame {w}x{h} is smaller than the {size} px tile; use --size {fits} or less, or --skip-bad"
        )
    boxes = read_labels(label, w, h) if label.is_file() else np.zeros((0, 5))
    frame = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if frame is None or frame.shape[:2] != (h, w):
        raise ConversionError(f"{image}: unreadable image (corrupt or truncated pixel data)")
    suffix = ".png" if image.suffix.lower() in LOSSLESS else ".jpg"
    result = FrameTiles([], unlabelled=not label.is_file())
    for win in tile_windows(w, h, size, params["overlap"]):
        kept, cut, below = clip_to_window(boxes, win, params["min_visible"])
        name = rel.with_name(f"{rel.stem}_{win[0]}_{win[1]}_{win[2]}_{win[3]}{suffix}")
        result.below_min_visible += below
        if not len(kept) and not _keep_empty(name, params["empty"]):
            result.empty_dropped += 1
            continue
        xyxy = kept[:, 1:] / size
        rows = [
            yolo_row(c, (a + b) / 2, (d + e) / 2, b - a, e - d) for c, a, d, b, e in np.c_[kept[:, :1], xyxy].tolist()
        ]
        crop = np.ascontiguousarray(frame[win[1] : win[3], win[0] : win[2]])
        result.tiles.append(Sample(name, encode_image(crop, suffix), (size, size), rows, clipped=cut))
    return result


def _check_params(size: int, overlap: float, min_visible: float, empty: float) -> dict[str, Any]:
    """Validate the tiling options and return them as the manifest's parameters."""
    check_slicing(size, overlap)
    if not 0 < min_visible <= 1:
        raise ValueError(f"min_visible must be in (0, 1] (the kept fraction of a box's area), got {min_visible!r}")
    if not 0 <= empty <= 1:
        raise ValueError(f"empty must be in [0, 1] (the share of tiles without objects that is kept), got {empty!r}")
    return {"size": int(size), "overlap": float(overlap), "min_visible": float(min_visible), "empty": float(empty)}


def _data_yaml(src: Path) -> str | None:
    """Return SRC/data.yaml rewritten for the tiled copy (same splits and names, no path or download), or None."""
    import yaml

    file = src / "data.yaml"
    if not file.is_file():
        return None
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    keep = {k: data[k] for k in ("train", "val", "test", "nc", "names") if data.get(k) is not None}
    return f"# tiles of {src} made by {TILER}\n" + yaml.safe_dump(keep, sort_keys=False)


def tile_dataset(
    src: str | Path,
    dst: str | Path,
    size: int = TILE_SIZE,
    overlap: float = OVERLAP,
    min_visible: float = MIN_VISIBLE,
    empty: float = EMPTY_SHARE,
    skip_bad: bool = False,
    progress: bool = True,
) -> TileSummary:
    """Tile every frame of a YOLO-format dataset (SRC/images/**, SRC/labels/**) into DST, atomically.

    Args:
        src (str | Path): Dataset folder with images/ and labels/ (e.g. a converted split or a synthetic set); a
            data.yaml in it is copied to DST with the same splits and names.
        dst (str | Path): Output folder; created atomically, or replaced if it holds an earlier tiling.
        size (int): Tile side in pixels, a multiple of 32.
        overlap (float): Fraction of the tile side shared by neighbouring tiles, in [0, 1).
        min_visible (float): Keep a box in a tile when at least this fraction of its area lies inside, in (0, 1].
        empty (float): Share of the tiles without kept boxes that is kept as background, in [0, 1].
        skip_bad (bool): Skip and count bad frames (unreadable, smaller than a tile, bad labels) instead of stopping.
        progress (bool): Show a progress bar over frames and log the summary.

    Returns:
        (TileSummary): Frames, tiles and boxes written, pieces and empty tiles dropped, frames skipped.
    """
    params = _check_params(size, overlap, min_visible, empty)
    src, dst = Path(src).absolute(), Path(dst).absolute()
    if dst == src or dst.is_relative_to(src) or src.is_relative_to(dst):
        raise ConversionError(f"{dst}: the output folder must lie outside the source {src} and not contain it")
    frames = _frames(src)
    data_yaml = _data_yaml(src)
    return write_dataset(
        TileSummary(str(src), str(dst), params),
        frames,
        lambda frame: _tile_frame(*frame, params),
        {"converter": TILER, "source": {"src": str(src)}, "params": params},
        skip_bad=skip_bad,
        progress=progress,
        log=progress,
        files={} if data_yaml is None else {"data.yaml": data_yaml},
    )


def tiled(dst: Path, params: dict[str, Any]) -> bool:
    """Return whether DST holds a complete tiling made with PARAMS."""
    return read_manifest(dst, converter=TILER, params=params) is not None


def prepare_tiles(
    root: str | Path,
    splits: tuple[str, ...] = ("train", "val"),
    size: int = TILE_SIZE,
    overlap: float = OVERLAP,
    min_visible: float = MIN_VISIBLE,
    empty: float = EMPTY_SHARE,
    skip_bad: bool = False,
) -> list[str]:
    """Tile the converted splits ROOT/<split> into ROOT/tiles-<size>/<split> once (behind the *-tiles.yaml datasets).

    Args:
        root (str | Path): Dataset root holding the converted splits, e.g. datasets/VisDrone.
        splits (tuple[str, ...]): Splits to tile; each must have been converted already.
        size (int): Tile side in pixels.
        overlap (float): Fraction of the tile side shared by neighbouring tiles.
        min_visible (float): Smallest kept fraction of a box's area.
        empty (float): Share of the empty tiles kept.
        skip_bad (bool): Skip and count bad frames.

    Returns:
        (list[str]): The splits tiled by this call (a split already tiled with these settings is left alone).
    """
    root = Path(root)
    params = _check_params(size, overlap, min_visible, empty)
    done = []
    for split in splits:
        dst = root / f"tiles-{size}" / split
        if tiled(dst, params):
            continue
        tile_dataset(root / split, dst, size, overlap, min_visible, empty, skip_bad=skip_bad)
        done.append(split)
    return done
