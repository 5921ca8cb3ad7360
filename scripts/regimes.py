"""Print the from-scratch and pretrained-start results of `bench accuracy` side by side, one row per model.

Usage: python scripts/regimes.py --scratch A.json [B.json ...] --pretrained C.json [D.json ...] [--alias OLD=NEW ...]

Each cell is mean ± standard deviation over the seeds (n seeds). `--alias` renames a model of the from-scratch files
(e.g. a study YAML that later shipped under another name, `yolov8n-c2path=yolov8n-finepath`); only models present in
a pretrained file are listed, in its order. A (model, seed) run found in several from-scratch files counts once.
"""

from __future__ import annotations

import argparse
import json

from hsfpn_yolo.bench.accuracy import summarize

SHOWN = ("AP", "AP_vt", "AP_t", "AP_s")


def cell(s: dict) -> str:
    """Format one spread as 'mean ± sd (n)', or '–' without runs."""
    return "–" if not s or s["mean"] is None else f"{s['mean']:.3f} ± {s['std']:.3f} ({s['n']})"


def main() -> None:
    """Print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scratch", nargs="+", required=True, help="`bench accuracy` results without --pretrained")
    parser.add_argument("--pretrained", nargs="+", required=True, help="`bench accuracy --pretrained` results")
    parser.add_argument("--alias", nargs="*", default=[], metavar="OLD=NEW", help="rename from-scratch models")
    args = parser.parse_args()
    alias = dict(a.split("=", 1) for a in args.alias)
    runs: dict[tuple[str, int], dict] = {}
    for path in args.scratch:  # a run listed in several files (one benchmark reused by another) counts once
        for r in json.load(open(path))["runs"]:
            model = alias.get(r["model"], r["model"])
            runs.setdefault((model, r["seed"]), {**r, "model": model})
    scratch = {s["model"]: s for s in summarize(list(runs.values()))}
    print("| model | " + " | ".join(f"{k} scratch | {k} pretrained" for k in SHOWN) + " |")
    print("|---|" + "---:|" * 2 * len(SHOWN))
    for path in args.pretrained:
        for s in summarize(json.load(open(path))["runs"]):
            base = scratch.get(s["model"], {})
            print(f"| {s['model']} | " + " | ".join(f"{cell(base.get(k))} | {cell(s[k])}" for k in SHOWN) + " |")


if __name__ == "__main__":
    main()
