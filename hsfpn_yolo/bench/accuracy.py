"""Train every model the same way from each start with several training seeds and compare tiny-object AP.

One run trains one (model, start, seed); every run of a benchmark shares the data, epochs, image size, batch and
optimizer. Per model and start the report gives mean, standard deviation and min-max over the seeds, and against the
model's stock counterpart (yolov8n for P3-P5 models, yolov8n-p2 for P2 models) from the same start the difference of
the means with its standard error: a difference counts only where it exceeds twice that error.

The default regime is the one stock yolov8n converges in (docs/design-study.md, "Regime"): the built-in synthetic
tiny-object set (generated once into Ultralytics' datasets folder), batch 8 with one optimizer step per batch, 35
epochs (875 optimizer steps), from scratch and from the stock counterpart's checkpoint pretrained once on a different
synthetic task (`hsfpn_yolo.bench.pretrain`), as users fine-tune pretrained weights. Two runs train at a time (each
in its own process; Ultralytics trains with one thread on a 2-core machine); a yolov8n run takes about 6 minutes
there. `--quick` is a short screening run, `--data` a real dataset. With `--nwd` every model trains with NWD label
assignment and box loss (`hsfpn_yolo.nwd`), set through the Python API.

Examples:
    hsfpn-yolo bench accuracy --seeds 0,1,2                      # synthetic set, six models, both starts, CPU
    hsfpn-yolo bench accuracy --quick --starts scratch --models yolov8n,yolov8n-hsfpn
    hsfpn-yolo bench accuracy --starts pretrained --models yolov8n,yolov8n-finepath,yolov8n-hsfpn
    hsfpn-yolo bench accuracy --nwd --models yolov8n,yolov8n-p2 --json runs/bench/accuracy-nwd.json
    hsfpn-yolo bench accuracy --data cfg/datasets/AI-TOD.yaml --epochs 100 --imgsz 800 --device 0 --jobs 1
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

from .common import default_models, environment, header, md_table, model_name, model_yaml, save_json
from .stats import METRICS, delta_cell, mean_sd, start_of, summarize
from .training import SEEDS, SYNTH, TRAIN, fit, run_all, sizes, synth_data, train_settings

STARTS = ("scratch", "pretrained")  # random weights; the stock counterpart's pretrained checkpoint

SHOWN = ("AP", "AP50", "AP_vt", "AP_t", "AP_s")  # metrics in the Markdown tables


def task_of(models: list[str]) -> str:
    """Return the one task ('detect' or 'obb') of the benchmark's models; mixed tasks cannot share a data set.

    Args:
        models (list[str]): Model names or YAML paths (see `model_yaml`).
    """
    from ultralytics.nn.tasks import guess_model_task, yaml_model_load

    tasks = {m: guess_model_task(yaml_model_load(model_yaml(m))) for m in models}
    kinds = set(tasks.values())
    if len(kinds) > 1 or not kinds <= {"detect", "obb"}:
        found = ", ".join(f"{m}: {t}" for m, t in tasks.items())
        raise ValueError(f"bench accuracy compares detect models or OBB models, one task per run; got {found}")
    return kinds.pop()


def train_one(
    model: str,
    seed: int,
    data: str,
    imgsz: int,
    device: str,
    project: Path,
    train: dict[str, Any],
    weights: str | None = None,
    nwd: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one model with one seed and the shared settings (`fit`); return its final tiny-object AP, timings,
    optimizer steps and learning curve."""
    start = "pretrained" if weights else "scratch"
    name = f"{model_name(model)}-{start}-s{seed}"
    yolo, clock = fit(model, seed, data, imgsz, device, project, train, name=name, weights=weights, nwd=nwd)
    metrics = yolo.metrics
    tiny = getattr(metrics, "tiny", None) or {}
    return {
        "model": model_name(model),
        "start": start,
        "seed": seed,
        "params": sum(p.numel() for p in yolo.model.parameters()),
        **{k: tiny.get(k) for k in METRICS},
        "mAP50-95 (Ultralytics)": float(metrics.box.map) if metrics is not None else None,
        "epochs": len(clock.train),
        "optimizer_steps": clock.steps,
        "epoch_train_s": statistics.median(clock.train) if clock.train else None,
        "epoch_total_s": statistics.median(clock.total) if clock.total else None,
        "wall_s": clock.wall_s,
        "train_threads": clock.threads,
        "curve": clock.curve,
        "save_dir": str(yolo.trainer.save_dir),
        "checkpoint": Path(weights).name if weights else None,
    }


