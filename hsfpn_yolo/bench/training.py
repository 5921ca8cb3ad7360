"""How one benchmark run trains: the shared settings, the synthetic set, the training call and its per-epoch record.

`bench accuracy`, `bench pretrain` and the demo train through `fit`, so a setting changed here changes all of them.
The default regime makes one optimizer step per batch (Ultralytics' nominal batch size `nbs` set to the batch):
with Ultralytics' default nbs of 64 a batch-8 run on a few hundred images makes a few dozen steps and stops far from
convergence (docs/design-study.md, "Regime").
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

SYNTH = {"train": 200, "val": 50, "imgsz": 256, "seed": 0}  # default synthetic set
TRAIN = {"epochs": 35, "batch": 8, "optimizer": "AdamW", "lr0": 0.002, "workers": 2}  # every model and seed
SEEDS = (0, 1, 2)  # default training seeds
QUICK = {"train": 100, "val": 40, "imgsz": 256, "epochs": 6}  # screening run: about a third of the default
CURVE_KEYS = {"AP": None, "mAP50-95": "metrics/mAP50-95(B)"}  # per-epoch validation: tiny-object AP, Ultralytics' own


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
    from ultralytics.utils import SETTINGS

    from hsfpn_yolo.data.synth import generate

    root = Path(root or SETTINGS["datasets_dir"])
    name = f"hsfpn-bench-synth{'-obb' if obb else ''}-{train}-{val}-{imgsz}-s{seed}"
    summary = generate(root / name, train, val, imgsz, seed, obb=obb)
    return str(Path(summary["path"]) / "data.yaml")


class EpochClock:
    """Ultralytics callbacks that record each epoch: wall time with and without its validation, the validation AP
    (the learning curve) and the optimizer steps taken."""

    def __init__(self):
        self.train: list[float] = []
        self.total: list[float] = []
        self.curve: dict[str, list[float | None]] = {k: [] for k in CURVE_KEYS}
        self.steps = 0
        self._t0 = 0.0
        self.threads = 0
        self.wall_s = 0.0  # the whole training call, set by `fit`

    def begin(self, trainer) -> None:
        """Training starts: count the optimizer's steps through its own post-step hook (nothing runs per batch)."""

        def count(*_) -> None:
            self.steps += 1

        trainer.optimizer.register_step_post_hook(count)

    def start(self, trainer) -> None:
        """Epoch starts; note the torch thread count Ultralytics trains with."""
        import torch

        self.threads = torch.get_num_threads()
        self._t0 = time.perf_counter()

    def trained(self, trainer) -> None:
        """Epoch's training batches are done."""
        self.train.append(time.perf_counter() - self._t0)

    def validated(self, trainer) -> None:
        """Epoch's validation is done: its time and AP."""
        if trainer.epoch >= trainer.epochs:  # the final validation of best.pt after training, not an epoch
            return
        self.total.append(time.perf_counter() - self._t0)
        tiny = getattr(getattr(trainer.validator, "metrics", None), "tiny", None) or {}
        for key, column in CURVE_KEYS.items():
            value = tiny.get(key) if column is None else (trainer.metrics or {}).get(column)
            self.curve[key].append(None if value is None else round(float(value), 5))

    def attach(self, model) -> None:
        """Add the callbacks to a YOLO object."""
        model.add_callback("on_train_start", self.begin)
        model.add_callback("on_train_epoch_start", self.start)
        model.add_callback("on_train_epoch_end", self.trained)
        model.add_callback("on_fit_epoch_end", self.validated)


def train_settings(
    epochs: int = TRAIN["epochs"],
    batch: int = TRAIN["batch"],
    workers: int = TRAIN["workers"],
    nbs: int | None = None,
) -> dict[str, Any]:
    """Return the training settings every run of a benchmark shares: `TRAIN` with the given epochs, batch, workers
    and nominal batch size.

    Args:
        epochs (int): Epochs per run.
        batch (int): Batch size.
        workers (int): Dataloader workers.
        nbs (int, optional): Ultralytics' nominal batch size: gradients are summed over round(nbs / batch) batches per
            optimizer step. Default the batch size: one optimizer step per batch.
    """
    nbs = nbs or batch
    if nbs < batch:
        raise ValueError(f"nbs={nbs} is below batch={batch}: give an nbs of at least the batch size (one step a batch)")
    return {**TRAIN, "epochs": epochs, "batch": batch, "workers": workers, "nbs": nbs}


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
        model (str): Model name (see `common.model_yaml`) or YAML path.
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
    from ultralytics import YOLO

    from hsfpn_yolo.metrics import enable_tiny_metrics

    from .common import model_name, model_yaml

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
