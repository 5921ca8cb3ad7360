"""The residual gates of gated HFP/SDP blocks: how far they have opened, and how the optimizer treats them.

A gated block adds `gamma * branch` to its input, with `gamma` (one value per channel) starting at 0 or the YAML's
value. A gate that stays near zero means the block barely changes what the model computes. During training of a model
with gated blocks, `gates.csv` in the run folder gets one row per block and epoch (mean and largest |gamma| of the EMA
weights that the checkpoint saves), and the end of training prints one line with the final values.

Ultralytics' `build_optimizer` would put `gamma`, a (1, C, 1, 1) tensor, with the decayed conv weights (AdamW/SGD:
weight decay pulls every gate back to zero) or, under MuSGD (`optimizer=auto` beyond 10 000 iterations), into the Muon
group, which orthogonalises 4-D tensors as conv filters. The wrapper moves the gates into the group of the BatchNorm
weights (no weight decay, never Muon), as a per-channel scale is treated in every other YOLO layer.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

import torch

CSV_NAME = "gates.csv"
FIELDS = ("epoch", "layer", "block", "mean_abs_gamma", "max_abs_gamma")
SHUT = 0.05  # mean |gamma| below this: the block's branch contributes little
_LAST = "_hsfpn_gates_epoch"  # trainer attribute: the last epoch written


def gate_values(model: Any) -> list[dict[str, Any]]:
    """Return one row per gated block of an Ultralytics model (its YAML layers): layer, block, mean and max |gamma|.

    Args:
        model (nn.Module): Ultralytics model (DetectionModel, ...) or a module wrapping one (DDP, YOLO's `.model`).
    """
    model = getattr(model, "module", model)  # DDP
    rows = []
    for i, layer in enumerate(getattr(model, "model", [])):
        scale = getattr(layer, "scale", None)
        gamma = getattr(scale, "gamma", None)
        if gamma is not None:
            g = gamma.detach().float().abs().flatten()
            rows.append(
                {
                    "layer": i,
                    "block": type(layer).__name__,
                    "mean_abs_gamma": float(g.mean()),
                    "max_abs_gamma": float(g.max()),
                }
            )
    return rows


def summary_line(rows: list[dict[str, Any]], epochs: int) -> str:
    """Return the end-of-training line: every gated block's mean |gamma| and whether the gates opened."""
    values = ", ".join(f"{r['block']} (layer {r['layer']}) {r['mean_abs_gamma']:.2g}" for r in rows)
    shut = sum(r["mean_abs_gamma"] < SHUT for r in rows)
    verdict = (
        f"{shut} of {len(rows)} still below {SHUT}: those blocks barely change the model yet" if shut else "all opened"
    )
    return f"HS-FPN gates after {epochs} epochs, mean |gamma|: {values}; {verdict} ({CSV_NAME} has every epoch)."


def _trained_model(trainer) -> Any:
    """Return the model whose weights the checkpoint saves: the EMA when there is one."""
    ema = getattr(trainer, "ema", None)
    return getattr(ema, "ema", None) or trainer.model


def on_fit_epoch_end(trainer) -> None:
    """Append this epoch's gate values to `gates.csv` in the run folder (main process only)."""
    from ultralytics.utils import RANK

    epoch = trainer.epoch + 1
    # Ultralytics' final validation calls this once more at the next epoch number, after the last update
    if RANK not in {-1, 0} or epoch <= getattr(trainer, _LAST, 0) or epoch > trainer.epochs:
        return
    rows = gate_values(_trained_model(trainer))
    if not rows:
        return
    path = Path(trainer.save_dir) / CSV_NAME
    new = not path.exists() or not hasattr(trainer, _LAST)
    with open(path, "w" if new else "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerows({"epoch": epoch, **r} for r in rows)
    setattr(trainer, _LAST, epoch)


def on_train_end(trainer) -> None:
    """Print one line about how far the gates opened (main process only)."""
    from ultralytics.utils import LOGGER, RANK

    rows = gate_values(_trained_model(trainer)) if RANK in {-1, 0} else []
    if rows:
        LOGGER.info(summary_line(rows, getattr(trainer, _LAST, trainer.epoch)))


CALLBACKS = {"on_fit_epoch_end": on_fit_epoch_end, "on_train_end": on_train_end}


def gate_parameters(model: Any) -> list[torch.nn.Parameter]:
    """Return the `gamma` parameters of every gated block of `model` (any module holding HFP/SDP layers)."""
    from .nn import LayerScale

    return [m.gamma for m in model.modules() if isinstance(m, LayerScale)]


def move_gates_to_norm_group(optimizer: torch.optim.Optimizer, model: Any) -> int:
    """Move the gates of `model` from whatever group holds them into the group of the BatchNorm weights; return how
    many moved. Runs on a new optimizer (no state yet), so only group membership changes.

    Args:
        optimizer (torch.optim.Optimizer): Optimizer built by Ultralytics' `build_optimizer`.
        model (nn.Module): The model it optimises.
    """
    gates = {id(p) for p in gate_parameters(model)}
    norm = next((m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)), None)
    target = next((g for g in optimizer.param_groups if norm is not None and any(p is norm for p in g["params"])), None)
    if not gates or target is None:
        return 0
    moved = []
    for group in optimizer.param_groups:
        if group is not target:
            moved += [p for p in group["params"] if id(p) in gates]
            group["params"] = [p for p in group["params"] if id(p) not in gates]
    target["params"] = list(target["params"]) + moved
    return len(moved)


def wrap_build_optimizer(stock):
    """Return a `BaseTrainer.build_optimizer` that hands the gates to the BatchNorm weights' group.

    Args:
        stock (Callable): Ultralytics' own `BaseTrainer.build_optimizer`.
    """

    @functools.wraps(stock)
    def build_optimizer(self, model, *args, **kwargs):
        optimizer = stock(self, model, *args, **kwargs)
        moved = move_gates_to_norm_group(optimizer, model)
        if moved:
            from ultralytics.utils import LOGGER

            LOGGER.info(f"hsfpn-yolo: {moved} block gates trained without weight decay (BatchNorm weights' group)")
        return optimizer

    return build_optimizer


def patch_trainer(trainer) -> None:
    """Wrap `BaseTrainer.build_optimizer` of the loaded `ultralytics.engine.trainer` (idempotent).

    Args:
        trainer (module): `ultralytics.engine.trainer`, fully executed.
    """
    from ._autoload import wrap_once

    wrap_once(trainer.BaseTrainer, "build_optimizer", wrap_build_optimizer)


def patch_callbacks(base) -> None:
    """Add the gate callbacks to Ultralytics' default callbacks (idempotent; imports no Ultralytics module).

    Args:
        base (module): `ultralytics.utils.callbacks.base`, fully executed.
    """
    for event, fn in CALLBACKS.items():
        if fn not in base.default_callbacks[event]:
            base.default_callbacks[event].append(fn)
