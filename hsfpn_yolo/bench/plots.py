"""PNG plots of the benchmark JSON files: AP by object size per model, every seed's AP, validation AP by epoch (the
learning curves), and inference latency against AP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..sizes import LABELS
from .common import model_name
from .stats import CONVERGED, converged_epoch, runs_in, start_of, summarize

BUCKETS = {"AP": "all", **{f"AP_{k}": label for k, label in LABELS.items()}}  # AP metric key: x-axis label
AP_PNG, LATENCY_PNG, SEEDS_PNG = "bench_ap_by_size.png", "bench_latency_vs_ap.png", "bench_ap_per_seed.png"
CURVE_PNG = "bench_ap_by_epoch.png"


def _load(path: str | Path | None) -> dict[str, Any] | None:
    """Read a benchmark JSON file, or return None when no path is given."""
    return json.loads(Path(path).read_text(encoding="utf-8")) if path else None


def _load_accuracy(paths: str | Path | list[str | Path] | None) -> dict[str, Any] | None:
    """Read one `bench accuracy` results file, or merge several: their runs (`stats.runs_in`), summarised again, with
    the settings they all share."""
    if not paths:
        return None
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if len(paths) == 1:
        return _load(paths[0])
    files = [_load(p).get("settings") or {} for p in paths]
    shared = {k: v for k, v in files[0].items() if all(f.get(k) == v for f in files)}
    runs = runs_in(paths)
    return {"settings": shared, "runs": runs, "summary": summarize(runs)}


def _pyplot():
    """Return matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean(s: dict[str, Any], key: str) -> float | None:
    """Return the seed mean of metric `key` of one model summary (None when the bucket had no objects)."""
    v = s.get(key) or {}
    return v.get("mean")


def _label(item: dict[str, Any], starts: int) -> str:
    """Return a model's name, with its start where the file holds runs of more than one start."""
    return f"{item['model']} ({start_of(item)})" if starts > 1 else item["model"]


def _budget(settings: dict[str, Any]) -> str:
    """Return a results file's budget for a title: epochs, image size, batch and nominal batch size."""
    nbs = f", nbs {settings['nbs']}" if "nbs" in settings else ""  # Ultralytics' 64 when the run did not set it
    return f"{settings.get('epochs', '?')} epochs, imgsz {settings.get('imgsz', '?')}, batch {settings.get('batch', '?')}{nbs}"


