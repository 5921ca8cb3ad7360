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
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from ..sizes import AP_KEYS
from .common import counterpart, default_models, environment, header, md_table, model_name, model_yaml, save_json

SYNTH = {"train": 200, "val": 50, "imgsz": 256, "seed": 0}  # default synthetic set
TRAIN = {"epochs": 10, "batch": 8, "optimizer": "AdamW", "lr0": 0.002, "workers": 2}  # every model and seed
SEEDS = (0, 1, 2)  # default training seeds
QUICK = {"train": 100, "val": 40, "imgsz": 256, "epochs": 6}  # screening run: about a third of the default
METRICS = AP_KEYS  # AP, AP50, AP75 and AP per AI-TOD size bucket
SHOWN = ("AP", "AP50", "AP_vt", "AP_t", "AP_s")  # metrics in the Markdown tables
TIMES = ("epoch_train_s", "epoch_total_s")


def synth_data(train: int, val: int, imgsz: int, seed: int, root: str | Path | None = None, obb: bool = False) -> str:
    """Generate (once) the synthetic tiny-object set and return its data YAML.

    Args:
        train (int): Training images.
        val (int): Validation images.
        imgsz (int): Image side in pixels.
        seed (int): Generator seed.
        root (str | Path, optional): Parent folder; default Ultralytics' datasets folder.
        obb (bool): The same images with oriented-box labels (Ultralytics' OBB task), in a folder of their own.
    """
    from hsfpn_yolo.data.synth import generate
    from ultralytics.utils import SETTINGS

    root = Path(root or SETTINGS["datasets_dir"])
    name = f"hsfpn-bench-synth{'-obb' if obb else ''}-{train}-{val}-{imgsz}-s{seed}"
    summary = generate(root / name, train, val, imgsz, seed, obb=obb)
    return str(Path(summary["path"]) / "data.yaml")


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


class EpochClock:
    """Ultralytics callbacks that record the wall time of each training epoch, with and without its validation."""

    def __init__(self):
        self.train: list[float] = []
        self.total: list[float] = []
        self._t0 = 0.0
        self.threads = 0
        self.wall_s = 0.0  # the whole training call, set by `fit`

    def start(self, trainer) -> None:
        """Epoch starts; note the torch thread count Ultralytics trains with."""
        import torch

        self.threads = torch.get_num_threads()
        self._t0 = time.perf_counter()

    def trained(self, trainer) -> None:
        """Epoch's training batches are done."""
        self.train.append(time.perf_counter() - self._t0)

    def validated(self, trainer) -> None:
        """Epoch's validation is done."""
        self.total.append(time.perf_counter() - self._t0)

    def attach(self, model) -> None:
        """Add the callbacks to a YOLO object."""
        model.add_callback("on_train_epoch_start", self.start)
        model.add_callback("on_train_epoch_end", self.trained)
        model.add_callback("on_fit_epoch_end", self.validated)


def train_settings(
    epochs: int = TRAIN["epochs"],
    batch: int = TRAIN["batch"],
    workers: int = TRAIN["workers"],
    nbs: int | None = None,
) -> dict[str, Any]:
    """Return the training settings every run of a benchmark shares: `TRAIN` with the given epochs, batch, workers.

    Args:
        epochs (int): Epochs per run.
        batch (int): Batch size.
        workers (int): Dataloader workers.
        nbs (int, optional): Ultralytics' nominal batch size: gradients are summed over round(nbs / batch) batches per
            optimizer step (Ultralytics' default 64). Only a given value enters the settings, so results saved
            without it stay comparable.
    """
    if nbs is not None and nbs < batch:
        raise ValueError(f"nbs={nbs} is below batch={batch}: give an nbs of at least the batch size (one step a batch)")
    return {**TRAIN, "epochs": epochs, "batch": batch, "workers": workers, **({"nbs": nbs} if nbs else {})}


