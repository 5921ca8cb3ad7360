"""What tiling frames larger than the training size would do, at the package's tiling defaults, against resizing them.

The tiles are the ones `hsfpn-yolo tile` and the *-tiles.yaml datasets make (`hsfpn_yolo.data.tiles`: the same
windows, the same clipping and `min_visible` rule), so the numbers are those a tiled training set would have. A tile
is trained at the training size, so a box piece in a tile is scaled by imgsz / tile size.
"""

from __future__ import annotations

import functools

import numpy as np

from hsfpn_yolo.data.tiles import MIN_VISIBLE, OVERLAP, TILE_SIZE, clip_to_window, tile_windows

from .candidates import Counter
from .geometry import box_size, nwd_constant, size_summary
from .labels import LabelSet

WHOLE = 1e-6  # px: a piece this close to its box on every side is the whole box


@functools.lru_cache(maxsize=256)
def windows(width: int, height: int, size: int, overlap: float) -> tuple[tuple[int, int, int, int], ...]:
    """Return the tile windows of a frame size (cached: datasets have few distinct frame sizes)."""
    return tuple(tile_windows(width, height, size, overlap))


def tile_boxes(
    labels: LabelSet,
    size: int = TILE_SIZE,
    overlap: float = OVERLAP,
    min_visible: float = MIN_VISIBLE,
    frames: np.ndarray | None = None,
) -> dict:
    """Cut the frames into tiles as the tiler does and return what becomes of their boxes.

    Args:
        labels (LabelSet): Detection labels (axis-aligned boxes).
        size (int): Tile side, px.
        overlap (float): Share of the tile side that neighbouring tiles have in common.
        min_visible (float): Smallest share of a box's area a tile keeps.
        frames (np.ndarray, optional): Indices of the frames to tile (default: all).

    Returns:
        (dict): `tiles` (count), `pieces` ((P, 4) x1 y1 x2 y2 in tile pixels), `piece_box` ((P,) index of the box each
            piece is cut from), `piece_cut` ((P,) whether a tile edge cuts it), `boxes` (indices of the tiled boxes).
    """
    frames = np.arange(len(labels.images)) if frames is None else frames
    by_frame = labels.by_frame()
    tiles, pieces, piece_box, boxes = 0, [], [], []
    for f in frames:
        w, h = (int(v) for v in labels.sizes[f])
        idx = by_frame[f]
        xy, wh = labels.coords[idx, :2] * (w, h), labels.coords[idx, 2:4] * (w, h)
        rows = np.c_[idx, xy - wh / 2, xy + wh / 2]  # the box index rides in the class column
        for win in windows(w, h, size, overlap):
            kept, _, _ = clip_to_window(rows, win, min_visible)
            tiles += 1
            pieces.append(kept[:, 1:])
            piece_box.append(kept[:, 0].astype(np.int64))
        boxes.append(idx)
    pieces = np.concatenate(pieces) if pieces else np.zeros((0, 4))
    piece_box = np.concatenate(piece_box) if piece_box else np.zeros(0, np.int64)
    original = labels.coords[piece_box, 2:4] * labels.sizes[labels.image[piece_box]]
    cut = (np.abs((pieces[:, 2:] - pieces[:, :2]) - original) > WHOLE).any(1)
    return {
        "tiles": tiles,
        "pieces": pieces,
        "piece_box": piece_box,
        "piece_cut": cut,
        "boxes": np.concatenate(boxes) if boxes else np.zeros(0, np.int64),
    }


def large_frames(labels: LabelSet, imgsz: int, size: int = TILE_SIZE) -> dict[str, np.ndarray]:
    """Return the frames whose long side exceeds the training size: `large`, and of those `tileable` (both sides at
    least a tile) and `too_small` (a side under the tile, which the tiler refuses)."""
    large = np.flatnonzero(labels.sizes.max(1) > imgsz)
    fits = (labels.sizes[large] >= size).all(1)
    return {"large": large, "tileable": large[fits], "too_small": large[~fits]}