def ap_by_size(accuracy: dict[str, Any], path: Path) -> Path:
    """Draw grouped bars of mean AP per size bucket with one standard deviation as error bars, one bar per model.

    Buckets without objects are left out.

    Args:
        accuracy (dict): Output of `bench accuracy --json`.
        path (Path): PNG to write.
    """
    plt = _pyplot()
    summary = accuracy["summary"]
    keys = [k for k in BUCKETS if any(_mean(s, k) is not None for s in summary)]
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=120)
    width = 0.8 / max(len(summary), 1)
    starts = len({start_of(s) for s in summary})
    for i, s in enumerate(summary):
        xs = [j + (i - (len(summary) - 1) / 2) * width for j in range(len(keys))]
        means = [_mean(s, k) or 0.0 for k in keys]
        errs = [(s.get(k) or {}).get("std") or 0.0 for k in keys]
        ax.bar(xs, means, width, yerr=errs, capsize=2, label=f"{_label(s, starts)} ({len(s['seeds'])} seeds)")
    ax.set_xticks(range(len(keys)), [BUCKETS[k] for k in keys])
    ax.set_ylabel("AP (IoU 0.50:0.95), mean ± sd over seeds")
    ax.set_title(f"AP by object size ({_budget(accuracy.get('settings', {}))})")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def ap_per_seed(accuracy: dict[str, Any], path: Path, keys: tuple[str, ...] = ("AP", "AP_vt", "AP_t", "AP_s")) -> Path:
    """Draw every run as a dot (one column per model, one panel per metric) with the seed mean as a bar.

    Args:
        accuracy (dict): Output of `bench accuracy --json` (its per-seed `runs`).
        path (Path): PNG to write.
        keys (tuple[str]): Metrics, one panel each.
    """
    plt = _pyplot()
    groups = [(s["model"], start_of(s)) for s in accuracy["summary"]]
    starts = len({g[1] for g in groups})
    models = [_label({"model": m, "start": st}, starts) for m, st in groups]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 4.2), dpi=120, sharex=True)
    for ax, key in zip(axes, keys):
        for x, g in enumerate(groups):
            rows = [r for r in accuracy["runs"] if (r["model"], start_of(r)) == g]
            ys = [r[key] for r in rows if r.get(key) is not None and r[key] >= 0]
            ax.scatter([x] * len(ys), ys, s=14, alpha=0.8)
            if ys:
                ax.hlines(sum(ys) / len(ys), x - 0.3, x + 0.3, colors="k", linewidth=1.5)
        ax.set_title(BUCKETS[key].replace("\n", " "))
        ax.set_xticks(range(len(models)), models, rotation=60, ha="right", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("AP (dot: one seed, bar: mean)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def ap_by_epoch(accuracy: dict[str, Any], path: Path, key: str = "AP") -> Path:
    """Draw each run's validation AP after every epoch (its learning curve), marking the first epoch within
    `CONVERGED` of the run's best.

    Args:
        accuracy (dict): Output of `bench accuracy --json` whose runs recorded their curves.
        path (Path): PNG to write.
        key (str): Curve to draw: 'AP' (tiny-object AP) or 'mAP50-95' (Ultralytics' own).
    """
    runs = [r for r in accuracy["runs"] if any(v is not None for v in (r.get("curve") or {}).get(key, []))]
    if not runs:
        raise ValueError(f"no run in this file recorded its {key} curve (results of `bench accuracy` before curves)")
    plt = _pyplot()
    starts = len({start_of(r) for r in runs})
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    for r in runs:
        ys = [float("nan") if v is None else v for v in r["curve"][key]]
        epochs = range(1, len(ys) + 1)
        (line,) = ax.plot(epochs, ys, linewidth=1.4)
        done = converged_epoch(r["curve"][key])
        label = f"{_label(r, starts)} seed {r['seed']}: best {max(v for v in ys if v == v):.3f}"
        if done:
            ax.plot(done, ys[done - 1], "o", color=line.get_color(), markersize=6)
            label += f", ≥{CONVERGED:.0%} of it from epoch {done}"
        line.set_label(label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {'tiny-object AP' if key == 'AP' else key}")
    ax.set_title(f"AP by epoch ({_budget(accuracy.get('settings', {}))})")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
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
    models = {model_name(k): v for k, v in models.items()}  # names as in the accuracy JSON
    points = [
        (models[s["model"]][key]["median_ms"], _mean(s, "AP"), s["model"])
        for s in accuracy["summary"]
        if s["model"] in models and _mean(s, "AP") is not None
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


def plot(
    speed: str | Path | None, accuracy: str | Path | list[str | Path] | None, out: str | Path = "docs"
) -> list[Path]:
    """Write the plots the given JSON files allow and return their paths.

    Args:
        speed (str | Path, optional): `bench speed --json` file.
        accuracy (str | Path | list, optional): `bench accuracy --json` file(s), merged where several; needed by all
            plots.
        out (str | Path): Folder for the PNGs.
    """
    speed, accuracy = _load(speed), _load_accuracy(accuracy)
    if accuracy is None:
        raise ValueError("both plots need the accuracy JSON: pass --accuracy (and --speed for latency against AP)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [ap_by_size(accuracy, out / AP_PNG), ap_per_seed(accuracy, out / SEEDS_PNG)]
    if any(r.get("curve") for r in accuracy["runs"]):
        paths.append(ap_by_epoch(accuracy, out / CURVE_PNG))
    if speed is not None:
        paths.append(latency_vs_ap(speed, accuracy, out / LATENCY_PNG))
    return paths