def fit(
    model: str,
    seed: int,
    data: str,
    imgsz: int,
    device: str,
    project: Path,
    train: dict[str, Any],
    name: str | None = None,
    weights: str | None = None,
    nwd: dict[str, Any] | None = None,
) -> tuple[Any, EpochClock]:
    """Train one model with one seed and the shared settings, as every benchmark run does.

    Args:
        model (str): Model name (see `model_yaml`) or YAML path.
        seed (int): Training seed (weight init, augmentation and data order).
        data (str): Data YAML.
        imgsz (int): Training and validation image size.
        device (str): 'cpu', '0', ...
        project (Path): Folder for the Ultralytics runs.
        train (dict): Shared training settings, see `train_settings`.
        name (str, optional): Run folder inside `project`; default '{model}-s{seed}'.
        weights (str, optional): Checkpoint to start from (Ultralytics' `pretrained=`); default random weights.
        nwd (dict, optional): NWD assignment and loss options (`hsfpn_yolo.nwd.DEFAULTS`); default the stock loss.

    Returns:
        (tuple): The trained YOLO object (`.metrics`: its final validation, with `.tiny`) and its `EpochClock`,
            whose `wall_s` is the whole call.
    """
    from hsfpn_yolo.metrics import enable_tiny_metrics
    from ultralytics import YOLO

    yolo = enable_tiny_metrics(YOLO(model_yaml(model)))  # HS-FPN models report it anyway; stock ones opt in
    if nwd is not None:
        from hsfpn_yolo.nwd import enable

        enable(yolo, **nwd)
    clock = EpochClock()
    clock.attach(yolo)
    t = time.perf_counter()
    yolo.train(
        data=data,
        imgsz=imgsz,
        device=device,
        project=str(project),
        name=name or f"{model_name(model)}-s{seed}",
        exist_ok=True,
        seed=seed,
        deterministic=True,
        pretrained=weights or False,
        amp=False,
        plots=False,
        verbose=False,
        **train,
    )
    clock.wall_s = time.perf_counter() - t
    return yolo, clock


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
    fields = list(dict.fromkeys(k for r in runs for k in r))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
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


def sizes(
    quick: bool = False,
    epochs: int | None = None,
    imgsz: int | None = None,
    train_images: int | None = None,
    val_images: int | None = None,
) -> tuple[int, int, int, int]:
    """Return (epochs, imgsz, train images, val images) of a benchmark: the given values, else the defaults (`QUICK`'s
    with `quick`)."""
    preset = {**SYNTH, **TRAIN, **(QUICK if quick else {})}
    return (
        epochs or preset["epochs"],
        imgsz or preset["imgsz"],
        train_images or preset["train"],
        val_images or preset["val"],
    )


def run_all(fn: Callable[..., Any], calls: list[tuple], jobs: int, done: Callable[[Any], None]) -> None:
    """Call `fn(*args)` for every args tuple in `calls` and pass each result to `done` as it arrives.

    With `jobs` > 1 the calls run in spawned worker processes, one call per process, so no state leaks between runs;
    a call that fails stops the rest.

    Args:
        fn (Callable): A module-level function (workers import it).
        calls (list[tuple]): Positional arguments of each call.
        jobs (int): Calls running at the same time.
        done (Callable): Receives each result, in the order they finish.
    """
    if jobs <= 1:
        for args in calls:
            done(fn(*args))
        return
    ctx = multiprocessing.get_context("spawn")
    fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
    with ProcessPoolExecutor(jobs, mp_context=ctx, **fresh) as pool:
        pending = {pool.submit(fn, *args) for args in calls}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    done(f.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # a failed run stops the benchmark, not just itself
            raise


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
        nbs (int, optional): Nominal batch size (`train_settings`); default Ultralytics' 64. With `nbs=batch` every
            batch is an optimizer step: 8 times the steps of the default at batch 8.

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

        settings["pretrained"] = pretrain_settings(train_images, val_images, imgsz, shared)
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
