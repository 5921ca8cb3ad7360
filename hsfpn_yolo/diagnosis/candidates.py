"""Candidate anchor statistics of a box set: per model, overall and per object size, as training would select them.

A box with no candidate at all cannot be learnt; a box whose candidates all come from the small-target enlargement
(none in the plain in-box test) is learnt only from anchors whose centres lie outside the object.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .anchors import candidate_counts, enlargement
from .geometry import SIZE_KEYS, size_keys

MAX_CANDIDATES = 10  # candidate counts from this on share the last histogram bin


class Counter:
    """Candidate counts of one box set on the training canvas, computed once per stride set and mode."""

    def __init__(self, boxes: np.ndarray, imgsz: int):
        """Keep the canvas boxes (x1 y1 x2 y2, or xc yc w h angle) and the canvas side."""
        self.boxes, self.imgsz, self.cache = boxes, imgsz, {}

    def __call__(self, strides: tuple[int, ...], enlarge: bool) -> np.ndarray:
        """Return the candidate count of every box (`anchors.candidate_counts`)."""
        key = (strides, enlarge)
        if key not in self.cache:
            self.cache[key] = candidate_counts(self.boxes, strides, self.imgsz, enlarge)
        return self.cache[key]

    def lacking(self, strides: tuple[int, ...]) -> float:
        """Return the share of boxes without an anchor centre inside them (the plain in-box test)."""
        return share(self(strides, False) == 0) or 0.0


def share(mask: np.ndarray) -> float | None:
    """Return the share of True in MASK, or None when it is empty."""
    return float(mask.mean()) if len(mask) else None


def model_report(name: str, strides: tuple[int, ...], size: np.ndarray, count: Counter) -> dict[str, Any]:
    """Return one model's candidate statistics, overall and per size key.

    Args:
        name (str): Model name.
        strides (tuple[int, ...]): Its strides.
        size (np.ndarray): Object size of every box at the training size.
        count (Counter): Candidate counts of the same boxes.
    """
    plain, grown, keys = count(strides, False), count(strides, True), size_keys(size)
    below = size < min(strides)
    buckets = {}
    for i, k in enumerate(SIZE_KEYS):
        m = keys == i
        buckets[k] = {
            "boxes": int(m.sum()),
            "below_finest_stride": share(below[m]),
            "no_candidate_plain": share(plain[m] == 0),
            "no_candidate_enlarged": share(grown[m] == 0),
            "median_candidates": float(np.median(grown[m])) if m.any() else None,
        }
    hist = {
        k: np.bincount(np.minimum(c, MAX_CANDIDATES), minlength=MAX_CANDIDATES + 1).tolist()
        for k, c in (("plain", plain), ("enlarged", grown))
    }
    return {
        "model": name,
        "strides": list(strides),
        "enlargement": enlargement(strides, count.boxes.shape[1] == 5),
        "below_finest_stride": share(below),
        "no_candidate": {"plain": share(plain == 0), "enlarged": share(grown == 0)},
        "median_candidates": {"plain": float(np.median(plain)), "enlarged": float(np.median(grown))},
        "candidates": hist,
        "buckets": buckets,
    }
