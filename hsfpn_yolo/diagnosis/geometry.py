"""Boxes as the network sees them: each frame letterboxed to the training size, object sizes in AI-TOD buckets.

Ultralytics scales a frame so that its long side becomes the training size (r = imgsz / max(h, w), up or down) and
pads it to a square canvas, centred as its LetterBox does. An object's size is sqrt(w * h) of its box there (of its
rotated box for oriented labels), bucketed by `hsfpn_yolo.sizes`; sizes under 2 px and from 64 px on, which no AI-TOD
bucket holds, are counted apart.
"""

from __future__ import annotations

import numpy as np

from hsfpn_yolo.sizes import BUCKETS, EDGES, NAMES, bucket_index

SIZE_KEYS = ("<2", *BUCKETS, ">=64")  # under 2 px, the AI-TOD buckets, from 64 px on
SIZE_LABELS = {
    "<2": f"under {EDGES[0]} px",
    **{k: f"{NAMES[k]} {lo}-{hi} px" for k, lo, hi in zip(BUCKETS, EDGES, EDGES[1:])},
}
SIZE_LABELS[">=64"] = f"large, {EDGES[-1]} px and up"
HIST_EDGES = 2.0 ** np.arange(-1, 10.01, 0.25)  # 0.5 .. 1024 px, four bins per octave


def scale(sizes: np.ndarray, imgsz: int) -> np.ndarray:
    """Return the letterbox scale r = imgsz / max(w, h) of each frame.

    Args:
        sizes (np.ndarray): (M, 2) frame width and height in pixels.
        imgsz (int): Training image size.
    """
    return imgsz / sizes.max(1)


def padding(sizes: np.ndarray, imgsz: int) -> np.ndarray:
    """Return the (M, 2) left and top padding of each frame centred on the square canvas, in whole pixels."""
    unpadded = np.round(sizes * scale(sizes, imgsz)[:, None])
    return np.round((imgsz - unpadded) / 2 - 0.1)  # LetterBox's rounding: the odd pixel goes right and bottom


def canvas_boxes(coords: np.ndarray, sizes: np.ndarray, imgsz: int) -> np.ndarray:
    """Return boxes in pixels of the training canvas: (N, 4) x1 y1 x2 y2, or (N, 5) xc yc w h angle for oriented boxes.

    Args:
        coords (np.ndarray): (N, 4) normalised xc yc w h, or (N, 8) normalised corners.
        sizes (np.ndarray): (N, 2) width and height of each box's frame.
        imgsz (int): Training image size.
    """
    r, pad = scale(sizes, imgsz)[:, None], padding(sizes, imgsz)
    if coords.shape[1] == 4:
        xy, wh = coords[:, :2] * sizes * r + pad, coords[:, 2:] * sizes * r
        return np.c_[xy - wh / 2, xy + wh / 2]
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    corners = coords.reshape(-1, 4, 2) * sizes[:, None] * r[:, None] + pad[:, None]
    return np.asarray(xyxyxyxy2xywhr(corners.reshape(-1, 8).astype(np.float32)), np.float64).reshape(-1, 5)


def box_size(boxes: np.ndarray) -> np.ndarray:
    """Return sqrt(w * h) of canvas boxes (x1 y1 x2 y2, or xc yc w h angle)."""
    wh = boxes[:, 2:4] - boxes[:, :2] if boxes.shape[1] == 4 else boxes[:, 2:4]
    return np.sqrt(np.clip(wh[:, 0] * wh[:, 1], 0, None))


def size_keys(size: np.ndarray) -> np.ndarray:
    """Return the index into SIZE_KEYS of each object size."""
    i = bucket_index(size) + 1  # AI-TOD buckets at 1..4, 'other' at 5
    return np.where((i == len(SIZE_KEYS) - 1) & (np.round(size, 3) < EDGES[0]), 0, i)


def size_summary(size: np.ndarray) -> dict:
    """Return the count and share of boxes per size key and the size histogram (HIST_EDGES, clipped at its ends)."""
    counts = np.bincount(size_keys(size), minlength=len(SIZE_KEYS))
    total = max(len(size), 1)
    hist, _ = np.histogram(np.clip(size, HIST_EDGES[0], HIST_EDGES[-1]), HIST_EDGES)
    return {
        "buckets": {k: {"count": int(c), "share": c / total} for k, c in zip(SIZE_KEYS, counts)},
        "median": float(np.median(size)) if len(size) else None,
        "histogram": {"edges": HIST_EDGES.tolist(), "counts": hist.tolist()},
    }


def frames_summary(sizes: np.ndarray, boxes_per_frame: np.ndarray, imgsz: int) -> dict:
    """Return the frame sizes, their scale to the training size and how many are larger than it.

    Args:
        sizes (np.ndarray): (M, 2) frame width and height.
        boxes_per_frame (np.ndarray): (M,) boxes in each frame.
        imgsz (int): Training image size.
    """
    r = scale(sizes, imgsz)
    stats = {
        k: {"min": int(v.min()), "median": float(np.median(v)), "max": int(v.max())}
        for k, v in (("width", sizes[:, 0]), ("height", sizes[:, 1]))
    }
    return {
        "count": len(sizes),
        "background": int((boxes_per_frame == 0).sum()),
        **stats,
        "scale_min": float(r.min()),
        "scale_median": float(np.median(r)),
        "scale_max": float(r.max()),
        "large": int((sizes.max(1) > imgsz).sum()),
    }


def nwd_constant(xywh: list[np.ndarray], sizes: np.ndarray, imgsz: int) -> float:
    """Return NWD's C as `constant: auto` measures it when training starts (`hsfpn_yolo.nwd.mean_box_size`).

    Args:
        xywh (list[np.ndarray]): Per frame, its boxes as normalised xc yc w h.
        sizes (np.ndarray): (M, 2) frame width and height.
        imgsz (int): Training image size.
    """
    from types import SimpleNamespace

    from hsfpn_yolo.nwd import mean_box_size

    frames = [{"bboxes": b, "shape": (int(h), int(w))} for b, (w, h) in zip(xywh, sizes)]
    return mean_box_size(SimpleNamespace(labels=frames), imgsz)
