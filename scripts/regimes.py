"""Print the from-scratch and pretrained-start results of `bench accuracy` side by side, one row per model.

Usage: python scripts/regimes.py --scratch A.json [B.json ...] --pretrained C.json [D.json ...] [--alias OLD=NEW ...]

Each cell is mean ± standard deviation over the seeds (n seeds). `--alias` renames a model of the from-scratch files
(e.g. a study YAML that later shipped under another name, `yolov8n-c2path=yolov8n-finepath`); only models present in
a pretrained file are listed, in its order. A (model, seed) run found in several from-scratch files counts once.
"""

from __future__ import annotations

import argparse

from hsfpn_yolo.bench.accuracy import runs_in, summarize

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
    scratch = {s["model"]: s for s in summarize(runs_in(args.scratch, alias))}
    print("| model | " + " | ".join(f"{k} scratch | {k} pretrained" for k in SHOWN) + " |")
    print("|---|" + "---:|" * 2 * len(SHOWN))
    for path in args.pretrained:
        for s in summarize(runs_in([path])):
            base = scratch.get(s["model"], {})
            print(f"| {s['model']} | " + " | ".join(f"{cell(base.get(k))} | {cell(s[k])}" for k in SHOWN) + " |")


if __name__ == "__main__":
    main()
