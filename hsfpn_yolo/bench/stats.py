"""The one loader and the one statistics path for `bench accuracy` results: every table and comparison uses these.

A run is one (model, start, seed) training; runs group by model, start (from scratch or from a pretrained checkpoint)
and regime (the training budget of the file they come from: epochs, nominal batch size, image size), so runs of two
regimes never mix silently in one mean.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from ..sizes import AP_KEYS
from .common import counterpart

METRICS = AP_KEYS  # AP, AP50, AP75 and AP per AI-TOD size bucket
TIMES = ("epoch_train_s", "epoch_total_s")
NOMINAL_BATCH = 64  # Ultralytics' default nbs: what a results file without an `nbs` setting trained with
CONVERGED = 0.95  # a learning curve has converged from the first epoch reaching this share of its best value


def spread(values: list[float]) -> dict[str, float | int | None]:
    """Return n, mean, sample standard deviation (0 for one value), min and max of `values` (None when empty)."""
    if not values:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"n": len(values), "mean": statistics.fmean(values), "std": sd, "min": min(values), "max": max(values)}


def difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """Return the difference of two `spread` means, its standard error and verdict (None where a mean is missing).

    The difference of two means has standard error sqrt(s1²/n1 + s2²/n2); `verdict` says 'gain' or 'loss' where the
    difference exceeds twice that error, else 'within noise'; 'too few seeds' where either side has fewer than two.

    Args:
        a (dict): `spread` of the model.
        b (dict): `spread` of the model it is compared with.
    """
    if a["mean"] is None or b["mean"] is None:
        return None
    diff = a["mean"] - b["mean"]
    se = math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    if a["n"] < 2 or b["n"] < 2:  # no spread to compare with
        return {"diff": diff, "se": se, "verdict": "too few seeds"}
    verdict = "gain" if diff > 2 * se else "loss" if diff < -2 * se else "within noise"
    return {"diff": diff, "se": se, "verdict": verdict}


def mean_sd(s: dict[str, Any], digits: int = 3) -> str:
    """Format a `spread` as 'mean ± sd (min–max)', or 'n/a' without values."""
    if s["mean"] is None:
        return "n/a"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def delta_cell(d: dict[str, Any] | None) -> str:
    """Format a `difference` as '+0.012 ± 0.008 (noise)', or '–' without one."""
    if d is None:
        return "–"
    return f"{d['diff']:+.3f} ± {d['se']:.3f} ({d['verdict'].replace('within ', '')})"


def converged_epoch(curve: list[float | None], share: float = CONVERGED) -> int | None:
    """Return the first epoch (1-based) whose value reaches `share` of the curve's best, or None for an empty curve.

    Args:
        curve (list[float | None]): A value per epoch (None where the epoch was not validated).
        share (float): Share of the best value.
    """
    values = [v for v in curve if v is not None]
    if not values:
        return None
    best = max(values)
    return next(i + 1 for i, v in enumerate(curve) if v is not None and v >= share * best)


def start_of(run: dict[str, Any]) -> str:
    """Return 'scratch' or 'pretrained' for a run (older files name the checkpoint a pretrained run started from)."""
    return "scratch" if run.get("start", "scratch") == "scratch" else "pretrained"


def regime_of(settings: dict[str, Any], steps: int | None = None) -> str:
    """Return a results file's training budget as a label, e.g. '30 ep · nbs 8 · 256 px · 750 steps'.

    Args:
        settings (dict): The file's `settings` (a file without `nbs` trained at Ultralytics' default).
        steps (int, optional): Optimizer steps per run, where the runs recorded them.
    """
    parts = [f"{settings.get('epochs', '?')} ep", f"nbs {settings.get('nbs', NOMINAL_BATCH)}"]
    if "imgsz" in settings:
        parts.append(f"{settings['imgsz']} px")
    if steps:
        parts.append(f"{steps} steps")
    return " · ".join(parts)


def runs_in(paths: list[str | Path], alias: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Return the runs of several results JSONs, each tagged with its `start` and its file's `regime`; a (model,
    start, regime, seed) run found in more than one file counts once.

    Args:
        paths (list[str | Path]): `bench accuracy` results JSONs.
        alias (dict, optional): Model renames (e.g. a study YAML that later shipped under another name).
    """
    alias = alias or {}
    runs: dict[tuple, dict[str, Any]] = {}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            rows = data["runs"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a `bench accuracy` results file ({type(e).__name__}: {e})") from e
        steps = {r["optimizer_steps"] for r in rows if r.get("optimizer_steps")}
        regime = regime_of(data.get("settings") or {}, steps.pop() if len(steps) == 1 else None)
        for r in rows:
            model = alias.get(r["model"], r["model"])
            row = {**r, "model": model, "start": start_of(r), "regime": regime}
            runs.setdefault((model, row["start"], regime, r["seed"]), row)
    return list(runs.values())


def group_key(run: dict[str, Any]) -> tuple[str, str, str]:
    """Return the (model, start, regime) group of a run; runs straight from `train_one` have no regime yet."""
    return run["model"], start_of(run), run.get("regime", "")


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate the per-seed runs per (model, start, regime) and compare each with its stock counterpart's group of
    the same start and regime (`difference`).

    Args:
        runs (list[dict]): Rows of `accuracy.train_one` or `runs_in`.
    """
    stats = {}
    for key in dict.fromkeys(map(group_key, runs)):
        rows = [r for r in runs if group_key(r) == key]
        # A bucket without objects reports -1 (COCO's convention); leave it out of the statistics
        keys = {k: spread([r[k] for r in rows if r.get(k) is not None and r[k] >= 0]) for k in METRICS + TIMES}
        model, start, regime = key
        stats[key] = {
            "model": model,
            "start": start,
            "regime": regime,
            "seeds": sorted(r["seed"] for r in rows),
            "params": rows[0]["params"],
            **keys,
        }
    for (model, start, regime), s in stats.items():
        base = stats.get((counterpart(model), start, regime))
        if base is None or base is s:
            continue
        s["baseline"] = base["model"]
        for k in METRICS:
            if (d := difference(s[k], base[k])) is not None:
                s[f"delta_{k}"] = d
        for k in TIMES:
            if s[k]["mean"] and base[k]["mean"]:
                s[f"ratio_{k}"] = s[k]["mean"] / base[k]["mean"]
    return list(stats.values())