def tile_canvas(pieces: np.ndarray, imgsz: int, size: int = TILE_SIZE) -> np.ndarray:
    """Return tile-pixel pieces on the training canvas: a square tile is scaled by imgsz / size, without padding."""
    return pieces * (imgsz / size)


def split_counts(cut: dict) -> dict[str, int]:
    """Return how many tiled boxes some tile holds whole, how many are only cut pieces, and how many no tile keeps.

    Args:
        cut (dict): The result of `tile_boxes`.
    """
    boxes = np.sort(cut["boxes"])
    rows = np.searchsorted(boxes, cut["piece_box"])
    kept = np.bincount(rows, minlength=len(boxes)) > 0
    whole = np.bincount(rows[~cut["piece_cut"]], minlength=len(boxes)) > 0
    return {
        "boxes": len(boxes),
        "whole": int(whole.sum()),
        "split": int((kept & ~whole).sum()),
        "lost": int((~kept).sum()),
    }


def tiling_report(labels: LabelSet, imgsz: int, reference: dict[str, tuple[int, ...]], count: Counter) -> dict:
    """Return what tiling the frames larger than the training size would do, against resizing them.

    Args:
        labels (LabelSet): The split's labels.
        imgsz (int): Training image size.
        reference (dict): The stride sets the advice weighs ('p3', and 'p2' for detect labels).
        count (Counter): Candidate counts of every box resized to the training size.

    Returns:
        (dict): The tiling settings and frame counts; `applies` and, where it does not, `reason`; else tiles, box
            pieces, boxes whole / split / lost, sizes on tiles and resized, and the advice's facts at tile scale.
    """
    frames = large_frames(labels, imgsz)
    out = {"tile": TILE_SIZE, "overlap": OVERLAP, "min_visible": MIN_VISIBLE}
    out.update({k: len(v) for k, v in frames.items()})
    if labels.task != "detect":
        return {**out, "applies": False, "reason": "the tiler cuts axis-aligned labels only"}
    if not out["large"]:
        return {**out, "applies": False, "reason": "no frame is larger than the training size"}
    if not out["tileable"]:
        return {**out, "applies": False, "reason": f"a side of each is under the {TILE_SIZE} px tile"}
    cut = tile_boxes(labels, frames=frames["tileable"])
    pieces = tile_canvas(cut["pieces"], imgsz)
    on_tiles, tile_size = Counter(pieces, imgsz), box_size(pieces)
    xywh = np.c_[(cut["pieces"][:, :2] + cut["pieces"][:, 2:]) / 2, cut["pieces"][:, 2:] - cut["pieces"][:, :2]]
    return {
        **out,
        "applies": True,
        "tiles": cut["tiles"],
        "tiles_per_frame": cut["tiles"] / len(frames["tileable"]),
        "pieces": len(pieces),
        "pieces_cut": int(cut["piece_cut"].sum()),
        **split_counts(cut),
        "sizes_tiles": size_summary(tile_size),
        "sizes_resized": size_summary(box_size(count.boxes[cut["boxes"]])),
        "resized_lacking_p3": float((count(reference["p3"], False)[cut["boxes"]] == 0).mean()),
        "tiles_lacking_p3": on_tiles.lacking(reference["p3"]),
        "at_tile_scale": {  # every tile has the tile size: one frame of all pieces gives the same mean
            "lacking_p3": on_tiles.lacking(reference["p3"]),
            "lacking_p2": on_tiles.lacking(reference["p2"]),
            "very_tiny": float((np.round(tile_size, 3) < 8).mean()),
            "under16": float((np.round(tile_size, 3) < 16).mean()),
            "nwd_constant": nwd_constant([xywh / TILE_SIZE], np.array([[TILE_SIZE, TILE_SIZE]]), imgsz),
        },
    }
