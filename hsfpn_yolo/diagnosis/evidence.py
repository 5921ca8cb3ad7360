"""The measured differences the doctor's advice rests on, built from the benchmark's results files and shipped dated.

Each comparison is one model family (or option) against its stock counterpart, trained the same way: the difference
of the mean AP and AP_vt over the training seeds, its standard error and the benchmark's verdict (a gain or loss only
beyond twice that error), with the training regime and the docs section it is reported in. Where both starts were
measured the first start's cells are the comparison's own and the others follow under `more_starts`; the advice
counts a gain only where it holds in every start (`advice.gains`). The numbers are computed
by the benchmark's own statistics (`hsfpn_yolo.bench.stats`: `runs_in`, `summarize`, `difference`), so a re-measured
table regenerates the file:

    python -m hsfpn_yolo.diagnosis.evidence --study docs/study --date 2026-12-07

`--table` prints the shipped file as the Markdown table of docs/doctor.md, and `hsfpn-yolo doctor ... --evidence
FILE` uses another one.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import date as Date
from pathlib import Path
from typing import Any

EVIDENCE = Path(__file__).with_name("evidence.json")  # the shipped evidence
METRICS = ("AP", "AP_vt")


@dataclass(frozen=True)
class Comparison:
    """One measured comparison: MODEL's runs from FILES against BASELINE's runs from BASELINE_FILES (default FILES),
    in each of STARTS ('{start}' in a file name stands for the start)."""

    key: str
    model: str
    baseline: str
    files: tuple[str, ...]
    section: str
    baseline_files: tuple[str, ...] = ()
    starts: tuple[str, ...] = ("scratch",)
    label: str = ""  # how the advice names the model side (default: the model name)


BOTH = ("scratch", "pretrained")  # the converged table's starts
LARGE_FRAMES = "large-frames.json"  # tiles against resized frames: `scripts/large_frames_study.py` runs
COMPARISONS = (
    Comparison(
        "p2",
        "yolov8n-p2",
        "yolov8n",
        ("default-{start}.json",),
        "docs/design-study.md#the-measured-table-in-this-regime",
        starts=BOTH,
    ),
    Comparison(
        "finepath",
        "yolov8n-finepath",
        "yolov8n",
        ("default-{start}.json",),
        "docs/design-study.md#the-measured-table-in-this-regime",
        starts=BOTH,
    ),
    Comparison(
        "hsfpn",
        "yolov8n-hsfpn",
        "yolov8n",
        ("default-{start}.json",),
        "docs/design-study.md#the-measured-table-in-this-regime",
        starts=BOTH,
    ),
    Comparison(
        "finepath-p2",
        "yolov8n-finepath-p2",
        "yolov8n-p2",
        ("default-{start}.json",),
        "docs/design-study.md#the-measured-table-in-this-regime",
        starts=BOTH,
    ),
    Comparison(
        "hsfpn-p2",
        "yolov8n-hsfpn-p2",
        "yolov8n-p2",
        ("default-{start}.json",),
        "docs/design-study.md#the-measured-table-in-this-regime",
        starts=BOTH,
    ),
    Comparison(
        "nwd",
        "yolov8n",
        "yolov8n",
        ("nwd-default-{start}.json",),
        "docs/design-study.md#the-measured-table-in-this-regime",
        baseline_files=("default-{start}.json",),
        starts=BOTH,
        label="yolov8n + NWD box loss",
    ),
    Comparison(
        "nwd-p2",
        "yolov8n-p2",
        "yolov8n-p2",
        ("nwd-default-{start}.json",),
        "docs/design-study.md#the-measured-table-in-this-regime",
        baseline_files=("default-{start}.json",),
        starts=BOTH,
        label="yolov8n-p2 + NWD box loss",
    ),
    Comparison(
        "finepath-obb",
        "yolo26n-finepath-obb",
        "yolo26n-obb",
        ("obb-nbs8.json",),
        "docs/benchmarks.md#oriented-boxes-three-seeds",
    ),
    Comparison(
        "hsfpn-obb",
        "yolo26n-hsfpn-obb",
        "yolo26n-obb",
        ("obb-nbs8.json",),
        "docs/benchmarks.md#oriented-boxes-three-seeds",
    ),
)
WHAT = {  # what each comparison measures, in words
    "p2": "a P2 head (yolov8n-p2) against P3-P5 (yolov8n)",
    "finepath": "the fine-detail path (yolov8n-finepath) against yolov8n",
    "hsfpn": "HS-FPN (yolov8n-hsfpn) against yolov8n",
    "finepath-p2": "the fine-detail path on P2 (yolov8n-finepath-p2) against yolov8n-p2",
    "hsfpn-p2": "HS-FPN on P2 (yolov8n-hsfpn-p2) against yolov8n-p2",
    "nwd": "NWD's box-loss term (nwd: assign false, loss 0.5) on yolov8n against yolov8n",
    "nwd-p2": "NWD's box-loss term (nwd: assign false, loss 0.5) on yolov8n-p2 against yolov8n-p2",
    "tiles": "training on 256 px tiles and predicting slice by slice against training and predicting on resized frames",
    "finepath-obb": "the fine-detail path on OBB (yolo26n-finepath-obb) against yolo26n-obb",
    "hsfpn-obb": "HS-FPN on OBB (yolo26n-hsfpn-obb) against yolo26n-obb",
}


def by_start(c: dict) -> dict[str, dict]:
    """Return a measured comparison's cells per start: its own start first, then `more_starts`."""
    return {c.get("regime", {}).get("start", ""): c, **c.get("more_starts", {})}


