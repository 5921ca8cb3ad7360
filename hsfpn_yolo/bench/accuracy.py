"""Train every model the same way with several training seeds and compare tiny-object AP and time per epoch.

One run trains one (model, seed) pair; every run of a benchmark shares the data, epochs, image size, batch and
optimizer. Per model the report gives mean, standard deviation and min-max over the seeds, and against the model's
stock counterpart (yolov8n for P3-P5 models, yolov8n-p2 for P2 models) the difference of the means with its standard
error: a difference counts only where it exceeds twice that error.

Defaults train on the built-in synthetic tiny-object set (generated once into Ultralytics' datasets folder), sized to
take about an hour for the four YOLOv8n-scale models with three seeds on 2 CPU cores (two runs at a time, since
Ultralytics trains with one thread on such a machine); `--quick` is a shorter screening run, `--data` a real dataset.
With `--pretrained` every model starts from its stock counterpart's checkpoint, pretrained once on a different
synthetic task (`hsfpn_yolo.bench.pretrain`), as users fine-tune pretrained weights; without it, from random weights.
With `--nwd` every model trains with NWD label assignment and box loss (`hsfpn_yolo.nwd`), set through the Python API.

Examples:
    hsfpn-yolo bench accuracy --seeds 0,1,2                      # synthetic set, four models, CPU
    hsfpn-yolo bench accuracy --quick --models yolov8n,yolov8n-hsfpn
    hsfpn-yolo bench accuracy --pretrained --models yolov8n,yolov8n-finepath,yolov8n-hsfpn
    hsfpn-yolo bench accuracy --nwd --models yolov8n,yolov8n-p2 --json runs/bench/accuracy-nwd.json
    hsfpn-yolo bench accuracy --data cfg/datasets/AI-TOD.yaml --epochs 100 --imgsz 800 --device 0 --jobs 1
"""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path
from typing import Any

from ..sizes import AP_KEYS
from .common import counterpart, default_models, environment, header, md_table, model_name, model_yaml, save_json
from .training import SEEDS, TRAIN, fit, run_all, sizes, synth_data, train_settings

METRICS = AP_KEYS  # AP, AP50, AP75 and AP per AI-TOD size bucket
SHOWN = ("AP", "AP50", "AP_vt", "AP_t", "AP_s")  # metrics in the Markdown tables
TIMES = ("epoch_train_s", "epoch_total_s")


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
    """Train one model with one seed and the shared settings (`fit`); return its final tiny-object AP and timings."""
    yolo, clock = fit(model, seed, data, imgsz, device, project, train, weights=weights, nwd=nwd)
    metrics = yolo.metrics
    tiny = getattr(metrics, "tiny", None) or {}
    return {
        "model": model_name(model),
        "seed": seed,
        "params": sum(p.numel() for p in yolo.model.parameters()),
        **{k: tiny.get(k) for k in METRICS},
        "mAP50-95 (Ultralytics)": float(metrics.box.map) if metrics is not None else None,
        "epochs": len(clock.train),
        "epoch_train_s": statistics.median(clock.train) if clock.train else None,
        "epoch_total_s": statistics.median(clock.total) if clock.total else None,
        "wall_s": clock.wall_s,
        "train_threads": clock.threads,
        "optimizer_steps": clock.steps,
        "curve": clock.curve,
        "save_dir": str(yolo.trainer.save_dir),
        "start": Path(weights).name if weights else "scratch",
    }


def spread(values: list[float]) -> dict[str, float | int | None]:
    """Return n, mean, sample standard deviation (0 for one value), min and max of `values` (None when empty)."""
    if not values:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"n": len(values), "mean": statistics.fmean(values), "std": sd, "min": min(values), "max": max(values)}


def difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """Return the difference of two `spread` means, its standard error and verdict (None where a mean is missing).

    Args:
        a (dict): `spread` of the model.
        b (dict): `spread` of the model it is compared with.
    """
    if a["mean"] is None or b["mean"] is None:
        return None
    diff = a["mean"] - b["mean"]
    se = math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    enough = a["n"] > 1 and b["n"] > 1
    verdict = "gain" if enough and diff > 2 * se else "loss" if enough and diff < -2 * se else "within noise"
    return {"diff": diff, "se": se, "verdict": verdict}


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate the per-seed runs per model and compare each model with its stock counterpart.

    The difference of two means has standard error sqrt(s1²/n1 + s2²/n2); `verdict` says 'gain' or 'loss' where the
    difference exceeds twice that error, else 'within noise' (also when either side has fewer than two seeds).

    Args:
        runs (list[dict]): Rows of `train_one`.
    """
    models = list(dict.fromkeys(r["model"] for r in runs))
    stats = {}
    for m in models:
        rows = [r for r in runs if r["model"] == m]
        # A bucket without objects reports -1 (COCO's convention); leave it out of the statistics
        keys = {k: spread([r[k] for r in rows if r.get(k) is not None and r[k] >= 0]) for k in METRICS + TIMES}
        stats[m] = {"model": m, "seeds": sorted(r["seed"] for r in rows), "params": rows[0]["params"], **keys}
    for m, s in stats.items():
        base = stats.get(counterpart(m))
        if base is None or base is s:
            continue
        s["baseline"] = base["model"]
        for k in METRICS:
            if (d := difference(s[k], base[k])) is not None:
                s[f"delta_{k}"] = d
        for k in TIMES:
            if s[k]["mean"] and base[k]["mean"]:
                s[f"ratio_{k}"] = s[k]["mean"] / base[k]["mean"]
    return list(stats.values())


def mean_sd(s: dict[str, Any], digits: int = 3) -> str:
    """Format a `spread` as 'mean ± sd (min–max)', or 'n/a' without values."""
    if s["mean"] is None:
        return "n/a"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def table(summary: list[dict[str, Any]]) -> str:
    """Return the per-model table: mean ± standard deviation (min–max) over the seeds."""
    rows = [
        {
            "model": s["model"],
            "seeds": len(s["seeds"]),
            "params": f"{s['params'] / 1e6:.2f} M",
            **{k: mean_sd(s[k]) for k in SHOWN},
            "s/epoch (train)": None if s["epoch_train_s"]["mean"] is None else f"{s['epoch_train_s']['mean']:.1f}",
        }
        for s in summary
    ]
    return md_table(rows, ["model", "seeds", "params", *SHOWN, "s/epoch (train)"])


def delta_table(summary: list[dict[str, Any]]) -> str:
    """Return each HS-FPN model against its counterpart: difference of means ± its standard error, and the verdict."""
    rows = []
    for s in summary:
        if "baseline" not in s:
            continue
        row = {"model": s["model"], "vs": s["baseline"]}
        for k in SHOWN:
            d = s.get(f"delta_{k}")
            row[f"Δ{k}"] = None if d is None else f"{d['diff']:+.3f} ± {d['se']:.3f} {_VERDICT[d['verdict']]}"
        ratio = s.get("ratio_epoch_train_s")
        row["epoch time ×"] = None if ratio is None else f"{ratio:.2f}"
        rows.append(row)
    if not rows:
        return ""
    return md_table(rows, ["model", "vs", *(f"Δ{k}" for k in SHOWN), "epoch time ×"])


_VERDICT = {"gain": "(gain)", "loss": "(loss)", "within noise": "(noise)"}


def runs_table(runs: list[dict[str, Any]]) -> str:
    """Return one row per (model, seed)."""
    fmt = [
        {
            "model": r["model"],
            "seed": r["seed"],
            **{k: "n/a" if r.get(k) is None or r[k] < 0 else f"{r[k]:.3f}" for k in SHOWN},
            "s/epoch": None if r.get("epoch_train_s") is None else f"{r['epoch_train_s']:.1f}",
        }
        for r in runs
    ]
    return md_table(fmt, ["model", "seed", *SHOWN, "s/epoch"])


def save_csv(path: Path, runs: list[dict[str, Any]]) -> None:
    """Write one CSV row per (model, seed) run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = [k for k in dict.fromkeys(k for r in runs for k in r) if k != "curve"]  # the curves stay in the JSON
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(runs)