def _start_column(items: list[dict[str, Any]]) -> list[str]:
    """Return ['start'] when the rows hold more than one start, else []."""
    return ["start"] if len({start_of(r) for r in items}) > 1 else []


def table(summary: list[dict[str, Any]]) -> str:
    """Return the per-model table: mean ± standard deviation (min–max) over the seeds."""
    rows = [
        {
            "model": s["model"],
            "start": s["start"],
            "seeds": len(s["seeds"]),
            "params": f"{s['params'] / 1e6:.2f} M",
            **{k: mean_sd(s[k]) for k in SHOWN},
            "s/epoch (train)": None if s["epoch_train_s"]["mean"] is None else f"{s['epoch_train_s']['mean']:.1f}",
        }
        for s in summary
    ]
    return md_table(rows, ["model", *_start_column(summary), "seeds", "params", *SHOWN, "s/epoch (train)"])


def delta_table(summary: list[dict[str, Any]]) -> str:
    """Return each model against its stock counterpart: difference of means ± its standard error, and the verdict."""
    rows = []
    for s in summary:
        if "baseline" not in s:
            continue
        row = {"model": s["model"], "start": s["start"], "vs": s["baseline"]}
        for k in SHOWN:
            row[f"Δ{k}"] = delta_cell(s.get(f"delta_{k}"))
        ratio = s.get("ratio_epoch_train_s")
        row["epoch time ×"] = None if ratio is None else f"{ratio:.2f}"
        rows.append(row)
    if not rows:
        return ""
    return md_table(rows, ["model", *_start_column(summary), "vs", *(f"Δ{k}" for k in SHOWN), "epoch time ×"])


def runs_table(runs: list[dict[str, Any]]) -> str:
    """Return one row per (model, start, seed)."""
    fmt = [
        {
            "model": r["model"],
            "start": start_of(r),
            "seed": r["seed"],
            **{k: "n/a" if r.get(k) is None or r[k] < 0 else f"{r[k]:.3f}" for k in SHOWN},
            "steps": r.get("optimizer_steps"),
            "s/epoch": None if r.get("epoch_train_s") is None else f"{r['epoch_train_s']:.1f}",
        }
        for r in runs
    ]
    return md_table(fmt, ["model", *_start_column(runs), "seed", *SHOWN, "steps", "s/epoch"])


def save_csv(path: Path, runs: list[dict[str, Any]]) -> None:
    """Write one CSV row per (model, seed) run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = [k for k in dict.fromkeys(k for r in runs for k in r) if k != "curve"]  # the curves stay in the JSON
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(runs)


def _matches(settings: dict[str, Any], other: dict[str, Any], start: str) -> bool:
    """Return whether a run of `start` saved under `other` settings was trained as one under `settings` would be
    (a from-scratch run does not depend on the pretraining settings)."""
    if start == "scratch":
        return {**settings, "pretrained": None} == {**other, "pretrained": None}
    return settings == other


def _load_done(paths: list[str | Path], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the runs of earlier benchmarks trained as these settings would train them (resumed, not retrained).

    Args:
        paths (list[str | Path]): Results JSONs; missing files and runs with other settings are skipped.
        settings (dict): Settings the runs must have been trained with.
    """
    import json

    runs = []
    for path in paths:
        try:
            old = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        runs += [r for r in old.get("runs", []) if _matches(settings, old.get("settings") or {}, start_of(r))]
    return runs


def _starts_for(starts: tuple[str, ...] | None, obb: bool) -> tuple[str, ...]:
    """Return the starts to train: the given ones, else both for detect models and scratch for OBB models."""
    if starts is None:
        return ("scratch",) if obb else STARTS
    unknown = set(starts) - set(STARTS)
    if unknown or not starts:
        raise ValueError(f"starts are {' and '.join(STARTS)}; got {', '.join(starts) or 'none'}")
    if obb and "pretrained" in starts:
        raise ValueError(
            "the pretrained start is for detect models only (bench pretrain builds detect checkpoints); train OBB "
            "models from random weights (--starts scratch), or give them a checkpoint of your own with `yolo obb train`"
        )
    return tuple(dict.fromkeys(starts))


