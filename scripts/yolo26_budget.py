"""Why stock yolo26n learns slowly at the benchmark budget: one change at a time, trained like `bench accuracy`.

Usage: python scripts/yolo26_budget.py [--seeds 0] [--jobs 2] [--variants a,b] [--project DIR] [--json PATH]

Every variant trains one model with the benchmark's data and settings (`bench accuracy`: 200 synthetic images at
256 px, 10 epochs, batch 8, AdamW lr0 0.002, Ultralytics' nominal batch size 64) and changes one thing: a training
setting (optimizer, bias warmup, epochs, nominal batch size) or a key of YOLO26's model YAML (`reg_max`,
`end2end`). yolov8n and yolo11n are trained with and without the nominal batch size change for reference. Prints
AP, AP_vt, AP_t and AP_s per variant (mean ± sd over the seeds, min–max) and saves the runs. Results already in
--json with the same variant, seed and settings are kept.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hsfpn_yolo.bench.accuracy import train_one
from hsfpn_yolo.bench.stats import mean_sd, spread
from hsfpn_yolo.bench.training import SYNTH, run_all, synth_data, train_settings

# name -> (model, model YAML keys changed, training settings changed)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "yolo26n": ("yolo26n", {}, {}),
    "yolo26n MuSGD lr0 0.01": ("yolo26n", {}, {"optimizer": "MuSGD", "lr0": 0.01}),
    "yolo26n no bias warmup": ("yolo26n", {}, {"warmup_bias_lr": 0.0}),
    "yolo26n 30 epochs": ("yolo26n", {}, {"epochs": 30}),
    "yolo26n reg_max 16 (DFL)": ("yolo26n", {"reg_max": 16}, {}),
    "yolo26n end2end false": ("yolo26n", {"end2end": False}, {}),
    "yolo26n nbs 8": ("yolo26n", {}, {"nbs": 8}),
    "yolov8n": ("yolov8n", {}, {}),
    "yolov8n nbs 8": ("yolov8n", {}, {"nbs": 8}),
    "yolo11n": ("yolo11n", {}, {}),
    "yolo11n nbs 8": ("yolo11n", {}, {"nbs": 8}),
}
SHOWN = ("AP", "AP_vt", "AP_t", "AP_s")


def variant_yaml(model: str, keys: dict[str, Any], folder: Path) -> str:
    """Return the stock model's name, or a YAML of it with `keys` changed written into `folder`.

    Args:
        model (str): Stock model name with its scale, e.g. 'yolo26n'.
        keys (dict): Top-level model YAML keys to set.
        folder (Path): Where the changed YAML is written (its name keeps the scale letter after the family).
    """
    if not keys:
        return model
    import yaml

    from ultralytics.nn.tasks import yaml_model_load

    d = {k: v for k, v in yaml_model_load(f"{model}.yaml").items() if k not in ("scale", "yaml_file")}
    d.update(keys)
    tag = "-".join(f"{k.replace('_', '')}{v}".lower() for k, v in keys.items())
    path = folder / f"{model}-{tag}.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(d, sort_keys=False), encoding="utf-8")
    return str(path)


def train_variant(name: str, seed: int, data: str, project: Path) -> dict[str, Any]:
    """Train one variant with one seed; return `train_one`'s row with the variant's name and changes."""
    model, keys, changes = VARIANTS[name]
    train = {**train_settings(), **changes}
    row = train_one(variant_yaml(model, keys, project / "cfg"), seed, data, SYNTH["imgsz"], "cpu", project, train)
    return {**row, "variant": name, "yaml": keys, "train": changes}


def main() -> None:
    """Train the variants not yet in --json and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0", help="training seeds, e.g. 0,1,2 (default 0)")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once, one process each")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names (default: all)")
    parser.add_argument("--project", type=Path, default=Path("runs/study/yolo26-budget"), help="run folder")
    parser.add_argument("--json", type=Path, default=Path("runs/study/yolo26-budget.json"), help="results")
    args = parser.parse_args()
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    if unknown := [v for v in names if v not in VARIANTS]:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = {**train_settings(), **SYNTH}
    old = json.loads(args.json.read_text(encoding="utf-8")) if args.json.exists() else {}
    runs = old.get("runs", []) if old.get("settings") == settings else []
    done = {(r["variant"], r["seed"]) for r in runs}
    data = synth_data(SYNTH["train"], SYNTH["val"], SYNTH["imgsz"], SYNTH["seed"])
    project = args.project.resolve()

    def record(row: dict[str, Any]) -> None:
        runs.append(row)
        print(f"yolo26_budget: {row['variant']} seed {row['seed']}: AP {row['AP']:.3f}", flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": settings, "runs": runs}, indent=1), encoding="utf-8")

    calls = [(v, s, data, project) for s in seeds for v in names if (v, s) not in done]
    run_all(train_variant, calls, args.jobs, record)
    print("| variant | seeds | " + " | ".join(SHOWN) + " |")
    print("|---|---:|" + "---:|" * len(SHOWN))
    for v in names:
        rows = [r for r in runs if r["variant"] == v and r["seed"] in seeds]
        cells = [mean_sd(spread([r[k] for r in rows])) for k in SHOWN]
        print(f"| {v} | {len(rows)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
