"""Views over `bench accuracy` results files: models against their stock counterparts with the starts side by side,
any pair of models, and a training option's effect (the same models without and with it).

Every view reads the files with `stats.runs_in` and compares with `stats.summarize` / `stats.difference`: runs group
by model, start and regime (the file's training budget), so two regimes are shown side by side, never pooled.

Examples:
    hsfpn-yolo bench compare docs/study/default.json
    hsfpn-yolo bench compare docs/study/default.json --pairs yolov8n-hsfpn:yolov8n-finepath --times
    hsfpn-yolo bench compare docs/study/default.json --with docs/study/default-nwd.json
    hsfpn-yolo bench compare docs/study/regime-curves.json --curves
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import baseline_of, counterpart, is_p2, md_table
from .stats import CONVERGED, converged_epoch, delta_cell, difference, mean_sd, runs_in, summarize

METRICS = ("AP", "AP_vt")  # default columns
TIME = "epoch_train_s"


def _label(s: dict[str, Any], regimes: int) -> str:
    """Return a group's column label: its start, and its regime where the files hold more than one."""
    return f"{s['start']}, {s['regime']}" if regimes > 1 else s["start"]


def _by_model(summary: list[dict[str, Any]]) -> tuple[dict[str, dict[str, dict[str, Any]]], list[str]]:
    """Return {model: {group label: summary}} and the group labels in order (scratch before pretrained)."""
    regimes = len({s["regime"] for s in summary})
    groups = sorted(dict.fromkeys(_label(s, regimes) for s in summary), key=lambda g: (not g.startswith("scratch"), g))
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for s in sorted(summary, key=lambda s: _model_rank(s["model"])):
        table.setdefault(s["model"], {})[_label(s, regimes)] = s
    return table, groups


def _model_rank(model: str) -> tuple:
    """Order models by generation and scale, P3-P5 before P2, then stock, finepath, HS-FPN, others (by name)."""
    variant = 0 if counterpart(model) == model else 1 if "-finepath" in model else 2 if "-hsfpn" in model else 3
    return baseline_of(model), is_p2(model), variant, model


def against_stock(summary: list[dict[str, Any]], metrics: tuple[str, ...] = METRICS, times: bool = False) -> str:
    """Return one row per model: per group (start, regime) its spread and its difference to the stock counterpart.

    Args:
        summary (list[dict]): `stats.summarize` of the runs.
        metrics (tuple[str]): Metrics shown.
        times (bool): Add the ratio of the mean training time per epoch to the counterpart's.
    """
    table, groups = _by_model(summary)
    rows, columns = [], ["model", "vs"]
    for g in groups:
        for k in metrics:
            columns += [f"{k} {g}", f"Δ{k} {g}"]
        columns += [f"n {g}"] + ([f"epoch time × {g}"] if times else [])
    for model, cells in table.items():
        row = {"model": model, "vs": next((s["baseline"] for s in cells.values() if "baseline" in s), None)}
        for g, s in cells.items():
            row[f"n {g}"] = len(s["seeds"])
            for k in metrics:
                row[f"{k} {g}"] = mean_sd(s[k])
                if "baseline" in s:
                    row[f"Δ{k} {g}"] = delta_cell(s.get(f"delta_{k}"))
            if times and s.get(f"ratio_{TIME}"):
                row[f"epoch time × {g}"] = f"{s[f'ratio_{TIME}']:.2f}"
        rows.append(row)
    return md_table(rows, columns)


def pairs(summary: list[dict[str, Any]], wanted: list[tuple[str, str]], metrics: tuple[str, ...], times: bool) -> str:
    """Return one row per pair and group: the difference of the means (A − B) ± its standard error, with the verdict.

    Args:
        summary (list[dict]): `stats.summarize` of the runs.
        wanted (list[tuple[str, str]]): (A, B) model names.
        metrics (tuple[str]): Metrics shown.
        times (bool): Add the ratio of the mean training times per epoch (A / B).
    """
    table, groups = _by_model(summary)
    missing = sorted({m for pair in wanted for m in pair} - set(table))
    if missing:
        raise ValueError(f"no runs of {', '.join(missing)} in these files; they hold {', '.join(table)}")
    rows = []
    for a, b in wanted:
        for g in groups:
            sa, sb = table[a].get(g), table[b].get(g)
            if sa is None or sb is None:
                continue
            row = {
                "comparison": f"{a} − {b}",
                "group": g,
                **{f"Δ{k}": delta_cell(difference(sa[k], sb[k])) for k in metrics},
            }
            if times and sa[TIME]["mean"] and sb[TIME]["mean"]:
                row["epoch time ×"] = f"{sa[TIME]['mean'] / sb[TIME]['mean']:.2f}"
            rows.append(row)
    return md_table(rows, ["comparison", "group", *(f"Δ{k}" for k in metrics), *(["epoch time ×"] if times else [])])


