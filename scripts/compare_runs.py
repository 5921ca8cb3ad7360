"""Print the difference of two models' seed means (± standard error, verdict) from a `bench accuracy` JSON.

Usage: python scripts/compare_runs.py RESULTS.json MODEL_A:MODEL_B [MODEL_C:MODEL_D ...]

The same statistics as the benchmark's own comparison with the stock counterpart, for any pair of models in the file
(e.g. an HS-FPN model against the same neck without blocks).
"""

from __future__ import annotations

import argparse
import json

from hsfpn_yolo.bench.accuracy import difference, summarize

SHOWN = ("AP", "AP_vt", "AP_t", "AP_s")


def main() -> None:
    """Print one Markdown row per pair."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", help="results of `hsfpn-yolo bench accuracy`")
    parser.add_argument("pairs", nargs="+", metavar="A:B", help="model A against model B (names as in the tables)")
    args = parser.parse_args()
    stats = {s["model"]: s for s in summarize(json.load(open(args.json))["runs"])}
    print("| comparison | " + " | ".join(f"Δ{k}" for k in SHOWN) + " |")
    print("|---|" + "---|" * len(SHOWN))
    for pair in args.pairs:
        a, b = pair.split(":")
        cells = []
        for k in SHOWN:
            d = difference(stats[a][k], stats[b][k])
            cells.append(
                "–" if d is None else f"{d['diff']:+.3f} ± {d['se']:.3f} ({d['verdict'].replace('within ', '')})"
            )
        print(f"| {a} − {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
