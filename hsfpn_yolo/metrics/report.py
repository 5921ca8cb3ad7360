"""Print and save tiny-object AP: a summary line, `tiny_metrics.json` (latest) and `tiny_metrics.csv` (a row a run)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..sizes import BUCKETS, OTHER
from .tiny import KEYS, SIZE_RANGES

JSON_NAME = "tiny_metrics.json"
CSV_NAME = "tiny_metrics.csv"
COUNTED = (*BUCKETS, OTHER)  # ground-truth counts per size bucket; they add up to the number of boxes
CSV_FIELDS = ("val", "mode", "images", *KEYS, *(f"n_{k}" for k in COUNTED))


def format_line(results: dict[str, float], counts: dict[str, int]) -> str:
    """Return the one-line summary; an AP of -1 (no objects of that size) is shown as n/a.

    Args:
        results (dict[str, float]): Values for `KEYS`.
        counts (dict[str, int]): Ground-truth box counts per size range key.

    Returns:
        (str): e.g. "Tiny-object AP (AI-TOD sizes): AP 0.123 AP50 ... AP_m n/a | objects vt 12, t 30, s 5, m 0, other 0".
    """
    values = " ".join(f"{k} {'n/a' if results[k] < 0 else f'{results[k]:.3f}'}" for k in KEYS)
    objects = ", ".join(f"{k} {counts.get(k, 0)}" for k in COUNTED)
    return f"Tiny-object AP (AI-TOD sizes): {values} | objects {objects}"


def save_report(
    save_dir: Path, results: dict[str, float], counts: dict[str, int], images: int, mode: str, extra: dict | None = None
) -> None:
    """Write the latest results to `tiny_metrics.json` and append them as one row of `tiny_metrics.csv`.

    Args:
        save_dir (Path): Run folder.
        results (dict[str, float]): Values for `KEYS`.
        counts (dict[str, int]): Ground-truth box counts per size range key and "all".
        images (int): Number of evaluated images.
        mode (str): "train" for a validation during training epochs, "val" for `yolo val`, "sliced" for sliced val.
        extra (dict, optional): More fields for the JSON report (e.g. the slicing settings and time per frame).
    """
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    report = {
        **results,
        "images": images,
        "instances": counts,
        "size_ranges_px": {k: list(v) for k, v in SIZE_RANGES.items()},  # by sqrt(box area), original image pixels
        **(extra or {}),
    }
    (save_dir / JSON_NAME).write_text(json.dumps(report, indent=2), encoding="utf-8")

    file = save_dir / CSV_NAME
    lines = file.read_text(encoding="utf-8").splitlines() if file.exists() else []
    row = {"val": max(len(lines) - 1, 0) + 1, "mode": mode, "images": images}  # val: 1-based row number
    row.update({k: round(v, 5) for k, v in results.items()})
    row.update({f"n_{k}": counts.get(k, 0) for k in COUNTED})
    with file.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        if not lines:
            writer.writeheader()
        writer.writerow(row)