def option_effect(
    without: list[dict[str, Any]], with_: list[dict[str, Any]], metrics: tuple[str, ...], times: bool
) -> str:
    """Return one row per model and group held on both sides: its spread without and with an option and the
    difference (with − without).

    Args:
        without (list[dict]): `stats.summarize` of the runs trained without the option.
        with_ (list[dict]): `stats.summarize` of the runs trained with it.
        metrics (tuple[str]): Metrics shown.
        times (bool): Add the ratio of the mean training times per epoch (with / without).
    """
    base = {(s["model"], s["start"]): s for s in without}
    rows = []
    for s in with_:
        b = base.get((s["model"], s["start"]))
        if b is None:
            continue
        row = {"model": s["model"], "start": s["start"]}
        for k in metrics:
            row |= {
                f"{k} without": mean_sd(b[k]),
                f"{k} with": mean_sd(s[k]),
                f"Δ{k}": delta_cell(difference(s[k], b[k])),
            }
        if times and s[TIME]["mean"] and b[TIME]["mean"]:
            row["epoch time ×"] = f"{s[TIME]['mean'] / b[TIME]['mean']:.2f}"
        rows.append(row)
    columns = [
        "model",
        "start",
        *(f"{k} {side}" for k in metrics for side in ("without", "with")),
        *(f"Δ{k}" for k in metrics),
    ]
    return md_table(rows, columns + (["epoch time ×"] if times else []))


def curves(runs: list[dict[str, Any]], key: str = "AP") -> str:
    """Return one row per run that recorded its learning curve: epochs, best validation AP and its epoch, and the
    first epoch within `CONVERGED` of the best (the benchmark's rule for its default epochs).

    Args:
        runs (list[dict]): `stats.runs_in` rows.
        key (str): Curve: 'AP' (tiny-object AP) or 'mAP50-95' (Ultralytics' own).
    """
    rows = []
    for r in runs:
        curve = (r.get("curve") or {}).get(key) or []
        values = [v for v in curve if v is not None]
        if not values:
            continue
        best = max(values)
        done = converged_epoch(curve)
        rows.append(
            {
                "model": r["model"],
                "start": r["start"],
                "seed": r["seed"],
                "epochs": len(curve),
                f"best {key}": f"{best:.3f}",
                "at epoch": curve.index(best) + 1,
                f"first epoch ≥ {CONVERGED:.0%} of best": done,
                f"{key} there": f"{curve[done - 1]:.3f}",
                f"final {key}": None if curve[-1] is None else f"{curve[-1]:.3f}",
            }
        )
    if not rows:
        raise ValueError(f"no run in these files recorded its {key} curve")
    return md_table(rows, list(rows[0]))


def run(
    files: list[str | Path],
    pairs_: list[str] | None = None,
    with_: list[str | Path] | None = None,
    alias: dict[str, str] | None = None,
    metrics: tuple[str, ...] = METRICS,
    times: bool = False,
    learning: bool = False,
    seeds: list[int] | None = None,
) -> str:
    """Print and return the comparison of `bench accuracy` results files as Markdown.

    Args:
        files (list[str | Path]): Results files; runs found in several count once.
        pairs_ (list[str], optional): 'A:B' model pairs to compare instead of each model with its stock counterpart.
        with_ (list[str | Path], optional): Results trained with an option; `files` are the runs without it.
        alias (dict, optional): Model renames applied to `files` (e.g. a study YAML shipped under another name).
        metrics (tuple[str]): Metrics shown.
        times (bool): Add training-time ratios (wall time: compare only runs made under the same load).
        learning (bool): Print the runs' learning curves in brief instead (`curves`).
        seeds (list[int], optional): Keep only the runs of these seeds (e.g. what the first three of five said).
    """

    def kept(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in runs if seeds is None or r["seed"] in seeds]

    runs = kept(runs_in(list(files), alias))
    if learning:
        text = curves(runs, metrics[0])
    elif with_:
        text = option_effect(summarize(runs), summarize(kept(runs_in(list(with_)))), metrics, times)
    elif pairs_:
        wanted = []
        for p in pairs_:
            a, sep, b = p.partition(":")
            if not (sep and a and b):
                raise ValueError(f"write a pair as MODEL_A:MODEL_B, e.g. yolov8n-hsfpn:yolov8n; got {p!r}")
            wanted.append((a, b))
        text = pairs(summarize(runs), wanted, metrics, times)
    else:
        text = against_stock(summarize(runs), metrics, times)
    regimes = sorted({r["regime"] for r in runs})
    text = f"Regime{'s' if len(regimes) > 1 else ''}: {'; '.join(regimes)}\n\n{text}"
    print(text)
    return text
