"""Train every model the same way on one dataset and compare tiny-object AP and wall time per epoch.

Defaults train on the built-in synthetic tiny-object set (generated once into Ultralytics' datasets folder), sized to
take about an hour for the four YOLOv8n-scale models on 2 CPU cores; `--data` points at a real dataset instead.

Examples:
    hsfpn-yolo bench accuracy                                    # synthetic set, four models, CPU
    hsfpn-yolo bench accuracy --data cfg/datasets/AI-TOD.yaml --epochs 100 --imgsz 800 --device 0
"""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path
from typing import Any

from .common import default_models, environment, header, md_table, model_yaml, save_json

SYNTH = {"train": 256, "val": 64, "imgsz": 320, "seed": 0}  # default synthetic set, ~1 h of training on 2 CPU cores
TRAIN = {"epochs": 10, "batch": 16, "optimizer": "AdamW", "lr0": 0.002, "seed": 0}  # identical for every model
METRICS = ("AP", "AP50", "AP75", "AP_vt", "AP_t", "AP_s", "AP_m")
COLUMNS = ["model", "params", "AP", "AP50", "AP_vt", "AP_t", "AP_s", "s/epoch (train)", "s/epoch (+val)"]


def synth_data(train: int, val: int, imgsz: int, seed: int, root: str | Path | None = None) -> str:
    """Generate (once) the synthetic tiny-object set and return its data YAML.

    Args:
        train (int): Training images.
        val (int): Validation images.
        imgsz (int): Image side in pixels.
        seed (int): Generator seed.
        root (str | Path, optional): Parent folder; default Ultralytics' datasets folder.
    """
    from hsfpn_yolo.data.synth import generate
    from ultralytics.utils import SETTINGS

    root = Path(root or SETTINGS["datasets_dir"])
    summary = generate(root / f"hsfpn-bench-synth-{train}-{val}-{imgsz}-s{seed}", train, val, imgsz, seed)
    return str(Path(summary["path"]) / "data.yaml")


class EpochClock:
    """Ultralytics callbacks that record the wall time of each training epoch, with and without its validation."""

    def __init__(self):
        self.train: list[float] = []
        self.total: list[float] = []
        self._t0 = self._t1 = 0.0
        self.threads = 0

    def start(self, trainer) -> None:
        """Epoch starts; note the torch thread count Ultralytics trains with."""
        import torch

        self.threads = torch.get_num_threads()
        self._t0 = time.perf_counter()

    def trained(self, trainer) -> None:
        """Epoch's training batches are done."""
        self._t1 = time.perf_counter()
        self.train.append(self._t1 - self._t0)

    def validated(self, trainer) -> None:
        """Epoch's validation is done."""
        self.total.append(time.perf_counter() - self._t0)

    def attach(self, model) -> None:
        """Add the callbacks to a YOLO object."""
        model.add_callback("on_train_epoch_start", self.start)
        model.add_callback("on_train_epoch_end", self.trained)
        model.add_callback("on_fit_epoch_end", self.validated)


def train_one(name: str, data: str, imgsz: int, device: str, project: Path, train: dict[str, Any]) -> dict[str, Any]:
    """Train one model with the shared settings and return its final tiny-object AP and timings.

    Args:
        name (str): Model name (see `model_yaml`).
        data (str): Data YAML.
        imgsz (int): Training and validation image size.
        device (str): 'cpu', '0', ...
        project (Path): Folder for the Ultralytics runs.
        train (dict): Shared training settings (epochs, batch, optimizer, lr0, seed, workers).
    """
    from hsfpn_yolo.metrics import enable_tiny_metrics
    from ultralytics import YOLO

    model = enable_tiny_metrics(YOLO(model_yaml(name)))  # HS-FPN models report it anyway; stock ones opt in
    clock = EpochClock()
    clock.attach(model)
    t = time.perf_counter()
    metrics = model.train(
        data=data,
        imgsz=imgsz,
        device=device,
        project=str(project),
        name=name,
        exist_ok=True,
        deterministic=True,
        pretrained=False,
        amp=False,
        plots=False,
        verbose=False,
        **train,
    )
    wall = time.perf_counter() - t
    tiny = getattr(metrics, "tiny", None) or {}
    return {
        "model": name,
        "params": sum(p.numel() for p in model.model.parameters()),
        **{k: tiny.get(k) for k in METRICS},
        "mAP50-95 (Ultralytics)": float(metrics.box.map) if metrics is not None else None,
        "epochs": len(clock.train),
        "epoch_train_s": statistics.median(clock.train) if clock.train else None,
        "epoch_total_s": statistics.median(clock.total) if clock.total else None,
        "wall_s": wall,
        "train_threads": clock.threads,
        "save_dir": str(model.trainer.save_dir),
    }


