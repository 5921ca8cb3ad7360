"""PNG plots of the benchmark JSON files: AP by object size per model, and inference latency against AP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BUCKETS = {
    "AP": "all",
    "AP_vt": "very tiny\n2-8 px",
    "AP_t": "tiny\n8-16 px",
    "AP_s": "small\n16-32 px",
    "AP_m": "medium\n32-64 px",
}
AP_PNG, LATENCY_PNG = "bench_ap_by_size.png", "bench_latency_vs_ap.png"


def _load(path: str | Path | None) -> dict[str, Any] | None:
    """Read a benchmark JSON file, or return None when no path is given."""
    return json.loads(Path(path).read_text(encoding="utf-8")) if path else None


def _pyplot():
    """Return matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ap_by_size(accuracy: dict[str, Any], path: Path) -> Path:
    """Draw grouped bars of AP per size bucket (buckets without objects are left out), one bar per model.

    Args:
        accuracy (dict): Output of `bench accuracy --json`.
        path (Path): PNG to write.
    """
    plt = _pyplot()
    results = accuracy["results"]
    keys = [k for k in BUCKETS if any((r.get(k) is not None and r[k] >= 0) for r in results)]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    width = 0.8 / max(len(results), 1)
    for i, r in enumerate(results):
        xs = [j + (i - (len(results) - 1) / 2) * width for j in range(len(keys))]
        ax.bar(xs, [max(r.get(k) or 0.0, 0.0) for k in keys], width, label=r["model"])
    ax.set_xticks(range(len(keys)), [BUCKETS[k] for k in keys])
    ax.set_ylabel("AP (IoU 0.50:0.95)")
    s = accuracy.get("settings", {})
    ax.set_title(f"AP by object size ({s.get('epochs', '?')} epochs, imgsz {s.get('imgsz', '?')})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def latency_vs_ap(speed: dict[str, Any], accuracy: dict[str, Any], path: Path, key: str = "infer_b1") -> Path:
    """Scatter each model's median inference latency (first device of the speed run) against its AP.

    Args:
        speed (dict): Output of `bench speed --json`.
        accuracy (dict): Output of `bench accuracy --json`.
        path (Path): PNG to write.
        key (str): Latency measurement to use, e.g. 'infer_b1'.
    """
    plt = _pyplot()
    device, models = next(iter(speed["models"].items()))
    points = [
        (models[r["model"]][key]["median_ms"], r["AP"], r["model"])
        for r in accuracy["results"]
        if r["model"] in models and r.get("AP") is not None
    ]
    if not points:
        raise ValueError("the speed and accuracy JSON files share no model names")
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=120)
    for ms, ap, name in points:
        ax.scatter(ms, ap, s=40)
        ax.annotate(name, (ms, ap), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel(f"{key} latency, median ms ({device}, imgsz {speed['settings']['imgsz']})")
    ax.set_ylabel(f"AP (IoU 0.50:0.95), imgsz {accuracy.get('settings', {}).get('imgsz', '?')}")
    ax.set_title("Latency against tiny-object AP")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot(speed: str | Path | None, accuracy: str | Path | None, out: str | Path = "docs") -> list[Path]:
    """Write the plots the given JSON files allow and return their paths.

    Args:
        speed (str | Path, optional): `bench speed --json` file.
        accuracy (str | Path, optional): `bench accuracy --json` file; needed by both plots.
        out (str | Path): Folder for the PNGs.
    """
    speed, accuracy = _load(speed), _load(accuracy)
    if accuracy is None:
        raise ValueError("both plots need the accuracy JSON: pass --accuracy (and --speed for latency against AP)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [ap_by_size(accuracy, out / AP_PNG)]
    if speed is not None:
        paths.append(latency_vs_ap(speed, accuracy, out / LATENCY_PNG))
    return paths
