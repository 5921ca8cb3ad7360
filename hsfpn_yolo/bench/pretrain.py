"""Pretrained starts for the accuracy benchmark: stock checkpoints trained once on a different synthetic task.

Users fine-tune pretrained weights, so the benchmark has a second regime in which every model starts from a stock
checkpoint instead of random weights. The checkpoints come from a pretraining set that is not the benchmark: the
synthetic generator's 'pretrain' look (other classes, shapes and colours, objects of 2-64 px), its own generator seed
and three times the benchmark's training images, at the benchmark's image size and training settings, for its own
number of epochs (`EPOCHS`, read off the pretraining's learning curve, which is saved beside each checkpoint). Each stock model
(e.g. yolov8n, yolov8n-p2) is trained on it once, with a fixed seed and deterministic settings, and its final weights
are kept in Ultralytics' weights folder under a name that encodes every setting: the same settings reuse the file,
other settings build another.

A model then starts from its stock counterpart's checkpoint (`pretrained=`): HS-FPN models receive every stock tensor
through `hsfpn_yolo.transfer`, their new parts start as their YAML initialises them, and Detect's class layers start
fresh (the pretraining task has other classes).

Examples:
    hsfpn-yolo bench pretrain                                  # yolov8n and yolov8n-p2, cached
    hsfpn-yolo bench accuracy --pretrained --seeds 0,1,2       # every model fine-tuned from them
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .common import counterpart, default_models, model_name, save_json
from .training import TRAIN, fit, run_all, sizes, train_settings

IMAGES_FACTOR = 3  # pretraining images per benchmark training image
DATA_SEED = 1  # generator seed of the pretraining set (the benchmark's set uses 0)
SEED = 0  # training seed of every pretraining run
FOLDER = "hsfpn-pretrain"  # inside Ultralytics' weights folder
# Pretraining epochs: past the first epoch within 95 % of the curve's best (22 for yolov8n, 20 for yolov8n-p2 in a
# 30-epoch run; docs/design-study.md, "Regime")
EPOCHS = 30


def pretrain_settings(
    train_images: int, val_images: int, imgsz: int, train: dict[str, Any], epochs: int | None = None
) -> dict[str, Any]:
    """Return the pretraining settings for a benchmark of `train_images` training images at `imgsz` trained with
    `train` (see `training.train_settings`): three times the images, same validation images, size and settings, its
    own epochs.

    Args:
        train_images (int): The benchmark's training images.
        val_images (int): The benchmark's validation images.
        imgsz (int): The benchmark's image size.
        train (dict): The benchmark's shared training settings.
        epochs (int, optional): Pretraining epochs (default `EPOCHS`).
    """
    train = {**train, "epochs": epochs or EPOCHS}
    return {
        "train": IMAGES_FACTOR * train_images,
        "val": val_images,
        "imgsz": imgsz,
        "data_seed": DATA_SEED,
        "look": "pretrain",
        "seed": SEED,
        "train_args": dict(train),
    }


def pretrain_data(settings: dict[str, Any]) -> str:
    """Generate (once) the pretraining set of `settings` in Ultralytics' datasets folder and return its data YAML.

    Args:
        settings (dict): See `pretrain_settings`.
    """
    from ultralytics.utils import SETTINGS

    from hsfpn_yolo.data.synth import generate

    s = settings
    name = f"hsfpn-pretrain-synth-{s['train']}-{s['val']}-{s['imgsz']}-s{s['data_seed']}"
    summary = generate(
        Path(SETTINGS["datasets_dir"]) / name, s["train"], s["val"], s["imgsz"], s["data_seed"], look=s["look"]
    )
    return str(Path(summary["path"]) / "data.yaml")


def checkpoint_path(model: str, settings: dict[str, Any]) -> Path:
    """Return where the pretrained checkpoint of stock `model` under `settings` is kept.

    Args:
        model (str): Stock model name, e.g. 'yolov8n-p2'.
        settings (dict): See `pretrain_settings`; every entry is part of the file name's digest.
    """
    from ultralytics.utils import SETTINGS

    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return Path(SETTINGS["weights_dir"]) / FOLDER / f"{model_name(model)}-{digest}.pt"


def pretrain_one(model: str, settings: dict[str, Any], device: str = "cpu") -> str:
    """Train stock `model` on the pretraining set and keep its final weights at `checkpoint_path`; return that path.

    The file appears only complete (written next to it, then renamed), so an interrupted run leaves nothing behind.

    Args:
        model (str): Stock model name.
        settings (dict): See `pretrain_settings`.
        device (str): 'cpu', '0', ...
    """
    dst = checkpoint_path(model, settings)
    data = pretrain_data(settings)
    project = dst.parent / "runs"
    yolo, clock = fit(
        model, settings["seed"], data, settings["imgsz"], device, project, settings["train_args"], dst.stem
    )
    tmp = dst.with_suffix(".tmp")
    shutil.copyfile(yolo.trainer.last, tmp)
    os.replace(tmp, dst)
    # Its learning curve on the pretraining set's validation images, beside it (what decides the pretraining epochs),
    # as a one-run results file that `bench compare --curves` and `bench plot` read
    save_json(dst.with_suffix(".json"), pretrain_record(model, settings, clock.steps, clock.curve))
    return str(dst)


def pretrain_record(model: str, settings: dict[str, Any], steps: int, curve: dict[str, list]) -> dict[str, Any]:
    """Return a pretraining run as a `bench accuracy` results file of one run (from scratch, its curve included).

    Args:
        model (str): Stock model name.
        settings (dict): See `pretrain_settings`.
        steps (int): Optimizer steps the run made.
        curve (dict): Validation AP per epoch (`training.EpochClock.curve`).
    """
    run = {"model": model_name(model), "start": "scratch", "seed": settings["seed"], "params": None}
    run |= {"epochs": len(next(iter(curve.values()), [])), "optimizer_steps": steps, "curve": curve}
    return {"settings": {**settings["train_args"], "imgsz": settings["imgsz"]}, "pretraining": settings, "runs": [run]}


def starting_points(models: list[str], settings: dict[str, Any], device: str = "cpu", jobs: int = 2) -> dict[str, str]:
    """Return {model: checkpoint it starts from} (its stock counterpart's), pretraining the missing checkpoints first.

    Args:
        models (list[str]): Model names or YAML paths.
        settings (dict): See `pretrain_settings`.
        device (str): 'cpu', '0', ...
        jobs (int): Checkpoints trained at the same time, each in its own process.
    """
    stock = list(dict.fromkeys(counterpart(model_name(m)) for m in models))
    missing = [m for m in stock if not checkpoint_path(m, settings).is_file()]
    if missing:
        pretrain_data(settings)  # once, before the workers, which would otherwise race to write it
        print(
            f"bench pretrain: training {', '.join(missing)} on the pretraining set ({len(stock) - len(missing)} cached)"
        )
        done = 0

        def report(path: str) -> None:
            nonlocal done
            done += 1
            print(f"bench pretrain: {done}/{len(missing)} checkpoints ready ({path})", flush=True)

        run_all(pretrain_one, [(m, settings, device) for m in missing], jobs, report)
    paths = {m: str(checkpoint_path(m, settings)) for m in stock}
    return {m: paths[counterpart(model_name(m))] for m in models}


def run(
    models: list[str] | None = None,
    quick: bool = False,
    epochs: int | None = None,
    imgsz: int | None = None,
    train_images: int | None = None,
    val_images: int | None = None,
    batch: int = TRAIN["batch"],
    workers: int = TRAIN["workers"],
    device: str = "cpu",
    jobs: int = 2,
    scale: str = "n",
    nbs: int | None = None,
    pretrain_epochs: int | None = None,
) -> dict[str, str]:
    """Build the pretrained checkpoints that `bench accuracy --pretrained` with the same arguments starts from; print
    and return {stock model: checkpoint path}.

    Args:
        models (list[str], optional): The benchmark's models (their stock counterparts are pretrained); default the
            six models at `scale`.
        quick, epochs, imgsz, train_images, val_images: The benchmark's sizes, as `bench accuracy` takes them.
        batch (int): Batch size.
        workers (int): Dataloader workers.
        device (str): 'cpu', '0', ...
        jobs (int): Checkpoints trained at the same time.
        scale (str): Scale of the default models.
        nbs (int, optional): Nominal batch size (`training.train_settings`).
        pretrain_epochs (int, optional): Pretraining epochs (default `EPOCHS`).
    """
    epochs, imgsz, train_images, val_images = sizes(quick, epochs, imgsz, train_images, val_images)
    shared = train_settings(epochs, batch, workers, nbs)
    settings = pretrain_settings(train_images, val_images, imgsz, shared, pretrain_epochs)
    models = models or default_models(scale)
    paths = dict(
        zip(map(counterpart, map(model_name, models)), starting_points(models, settings, device, jobs).values())
    )
    for m, path in paths.items():
        print(f"{m}: {path}")
    return paths