def _fmt(v: Any, digits: int = 3) -> str | None:
    """Format an AP (n/a when the bucket had no objects) or a time."""
    if v is None:
        return None
    return "n/a" if isinstance(v, float) and v < 0 else f"{v:.{digits}f}"


def table(results: list[dict[str, Any]]) -> str:
    """Return the accuracy table in Markdown."""
    rows = [
        {
            "model": r["model"],
            "params": f"{r['params'] / 1e6:.2f} M",
            **{k: _fmt(r.get(k)) for k in ("AP", "AP50", "AP_vt", "AP_t", "AP_s")},
            "s/epoch (train)": _fmt(r.get("epoch_train_s"), 1),
            "s/epoch (+val)": _fmt(r.get("epoch_total_s"), 1),
        }
        for r in results
    ]
    return md_table(rows, COLUMNS)


def save_csv(path: Path, results: list[dict[str, Any]]) -> None:
    """Write one CSV row per model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)


def run(
    models: list[str] | None = None,
    data: str | None = None,
    epochs: int = TRAIN["epochs"],
    imgsz: int = SYNTH["imgsz"],
    batch: int = TRAIN["batch"],
    device: str = "cpu",
    train_images: int = SYNTH["train"],
    val_images: int = SYNTH["val"],
    workers: int = 2,
    scale: str = "n",
    project: str | Path = "runs/bench/accuracy",
    json_path: str | Path | None = "runs/bench/accuracy.json",
) -> dict[str, Any]:
    """Train each model with the same seed, epochs, image size and optimizer; print and save the comparison.

    Args:
        models (list[str], optional): Model names; default the four models at `scale`.
        data (str, optional): Data YAML; default the synthetic set (generated at `imgsz`).
        epochs (int): Epochs per model.
        imgsz (int): Image size for training and validation.
        batch (int): Batch size.
        device (str): 'cpu', '0', ...
        train_images (int): Synthetic training images (ignored with `data`).
        val_images (int): Synthetic validation images (ignored with `data`).
        workers (int): Dataloader workers.
        scale (str): Scale of the default models.
        project (str | Path): Folder for the Ultralytics runs.
        json_path (str | Path, optional): Results JSON; a CSV with the same stem is written next to it.

    Returns:
        (dict): {'env', 'settings', 'results'}.
    """
    models = models or default_models(scale)
    env = environment()
    data = data or synth_data(train_images, val_images, imgsz, SYNTH["seed"])
    settings = {**TRAIN, "epochs": epochs, "batch": batch, "workers": workers, "imgsz": imgsz, "data": data}
    shared = {k: settings[k] for k in ("epochs", "batch", "optimizer", "lr0", "seed", "workers")}
    results = []
    for name in models:
        results.append(train_one(name, data, imgsz, device, Path(project).resolve(), shared))
        out = {"env": env, "settings": settings, "results": results}
        if json_path:  # after every model, so a long run that stops early keeps what it finished
            save_json(json_path, out)
            save_csv(Path(json_path).with_suffix(".csv"), results)
    print(markdown(out))
    return out


def markdown(out: dict[str, Any]) -> str:
    """Return the accuracy report in Markdown."""
    threads = sorted({r.get("train_threads") for r in out["results"]} - {None})
    lines = [header(out["env"]), f"- Settings: {out['settings']}"]
    if threads:
        lines.append(f"- torch threads while training (Ultralytics sets them): {', '.join(map(str, threads))}")
    return "\n## Accuracy\n\n" + "\n".join(lines) + f"\n\n{table(out['results'])}\n"
