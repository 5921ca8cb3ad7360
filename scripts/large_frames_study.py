"""Measure tiled training and sliced inference on large synthetic frames against training and predicting resized frames.

Usage: python scripts/large_frames_study.py [--frame 768 --tile 320 --train 20 --val 10 --epochs 5 --seeds 0,1]

For each model and seed, two trainings that see the same number of images:
`tiles` on the frames' overlapping TILE px tiles (`hsfpn-yolo tile`), `resized` on the whole frames resized to TILE
px. Each checkpoint is evaluated on the full validation frames twice: `resized` (Ultralytics validation at TILE px,
our tiny-object AP in frame pixels) and `sliced` (`hsfpn-yolo val --slice TILE`), both keeping up to 1500 detections
per frame. Time per frame is one prediction of each validation frame after a warm-up, image reading included.
Runs are saved to --json after each one and kept on a re-run with the same settings; --report rewrites the Markdown
table and the plot from the JSON alone.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHOWN = ("AP", "AP50", "AP_vt", "AP_t")
MODES = ("resized", "sliced")  # how a checkpoint is evaluated on the full frames
OVERLAP = 0.2
MAX_DET = 1500  # AI-TOD's protocol; the frames hold more objects than Ultralytics' default 300


def prepare(root: Path, frame: int, tile: int, train: int, val: int) -> dict[str, str]:
    """Render the large-frame set and tile it (each once); return the data YAMLs of both."""
    from hsfpn_yolo.data.synth import generate
    from hsfpn_yolo.data.tiles import tile_dataset, tiled

    frames = Path(generate(root / f"large-{frame}-{train}-{val}", train, val, frame, seed=0)["path"])
    tiles = frames.parent / f"{frames.name}-tiles-{tile}"
    params = {"size": tile, "overlap": OVERLAP, "min_visible": 0.5, "empty": 0.1}
    if not tiled(tiles, params):
        tile_dataset(frames, tiles, **params)
    return {"resized": str(frames / "data.yaml"), "tiles": str(tiles / "data.yaml")}


def _time_per_frame(fn, frames: list[Path]) -> float:
    """Return the mean seconds of FN(frame) over FRAMES, after one warm-up call."""
    fn(frames[0])
    t = time.perf_counter()
    for f in frames:
        fn(f)
    return (time.perf_counter() - t) / len(frames)


def evaluate(weights: str, data: str, tile: int, save_dir: Path) -> dict[str, dict[str, Any]]:
    """Evaluate one checkpoint on the full frames, resized and sliced: tiny-object AP and seconds per frame."""
    from ultralytics import YOLO

    from hsfpn_yolo.metrics import enable_tiny_metrics
    from hsfpn_yolo.sliced import load_model, predict_frame, val_sliced
    from hsfpn_yolo.sliced.val import split_frames

    frames, _ = split_frames(data)
    yolo = enable_tiny_metrics(YOLO(weights))
    m = yolo.val(
        data=data, imgsz=tile, batch=1, conf=0.001, max_det=MAX_DET, plots=False, verbose=False,
        project=str(save_dir), name="val-resized", exist_ok=True,
    )  # fmt: skip
    resized = {k: m.tiny[k] for k in SHOWN}
    resized["s_per_frame"] = _time_per_frame(
        lambda f: yolo.predict(f, imgsz=tile, conf=0.001, max_det=MAX_DET, verbose=False), frames
    )
    s = val_sliced(
        weights,
        data,
        tile,
        OVERLAP,
        conf=0.001,
        max_det=MAX_DET,
        project=save_dir,
        name="val-sliced",
        exist_ok=True,
        progress=False,
    )
    sliced = {k: s[k] for k in SHOWN}
    detector = load_model(weights, conf=0.001)
    sliced["s_per_frame"] = _time_per_frame(
        lambda f: predict_frame(detector, f, tile, OVERLAP, postprocess="NMS", match_metric="IOU"), frames
    )
    return {"resized": resized, "sliced": sliced}


def run_one(
    model: str, training: str, seed: int, data: dict[str, str], settings: dict[str, Any], project: Path
) -> dict:
    """Train one (model, training, seed) run with the accuracy benchmark's settings and evaluate it both ways."""
    from hsfpn_yolo.bench.accuracy import train_one
    from hsfpn_yolo.bench.training import TRAIN

    epochs = settings["epochs"] * (settings["tiles_per_frame"] if training == "resized" else 1)  # equal images seen
    train = {**{k: TRAIN[k] for k in ("batch", "optimizer", "lr0")}, "epochs": epochs, "workers": 0}
    train.update({"val": False, "close_mosaic": epochs})  # no mosaic in either arm; one validation, at the end
    t = time.perf_counter()
    row = train_one(model, seed, data[training], settings["tile"], "cpu", project / training, train)
    weights = str(Path(row["save_dir"]) / "weights" / "last.pt")
    out = {"model": row["model"], "training": training, "seed": seed, "epochs": epochs, "train_s": row["wall_s"]}
    out["eval"] = evaluate(weights, data["resized"], settings["tile"], Path(row["save_dir"]))
    out["wall_s"] = time.perf_counter() - t
    return out


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return mean ± sd (min–max) over seeds per (model, training, evaluation)."""
    from hsfpn_yolo.bench.stats import spread

    keys = list(dict.fromkeys((r["model"], r["training"]) for r in runs))
    rows = []
    for model, training in keys:
        same = [r for r in runs if (r["model"], r["training"]) == (model, training)]
        for mode in MODES:
            ev = [r["eval"][mode] for r in same]
            stats = {k: spread([e[k] for e in ev if e[k] is not None and e[k] >= 0]) for k in (*SHOWN, "s_per_frame")}
            rows.append(
                {"model": model, "training": training, "eval": mode, "seeds": sorted(r["seed"] for r in same), **stats}
            )
    return rows


def _fmt(s: dict[str, Any], digits: int = 3) -> str:
    """Format a spread as 'mean ± sd (min–max)'."""
    if s["mean"] is None:
        return "n/a"
    if s["n"] == 1:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def markdown(out: dict[str, Any]) -> str:
    """Return the settings, the summary table and the per-seed rows in Markdown."""
    from hsfpn_yolo.bench.common import header, md_table

    rows = [
        {
            "model": r["model"], "trained on": r["training"], "evaluated": r["eval"], "seeds": len(r["seeds"]),
            **{k: _fmt(r[k]) for k in SHOWN}, "s / frame": _fmt(r["s_per_frame"], 2),
        }
        for r in summarize(out["runs"])
    ]  # fmt: skip
    table = md_table(rows, ["model", "trained on", "evaluated", "seeds", *SHOWN, "s / frame"])
    per_seed = [
        {"model": r["model"], "trained on": r["training"], "seed": r["seed"], "epochs": r["epochs"],
         **{f"{k} {m}": f"{r['eval'][m][k]:.3f}" for m in MODES for k in ("AP", "AP_vt")}, "train s": f"{r['train_s']:.0f}"}
        for r in out["runs"]
    ]  # fmt: skip
    cols = ["model", "trained on", "seed", "epochs", *(f"{k} {m}" for m in MODES for k in ("AP", "AP_vt")), "train s"]
    commands = "".join(f"\n- Runs added by: `{c}`" for c in out.get("commands", []))
    text = f"{header(out['env'])}{commands}\n- Settings: {out['settings']}\n\n{table}\n\n"
    return text + f"Per seed:\n\n{md_table(per_seed, cols)}\n"


def plot(out: dict[str, Any], path: Path) -> Path:
    """Plot AP_vt, AP_t and AP per (model, training, evaluation) with the seeds as dots, and seconds per frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summarize(out["runs"])
    labels = [f"{r['model']}\ntrain {r['training']}\neval {r['eval']}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.27
    for i, key in enumerate(("AP", "AP_vt", "AP_t")):
        x = [j + (i - 1) * width for j in range(len(rows))]
        axes[0].bar(x, [r[key]["mean"] or 0 for r in rows], width, label=key, alpha=0.8)
        for xj, r in zip(x, rows):
            seeds = [
                run["eval"][r["eval"]][key]
                for run in out["runs"]
                if (run["model"], run["training"]) == (r["model"], r["training"])
            ]
            axes[0].plot([xj] * len(seeds), seeds, "k.", ms=4)
    axes[0].set_xticks(range(len(rows)), labels, fontsize=7)
    axes[0].set_ylabel("AP on the full validation frames")
    axes[0].legend()
    axes[0].set_title("Tiny-object AP (bars: seed mean, dots: seeds)")
    axes[1].barh(range(len(rows)), [r["s_per_frame"]["mean"] for r in rows], color="grey")
    axes[1].set_yticks(range(len(rows)), [lb.replace("\n", " ") for lb in labels], fontsize=6)
    axes[1].invert_yaxis()
    axes[1].set_xlabel("seconds per frame (CPU)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    """Run (or resume) the study, then write the JSON, the Markdown table and the plot."""
    import json

    from hsfpn_yolo.bench.common import environment, save_json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frame", type=int, default=768, help="frame side in pixels")
    p.add_argument("--tile", type=int, default=320, help="tile, slice and training size in pixels")
    p.add_argument("--train", type=int, default=20, help="training frames")
    p.add_argument("--val", type=int, default=10, help="validation frames")
    p.add_argument("--epochs", type=int, default=5, help="epochs on tiles (resized: times the tiles per frame)")
    p.add_argument("--seeds", default="0,1", help="training seeds")
    p.add_argument("--models", default="yolov8n-hsfpn,yolov8n", help="models")
    p.add_argument("--trainings", default="tiles,resized", help="arms to train (e.g. tiles: more seeds for one arm)")
    p.add_argument("--jobs", type=int, default=2, help="runs at the same time")
    p.add_argument("--project", type=Path, default=ROOT / "runs" / "large-frames", help="folder for runs and data")
    p.add_argument("--json", type=Path, default=ROOT / "docs" / "study" / "large-frames.json")
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "study" / "large-frames.png")
    p.add_argument("--report", action="store_true", help="only rewrite the table and plot from --json")
    args = p.parse_args()

    if args.report:
        out = json.loads(args.json.read_text(encoding="utf-8"))
        print(markdown(out))
        print(plot(out, args.plot))
        return
    from hsfpn_yolo.data.tiles import tile_windows

    data = prepare(args.project.resolve() / "data", args.frame, args.tile, args.train, args.val)
    settings = {
        "frame": args.frame, "tile": args.tile, "overlap": OVERLAP, "train_frames": args.train, "val_frames": args.val,
        "epochs": args.epochs, "tiles_per_frame": len(tile_windows(args.frame, args.frame, args.tile, OVERLAP)),
        "max_det": MAX_DET, "data": {k: str(Path(v).relative_to(ROOT)) if Path(v).is_relative_to(ROOT) else v for k, v in data.items()},
    }  # fmt: skip
    old = json.loads(args.json.read_text(encoding="utf-8")) if args.json.is_file() else {}
    runs = old.get("runs", []) if old.get("settings") == settings else []
    done = {(r["model"], r["training"], r["seed"]) for r in runs}
    seeds, models = [int(s) for s in args.seeds.split(",")], args.models.split(",")
    trainings = args.trainings.split(",")
    todo = [(m, t, s) for s in seeds for m in models for t in trainings if (m, t, s) not in done]
    env = {**environment(), "command": "python " + " ".join(sys.argv)}
    kept = (old.get("commands") or [old["env"]["command"]]) if runs else []
    commands = kept + [env["command"]]  # every invocation that added runs
    print(f"large-frames study: {len(runs)} runs kept, {len(todo)} to run; settings {settings}", flush=True)

    def record(row: dict[str, Any]) -> None:
        runs.append(row)
        ev = row["eval"]
        print(f"{row['model']} {row['training']} s{row['seed']}: AP resized {ev['resized']['AP']:.3f} sliced "
              f"{ev['sliced']['AP']:.3f} ({row['wall_s']:.0f} s)", flush=True)  # fmt: skip
        save_json(
            args.json,
            {"env": env, "commands": commands, "settings": settings, "runs": runs, "summary": summarize(runs)},
        )

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        pending = {pool.submit(run_one, m, t, s, data, settings, args.project.resolve()) for m, t, s in todo}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                record(f.result())
    out = {"env": env, "commands": commands, "settings": settings, "runs": runs, "summary": summarize(runs)}
    save_json(args.json, out)
    print(markdown(out))
    print(plot(out, args.plot))
    print(f"median run {statistics.median(r['wall_s'] for r in runs):.0f} s")


if __name__ == "__main__":
    main()