def run(
    models: list[str] | None = None,
    seeds: list[int] | tuple[int, ...] = SEEDS,
    data: str | None = None,
    epochs: int | None = None,
    imgsz: int | None = None,
    batch: int = TRAIN["batch"],
    device: str = "cpu",
    train_images: int | None = None,
    val_images: int | None = None,
    quick: bool = False,
    jobs: int = 2,
    workers: int = TRAIN["workers"],
    scale: str = "n",
    project: str | Path = "runs/bench/accuracy",
    json_path: str | Path | None = "runs/bench/accuracy.json",
    resume: bool = True,
    reuse: tuple[str | Path, ...] = (),
    starts: tuple[str, ...] | None = None,
    nwd: dict[str, Any] | None = None,
    nbs: int | None = None,
    pretrain_epochs: int | None = None,
) -> dict[str, Any]:
    """Train each model from each start with each seed under the same settings; print and save per-seed rows and
    per-model spreads.

    Args:
        models (list[str], optional): Model names or YAML paths; default the six models at `scale`.
        seeds (Sequence[int]): Training seeds; each model is trained once per seed and start.
        data (str, optional): Data YAML; default the synthetic set (generated at `imgsz`), with oriented boxes for OBB
            models.
        epochs (int, optional): Epochs per run (default `training.TRAIN`'s, fewer with `quick`).
        imgsz (int, optional): Image size for training and validation (default 256).
        batch (int): Batch size.
        device (str): 'cpu', '0', ...
        train_images (int, optional): Synthetic training images (ignored with `data`; default 200, 100 with `quick`).
        val_images (int, optional): Synthetic validation images (ignored with `data`; default 50, 40 with `quick`).
        quick (bool): Screening run: fewer images and epochs.
        jobs (int): Runs trained at the same time, each in its own process.
        workers (int): Dataloader workers (Ultralytics uses none on the CPU).
        scale (str): Scale of the default models.
        project (str | Path): Folder for the Ultralytics runs.
        json_path (str | Path, optional): Results JSON; a CSV of the per-seed runs is written next to it.
        resume (bool): Keep the runs already in `json_path` when trained with these settings, train only the rest.
        reuse (tuple[str | Path]): More results JSONs whose runs trained with these settings are kept, with or
            without `resume` (e.g. of a benchmark run alongside in another process).
        starts (tuple[str], optional): 'scratch' (random weights) and/or 'pretrained' (every model from its stock
            counterpart's pretrained checkpoint, built first where missing, see `hsfpn_yolo.bench.pretrain`); default
            both for detect models, scratch for OBB models.
        nwd (dict, optional): Train every model with NWD assignment and box loss, these options (`hsfpn_yolo.nwd`).
        nbs (int, optional): Nominal batch size (`training.train_settings`); default the batch size, one optimizer
            step per batch (Ultralytics' own default, 64, makes 8 times fewer steps at batch 8).
        pretrain_epochs (int, optional): Epochs of the pretrained starts' pretraining (default `pretrain.EPOCHS`).

    Returns:
        (dict): {'env', 'settings', 'runs', 'summary'}.
    """
    epochs, imgsz, train_images, val_images = sizes(quick, epochs, imgsz, train_images, val_images)
    models = models or default_models(scale)
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if not seeds:
        raise ValueError("give at least one training seed, e.g. --seeds 0,1,2")
    if nwd is not None:  # checked before any data is made; defaults filled in, so equal options compare equal
        from hsfpn_yolo.nwd import KEY, options

        nwd = options({KEY: nwd})
    shared = train_settings(epochs, batch, workers, nbs)  # checked before any data is made
    obb = task_of(models) == "obb"  # the oriented labels of the same images
    starts = _starts_for(starts, obb)
    data = data or synth_data(train_images, val_images, imgsz, SYNTH["seed"], obb=obb)
    settings = {**shared, "imgsz": imgsz, "data": data, "device": device}
    weights: dict[tuple[str, str], str | None] = {(m, "scratch"): None for m in models}
    if "pretrained" in starts:
        from .pretrain import pretrain_settings, starting_points

        settings["pretrained"] = pretrain_settings(train_images, val_images, imgsz, shared, pretrain_epochs)
        for m, path in starting_points(models, settings["pretrained"], device, jobs).items():
            weights[(m, "pretrained")] = path
    if nwd is not None:  # only then, so that results saved before stay comparable
        settings["nwd"] = nwd
    env = environment()
    key = lambda r: (r["model"], start_of(r), r["seed"])
    wanted = {(model_name(m), st, s) for m in models for st in starts for s in seeds}
    # Everything already in `json_path` stays (the file accumulates); from other files only the runs asked for
    done = _load_done([json_path] if resume and json_path else [], settings)
    done += [r for r in _load_done(list(reuse), settings) if key(r) in wanted]
    unique = {}
    for r in done:
        unique.setdefault(key(r), r)  # the first copy of each run
    runs = list(unique.values())
    # Seed-major order: a benchmark stopped early still has every model and start at the seeds it reached
    order = [(m, st, s) for s in seeds for st in starts for m in models]
    todo = [(m, st, s) for m, st, s in order if (model_name(m), st, s) not in unique]
    if runs:
        print(f"bench accuracy: {len(runs)} run(s) with these settings kept, {len(todo)} to train")
    project = Path(project).resolve()

    def save() -> dict[str, Any]:
        out = {"env": env, "settings": settings, "jobs": jobs, "runs": runs, "summary": summarize(runs)}
        if json_path:  # after every run, so a benchmark that stops early keeps what it finished
            save_json(json_path, out)
            save_csv(Path(json_path).with_suffix(".csv"), runs)
        return out

    def record(row: dict[str, Any]) -> None:
        runs.append(row)
        print(
            f"bench accuracy: {row['model']} ({row['start']}) seed {row['seed']}: AP {row['AP']}, "
            f"{row['optimizer_steps']} optimizer steps, {row['wall_s']:.0f} s",
            flush=True,
        )
        save()

    calls = [(m, s, data, imgsz, device, project, shared, weights[(m, st)], nwd) for m, st, s in todo]
    run_all(train_one, calls, jobs, record)
    rank = {(model_name(m), st, s): i for i, (m, st, s) in enumerate(order)}
    runs.sort(key=lambda r: rank.get(key(r), len(rank)))
    out = save()
    print(markdown(out))
    return out


