"""AI-TOD object sizes: the bucket edges by sqrt(box area) in pixels, their keys and labels, and how boxes are counted.

Counts use half-open buckets [lo, hi), so every box lands in exactly one bucket or in 'other' (below 2 px or 64 px and
up). AP evaluation keeps COCO's inclusive area ranges (`RANGES` squared), as AI-TOD's own tools do.

Examples:
    >>> from hsfpn_yolo.sizes import bucket_counts
    >>> bucket_counts([2, 7.9, 8, 16, 64])  # {'vt': 2, 't': 1, 's': 1, 'm': 0, 'other': 1}
"""

from __future__ import annotations

import numpy as np

EDGES = (2, 8, 16, 32, 64)  # px, sqrt(box area)
BUCKETS = ("vt", "t", "s", "m")  # very tiny, tiny, small, medium
RANGES = {k: (lo, hi) for k, lo, hi in zip(BUCKETS, EDGES[:-1], EDGES[1:])}  # {"vt": (2, 8), ...}
NAMES = {"vt": "very tiny", "t": "tiny", "s": "small", "m": "medium"}
LABELS = {k: f"{NAMES[k]}\n{lo}-{hi} px" for k, (lo, hi) in RANGES.items()}  # two-line plot labels
OTHER = "other"  # outside [2, 64) px: counted, but in no AI-TOD bucket
SIZE_DECIMALS = 3  # sizes are compared with the edges at 1/1000 px
AP_KEYS = ("AP", "AP50", "AP75", *(f"AP_{k}" for k in BUCKETS))  # AP (IoU 0.50:0.95), AP50, AP75, AP per bucket


def bucket_index(size: np.ndarray | list[float]) -> np.ndarray:
    """Return the index into (*BUCKETS, OTHER) of each sqrt(box area), with half-open [lo, hi) buckets.

    Args:
        size (np.ndarray | list[float]): Square roots of box areas in pixels.

    Returns:
        (np.ndarray): Integer index per size; len(BUCKETS) ('other') below 2 px, from 64 px on, and for NaN.
    """
    # Rounded to 1/1000 px first: boxes scaled to the network input and back come out a few 1e-6 px off, and an
    # exact 8 px box (integer labels put many on the edges) would otherwise drop into the bucket below
    size = np.round(np.asarray(size, dtype=np.float64), SIZE_DECIMALS)
    i = np.searchsorted(EDGES, size, side="right") - 1  # last edge <= size
    return np.where((i >= 0) & (i < len(BUCKETS)), i, len(BUCKETS))


def bucket_counts(size: np.ndarray | list[float]) -> dict[str, int]:
    """Return the number of sizes in each bucket and in 'other'; the counts add up to len(size).

    Args:
        size (np.ndarray | list[float]): Square roots of box areas in pixels.

    Returns:
        (dict[str, int]): Count for each key of BUCKETS, then OTHER.
    """
    counts = np.bincount(bucket_index(size).ravel(), minlength=len(BUCKETS) + 1)
    return dict(zip((*BUCKETS, OTHER), counts.tolist()))
