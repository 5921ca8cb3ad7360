"""Print what a training option changes: each model's `bench accuracy` results without and with it, side by side.

Usage: python scripts/option_effect.py --without A.json [B.json ...] --with C.json [D.json ...] [--alias OLD=NEW ...]

For every model in the --with files (in their order) that the --without files also hold: mean ± standard deviation
(min–max) over the seeds without and with the option, and the difference of the means ± its standard error with the
benchmark's verdict (gain/loss beyond twice the error, noise otherwise), for AP, AP_vt, AP_t and AP_s; then the ratio
of the mean training time per epoch (wall time: compare it only between runs made under the same load). `--short`
prints one row per model instead: AP without and with, and the differences. `--alias` renames models of the --without files. A (model, seed) run found in
several files of one side counts once. Example (NWD assignment and loss, pretrained start):

    python scripts/option_effect.py --without docs/study/pretrained.json docs/study/pretrained-p2.json \\
        --with docs/study/nwd-pretrained.json
"""

from __future__ import annotations

import argparse

from hsfpn_yolo.bench.accuracy import difference, runs_in, summarize

SHOWN = ("AP", "AP_vt", "AP_t", "AP_s")


def spread_cell(s: dict) -> str:
    """Format one spread as 'mean ± sd (min–max)', or '–' without runs."""
    if not s or s["mean"] is None:
        return "–"
    return f"{s['mean']:.3f} ± {s['std']:.3f} ({s['min']:.3f}–{s['max']:.3f})"


def delta_cell(a: dict, b: dict) -> str:
    """Format the difference of two spreads' means (a - b) ± its standard error, with the verdict."""
    d = difference(a, b)
    return "–" if d is None else f"{d['diff']:+.3f} ± {d['se']:.3f} ({d['verdict'].replace('within ', '')})"


def main() -> None:
    """Print the Markdown tables: per metric, one row per model."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--without", nargs="+", required=True, help="results trained without the option")
    parser.add_argument("--with", dest="with_", nargs="+", required=True, help="results trained with it")
    parser.add_argument("--alias", nargs="*", default=[], metavar="OLD=NEW", help="rename --without models")
    parser.add_argument("--short", action="store_true", help="one row per model: AP without and with, then the Δs")
    args = parser.parse_args()
    without = {s["model"]: s for s in summarize(runs_in(args.without, dict(a.split("=", 1) for a in args.alias)))}
    with_ = [s for s in summarize(runs_in(args.with_)) if s["model"] in without]
    if args.short:
        print("| model | AP without | AP with | " + " | ".join(f"Δ{k}" for k in SHOWN) + " |")
        print("|---|---:|---:|" + "---:|" * len(SHOWN))
        for s in with_:
            base = without[s["model"]]
            cells = [spread_cell(base["AP"]), spread_cell(s["AP"]), *(delta_cell(s[k], base[k]) for k in SHOWN)]
            print(f"| {s['model']} | " + " | ".join(cells) + " |")
        return
    print("| model | metric | without | with | Δ (with − without) |")
    print("|---|---|---:|---:|---:|")
    for s in with_:
        base = without[s["model"]]
        for k in SHOWN:
            row = [s["model"], k, spread_cell(base[k]), spread_cell(s[k]), delta_cell(s[k], base[k])]
            print("| " + " | ".join(row) + " |")
        a, b = s["epoch_train_s"]["mean"], base["epoch_train_s"]["mean"]
        if a and b:  # wall time of runs that may have shared the machine with others: a rough guide only
            print(f"| {s['model']} | s/epoch (train) | {b:.1f} | {a:.1f} | {a / b:.2f}× |")


if __name__ == "__main__":
    main()