def markdown(out: dict[str, Any]) -> str:
    """Return the accuracy report in Markdown: settings, per-model spreads, differences to the baselines, runs."""
    threads = sorted({r.get("train_threads") for r in out["runs"]} - {None})
    settings, pre = out["settings"], out["settings"].get("pretrained")
    starts = sorted({start_of(r) for r in out["runs"]}, reverse=True) or ["scratch"]
    kinds = {
        "scratch": "random weights (scratch)",
        "pretrained": "the stock counterpart's checkpoint (pretrained), trained on "
        f"{pre['train']} images of another synthetic task for {pre['train_args']['epochs']} epochs "
        "(`hsfpn-yolo bench pretrain`)"
        if pre
        else "a pretrained checkpoint",
    }
    steps = sorted({r["optimizer_steps"] for r in out["runs"] if r.get("optimizer_steps")})
    budget = (
        f"{settings.get('epochs')} epochs, batch {settings.get('batch')}, nominal batch {settings.get('nbs', 64)}: "
        f"{'/'.join(map(str, steps)) or 'unrecorded'} optimizer steps per run, at {settings.get('imgsz')} px"
    )
    lines = [
        header(out["env"]),
        f"- Budget: {budget}",
        f"- Start: {'; '.join(kinds[s] for s in starts)}",
        f"- Settings: {settings}",
    ]
    if out["settings"].get("nwd"):
        lines.insert(2, f"- Label assignment and box loss: NWD {out['settings']['nwd']} (`hsfpn_yolo.nwd`)")
    if threads:
        lines.append(f"- torch threads per run (Ultralytics sets them): {', '.join(map(str, threads))}")
    text = "\n## Accuracy\n\n" + "\n".join(lines) + "\n\nMean ± standard deviation (min–max) over the seeds:\n\n"
    text += table(out["summary"]) + "\n"
    deltas = delta_table(out["summary"])
    if deltas:
        text += (
            "\nAgainst the stock counterpart: difference of the means ± its standard error; (gain)/(loss) where it "
            "exceeds twice the error, (noise) otherwise:\n\n" + deltas + "\n"
        )
    return text + "\nPer seed:\n\n" + runs_table(out["runs"]) + "\n"
