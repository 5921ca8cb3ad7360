"""Print the difference of two models' seed means (± standard error, verdict) from `bench accuracy` results.

Usage: python scripts/compare_runs.py RESULTS.json [--also MORE.json ...] [--times] MODEL_A:MODEL_B [...]

The same statistics as the benchmark's own comparison with the stock counterpart, for any pair of models in the
files (e.g. an HS-FPN model against the same neck without blocks, or models of two results files; a (model, seed)
run found in several files counts once). `--times` adds the ratio of the mean training time per epoch (A / B), as
the benchmark's "epoch time ×" column; compare it only between runs made under the same load.
"""

from __future__ import annotations

import argparse

from hsfpn_yolo.bench.accuracy import difference, runs_in, summarize

SHOWN = ("AP", "AP_vt", "AP_t", "AP_s")
TIME = "epoch_train_s"


def main() -> None:
    """Print one Markdown row per pair."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", help="results of `hsfpn-yolo bench accuracy`")
    parser.add_argument("pairs", nargs="+", metavar="A:B", help="model A against model B (names as in the tables)")
    parser.add_argument("--also", nargs="+", default=[], metavar="JSON", help="more results files to read")
    parser.add_argument("--times", action="store_true", help="add the ratio of the mean epoch training times")
    args = parser.parse_args()
    stats = {s["model"]: s for s in summarize(runs_in([args.json, *args.also]))}
    print("| comparison | " + " | ".join(f"Δ{k}" for k in SHOWN) + (" | epoch time × |" if args.times else " |"))
    print("|---|" + "---|" * (len(SHOWN) + args.times))
    for pair in args.pairs:
        a, b = pair.split(":")
        cells = []
        for k in SHOWN:
            d = difference(stats[a][k], stats[b][k])
            cells.append(
                "–" if d is None else f"{d['diff']:+.3f} ± {d['se']:.3f} ({d['verdict'].replace('within ', '')})"
            )
        if args.times:
            ta, tb = stats[a][TIME]["mean"], stats[b][TIME]["mean"]
            cells.append("–" if not (ta and tb) else f"{ta / tb:.2f}")
        print(f"| {a} − {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