def _group(paths: list[Path], model: str, start: str) -> dict[str, Any]:
    """Return the `summarize` group of MODEL and START in the runs of PATHS (exactly one regime)."""
    from hsfpn_yolo.bench.stats import runs_in, summarize

    groups = [s for s in summarize(runs_in(paths)) if s["model"] == model and s["start"] == start]
    if len(groups) != 1:
        found = "none" if not groups else ", ".join(s["regime"] for s in groups)
        raise ValueError(f"{model} ({start}) in {[str(p) for p in paths]}: expected runs of one regime, found {found}")
    return groups[0]


def _regime(path: Path, label: str, start: str) -> dict[str, Any]:
    """Return a results file's training regime: epochs, nominal batch size, image size, start and the label."""
    from hsfpn_yolo.bench.stats import NOMINAL_BATCH

    settings = json.loads(path.read_text(encoding="utf-8")).get("settings") or {}
    keep = {"epochs": settings.get("epochs"), "nbs": settings.get("nbs", NOMINAL_BATCH), "imgsz": settings.get("imgsz")}
    return {**keep, "start": start, "label": label}


def _measure(c: Comparison, study: Path, start: str) -> dict[str, Any]:
    """Return one start of a comparison: the AP and AP_vt differences, the seeds and the regime."""
    from hsfpn_yolo.bench.stats import difference

    files = [study / f.format(start=start) for f in c.files]
    base_files = [study / f.format(start=start) for f in c.baseline_files] or files
    model = _group(files, c.model, start)
    base = _group(base_files, c.baseline, start)
    if model["regime"] != base["regime"]:
        raise ValueError(f"{c.key}: {c.model} trained at '{model['regime']}', {c.baseline} at '{base['regime']}'")
    return {
        **{k: difference(model[k], base[k]) for k in METRICS},
        "seeds": min(len(model["seeds"]), len(base["seeds"])),
        "regime": _regime(files[0], model["regime"], start),
    }


def compare(c: Comparison, study: Path) -> dict[str, Any]:
    """Return one comparison measured from the results files in STUDY: its first start's cells, the others' after."""
    first, *more = c.starts
    names = [f.format(start=s) for s in c.starts for f in (*c.files, *c.baseline_files)]
    return {
        "what": WHAT.get(c.key, f"{c.model} against {c.baseline}"),
        "model": c.label or c.model,
        "baseline": c.baseline,
        **_measure(c, study, first),
        **({"more_starts": {s: _measure(c, study, s) for s in more}} if more else {}),
        "files": list(dict.fromkeys(names)),
        "section": c.section,
    }