def _load_done(paths: list[str | Path], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the runs of earlier benchmarks with the very same settings (resumed, not retrained), one per pair.

    Args:
        paths (list[str | Path]): Results JSONs; missing files and files with other settings are skipped.
        settings (dict): Settings the runs must have been trained with.
    """
    import json

    runs: dict[tuple[str, int], dict[str, Any]] = {}
    for path in paths:
        try:
            old = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if old.get("settings") == settings:
            for r in old.get("runs", []):
                runs.setdefault((r["model"], r["seed"]), r)
    return list(runs.values())


def runs_in(paths: list[str | Path], alias: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Return the runs of several results JSONs, a (model, seed) pair found in more than one file counted once.

    Args:
        paths (list[str | Path]): `bench accuracy` results JSONs.
        alias (dict, optional): Model renames (e.g. a study YAML that later shipped under another name).
    """
    import json

    alias = alias or {}
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    for path in paths:
        for r in json.loads(Path(path).read_text(encoding="utf-8"))["runs"]:
            model = alias.get(r["model"], r["model"])
            runs.setdefault((model, r["seed"]), {**r, "model": model})
    return list(runs.values())



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
    pretrained: bool = False,
    nwd: dict[str, Any] | None = None,
    nbs: int | None = None,
    pretrain_epochs: int | None = None,
) -> dict[str, Any]:
    """Train each model with each seed under the same settings; print and save per-seed rows and per-model spreads.

    Args:
        models (list[str], optional): Model names or YAML paths; default the four models at `scale`.
        seeds (Sequence[int]): Training seeds; each model is trained once per seed.
        data (str, optional): Data YAML; default the synthetic set (generated at `imgsz`), with oriented boxes for OBB
            models.
        epochs (int, optional): Epochs per run (default 10, 6 with `quick`).
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
        resume (bool): Keep the runs already in `json_path` when its settings are identical, train only the rest.
        reuse (tuple[str | Path]): More results JSONs whose runs with identical settings are kept, with or without
            `resume` (e.g. of a benchmark run alongside in another process).
        pretrained (bool): Start every model from its stock counterpart's pretrained checkpoint (built first where
            missing, see `hsfpn_yolo.bench.pretrain`) instead of random weights.
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
    if obb and pretrained:
        raise ValueError(
            "--pretrained starts detect models only (bench pretrain builds detect checkpoints); train OBB "
            "models from random weights, or give them a checkpoint of your own with `yolo obb train`"
        )
    data = data or synth_data(train_images, val_images, imgsz, SYNTH["seed"], obb=obb)
    settings = {**shared, "imgsz": imgsz, "data": data, "device": device}
    weights = {m: None for m in models}
    if pretrained:  # only then, so that results saved before stay comparable to new from-scratch runs
        from .pretrain import pretrain_settings, starts

        settings["pretrained"] = pretrain_settings(train_images, val_images, imgsz, shared, pretrain_epochs)
        weights = starts(models, settings["pretrained"], device, jobs)
    if nwd is not None:  # likewise only then
        settings["nwd"] = nwd
    env = environment()
    wanted = {(model_name(m), s) for m in models for s in seeds}
    # Everything already in `json_path` stays (the file accumulates); from other files only the pairs asked for
    done = _load_done([json_path] if resume and json_path else [], settings)
    done += [r for r in _load_done(list(reuse), settings) if (r["model"], r["seed"]) in wanted]
    unique: dict[tuple[str, int], dict[str, Any]] = {}
    for r in done:
        unique.setdefault((r["model"], r["seed"]), r)  # the first copy of each pair
    done = list(unique.values())
    finished = set(unique)
    # Seed-major order: a benchmark stopped early still has every model at the seeds it reached
    todo = [(m, s) for s in seeds for m in models if (model_name(m), s) not in finished]
    if done:
        print(f"bench accuracy: {len(done)} run(s) with these settings kept, {len(todo)} to train")
    runs = list(done)
    project = Path(project).resolve()

    def record(row: dict[str, Any]) -> None:
        runs.append(row)
        print(f"bench accuracy: {row['model']} seed {row['seed']}: AP {row['AP']}, {row['wall_s']:.0f} s", flush=True)
        if json_path:  # after every run, so a benchmark that stops early keeps what it finished
            out = {"env": env, "settings": settings, "jobs": jobs, "runs": runs, "summary": summarize(runs)}
            save_json(json_path, out)
            save_csv(Path(json_path).with_suffix(".csv"), runs)

    calls = [(m, s, data, imgsz, device, project, shared, weights[m], nwd) for m, s in todo]
    run_all(train_one, calls, jobs, record)
    order = {(model_name(m), s): i for i, (s, m) in enumerate((s, m) for s in seeds for m in models)}
    runs.sort(key=lambda r: order.get((r["model"], r["seed"]), len(order)))
    out = {"env": env, "settings": settings, "jobs": jobs, "runs": runs, "summary": summarize(runs)}
    if json_path:
        save_json(json_path, out)
        save_csv(Path(json_path).with_suffix(".csv"), runs)
    print(markdown(out))
    return out


def markdown(out: dict[str, Any]) -> str:
    """Return the accuracy report in Markdown: settings, per-model spreads, differences to the baselines, runs."""
    threads = sorted({r.get("train_threads") for r in out["runs"]} - {None})
    pre = out["settings"].get("pretrained")
    start = (
        f"stock checkpoints pretrained on {pre['train']} images of another synthetic task for {pre['train_args']['epochs']}"
        " epochs (`hsfpn-yolo bench pretrain`)"
        if pre
        else "random weights"
    )
    lines = [header(out["env"]), f"- Start: {start}", f"- Settings: {out['settings']}"]
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