def compare_tiles(study: Path, model: str = "yolov8n") -> dict[str, Any]:
    """Return tiles (trained on tiles, predicted slice by slice) against resized frames (both ways resized) for MODEL,
    from the large-frames study's runs."""
    from hsfpn_yolo.bench.stats import difference, spread

    data = json.loads((study / LARGE_FRAMES).read_text(encoding="utf-8"))
    runs = [r for r in data["runs"] if r["model"] == model]

    def arm(training: str, evaluated: str, key: str) -> dict[str, Any]:
        return spread([r["eval"][evaluated][key] for r in runs if r["training"] == training])

    s = data["settings"]
    tiles, resized = arm("tiles", "sliced", "AP"), arm("resized", "resized", "AP")
    return {
        "what": WHAT["tiles"],
        "model": f"{model} on tiles, sliced prediction",
        "baseline": f"{model} on resized frames",
        **{k: difference(arm("tiles", "sliced", k), arm("resized", "resized", k)) for k in METRICS},
        "seeds": min(tiles["n"], resized["n"]),
        "regime": {
            "frame": s["frame"],
            "tile": s["tile"],
            "overlap": s["overlap"],
            "start": "scratch",
            "label": f"{s['frame']} px frames, {s['tile']} px tiles, equal images seen",
        },
        "files": [LARGE_FRAMES],
        "section": "docs/large-frames.md#measured-tiles-and-slices-against-resized-frames",
    }


def build(study: str | Path, date: str | None = None, comparisons: tuple[Comparison, ...] = COMPARISONS) -> dict:
    """Return the evidence measured from the results files in STUDY (e.g. docs/study, named in `study`; each
    comparison's `files` are in it), dated DATE (default today).

    Args:
        study (str | Path): Folder of `bench accuracy` results JSONs and the large-frames study.
        date (str, optional): ISO date the evidence is valid from.
        comparisons (tuple[Comparison, ...]): What to compare.
    """
    study = Path(study)
    found = {c.key: compare(c, study) for c in comparisons}
    if (study / LARGE_FRAMES).is_file():
        found["tiles"] = compare_tiles(study)
    return {"date": date or Date.today().isoformat(), "study": study.as_posix(), "comparisons": found}


def load(path: str | Path | None = None) -> dict:
    """Return the evidence in PATH (default: the shipped file), checked for the comparisons the advice reads."""
    path = Path(path) if path else EVIDENCE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["date"], data["comparisons"]  # both keys must be there
    except FileNotFoundError:
        raise FileNotFoundError(f"evidence file {path} not found") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a doctor evidence file ({type(e).__name__}: {e})") from None
    return {**data, "file": str(path)}


def table(evidence: dict) -> str:
    """Return the evidence as a Markdown table, one row per comparison and start, sections linked from docs/."""

    def cell(d: dict) -> str:
        verdict = d["verdict"].replace("within ", "")
        return f"{100 * d['diff']:+.1f} ± {100 * d['se']:.1f} {verdict}".replace("-", "−")

    rows = ["| comparison | budget | start | ΔAP | ΔAP_vt | section |", "|---|---|---|---:|---:|---|"]
    for c in evidence["comparisons"].values():
        page, _, anchor = c["section"].removeprefix("docs/").partition("#")
        link = f"[{page.removesuffix('.md').replace('-', ' ')}]({page}#{anchor})"
        for x in by_start(c).values():
            r = x["regime"]
            budget = f"{r['label']}, {x['seeds']} seeds"
            rows.append(f"| {c['model']} vs {c['baseline']} | {budget} | {r['start']} | {cell(x['AP'])} | "
                        f"{cell(x['AP_vt'])} | {link} |")  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """Rebuild the evidence file from a study folder, or print the shipped one as a table."""
    p = argparse.ArgumentParser(description="Build the doctor's evidence from `bench accuracy` results files.")
    p.add_argument("--study", type=Path, default=Path("docs/study"), help="folder of the results files")
    p.add_argument("--date", default=None, help="ISO date of the evidence (default: today)")
    p.add_argument("--out", type=Path, default=EVIDENCE, help="where to write it (default: the shipped file)")
    p.add_argument("--table", action="store_true", help="print the shipped evidence as a Markdown table instead")
    args = p.parse_args(argv)
    if args.table:
        print(table(load()))
        return
    args.out.write_text(json.dumps(build(args.study, args.date), indent=2) + "\n", encoding="utf-8")
    print(args.out)


if __name__ == "__main__":
    main()
