"""Add tiny-object AP to Ultralytics detection and OBB validation through its callbacks, without editing Ultralytics.

`on_val_start` gives each detection or OBB validator instance-level wrappers around `init_metrics` (decide whether to
run), `update_metrics` (keep the batch's ground truth and predictions in original pixels) and `gather_stats` (DDP);
then `on_val_end` evaluates once (`tiny_ap`, or `tiny_ap_obb` with rotated IoU and area for OBB), prints one line,
saves the report and sets `validator.metrics.tiny` (and `.tiny_counts`).
Validators get their callbacks from `default_callbacks` (via the YOLO object, trainer or validator), so `yolo val`,
`model.val()` and the validations of `model.train()` are all covered.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .obb import size_counts_obb, tiny_ap_obb
from .report import format_line, save_report
from .tiny import MAX_DETS, dense_warning, frames_over, size_counts, tiny_ap

ENV_VAR = "HSFPN_TINY_METRICS"  # "1": on for every detection and OBB model, "0": off even for HS-FPN models
_OFF = {"0", "false", "off", "no"}
_STATE = "_hsfpn_tiny"  # validator attribute: TinyCollector while collecting, else None
_FORCED = "_hsfpn_tiny_forced"  # validator attribute set by enable_tiny_metrics' callback
OBB = "obb"
TASKS = ("detect", OBB)  # segment and pose validators (also DetectionValidator subclasses) are left alone


class TinyCollector:
    """Per-image ground truth [cls, *box] and predictions [cls, conf, *box] in original pixels; the box is xyxy, or
    xywhr (angle in radians) for OBB."""

    def __init__(self, obb: bool = False) -> None:
        """Start with no images; OBB boxes have 5 values, axis-aligned ones 4."""
        self.obb = obb
        self.box = 5 if obb else 4
        self.gt: list[np.ndarray] = []
        self.pred: list[np.ndarray] = []

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add one image's (N, 1 + box) ground truth and (M, 2 + box) predictions."""
        self.gt.append(gt.reshape(-1, 1 + self.box).astype(np.float64))
        self.pred.append(pred.reshape(-1, 2 + self.box).astype(np.float64))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Return ground truth (N, 2 + box) and predictions (M, 3 + box) with the image index prepended, and the
        image count."""
        n = len(self.gt)
        gt = np.concatenate([np.zeros((0, 1 + self.box)), *self.gt])
        pred = np.concatenate([np.zeros((0, 2 + self.box)), *self.pred])
        gt_ids = np.repeat(np.arange(n), [len(x) for x in self.gt])
        pred_ids = np.repeat(np.arange(n), [len(x) for x in self.pred])
        return np.c_[gt_ids, gt], np.c_[pred_ids, pred], n


def is_hsfpn_model(model: Any) -> bool:
    """Return whether a model is an hsfpn-yolo one (`hsfpn_yolo.transfer.is_hsfpn`), AutoBackend-wrapped ones too."""
    from hsfpn_yolo.transfer import is_hsfpn

    # AutoBackend keeps the module on its backend (later 8.4 releases) or as its own `model` (earlier ones)
    candidates = (getattr(getattr(model, "backend", None), "model", None), getattr(model, "model", None), model)
    return any(m is not None and is_hsfpn(m) for m in candidates)


def _wanted(validator, model: Any) -> bool:
    """Return whether this validation reports tiny-object AP: the environment switch wins, else opt-in or HS-FPN."""
    env = os.getenv(ENV_VAR, "").strip().lower()
    if env:
        return env not in _OFF
    return getattr(validator, _FORCED, False) or is_hsfpn_model(model)


def _collect(validator, preds: list[dict], batch: dict) -> None:
    """Keep each image's ground truth and predictions mapped to original pixels, as Ultralytics' `pred_to_json` does.

    OBB (8.4.0 and 8.4.190 alike): `_prepare_batch` gives xywhr boxes in network-input pixels (a copy of the batch's),
    and `scale_preds` maps predictions back with `scale_boxes(..., xywh=True)`; the ground truth is mapped the same way.
    """
    from ultralytics.utils import ops

    collector = getattr(validator, _STATE)
    for si, pred in enumerate(preds):
        pbatch = validator._prepare_batch(si, batch)
        gt = ops.scale_boxes(
            pbatch["imgsz"], pbatch["bboxes"].clone(), pbatch["ori_shape"], pbatch["ratio_pad"], xywh=collector.obb
        )
        boxes = validator.scale_preds(pred, pbatch)["bboxes"]
        cls = pred["cls"] * 0 if validator.args.single_cls else pred["cls"]
        collector.add(
            np.c_[pbatch["cls"].cpu().numpy(), gt.cpu().numpy()],
            np.c_[cls.cpu().numpy(), pred["conf"].cpu().numpy(), boxes.cpu().numpy()],
        )


def _gather(validator) -> None:
    """Merge every DDP rank's images into rank 0's collector (called on all ranks, right after Ultralytics' gather)."""
    import torch.distributed as dist
    from ultralytics.utils import RANK

    collector = getattr(validator, _STATE)
    if RANK == -1 or not (dist.is_available() and dist.is_initialized()):
        return
    parts = [None] * dist.get_world_size() if RANK == 0 else None
    dist.gather_object((collector.gt, collector.pred), parts, dst=0)
    if RANK == 0:
        collector.gt = [x for gt, _ in parts for x in gt]
        collector.pred = [x for _, pred in parts for x in pred]


def _wrap(validator, name: str, after) -> None:
    """Replace `validator.<name>` on the instance by the original followed by `after(validator, *args)`."""
    original = getattr(validator, name)

    def wrapped(*args, **kwargs):
        out = original(*args, **kwargs)
        after(validator, *args, **kwargs)
        return out

    setattr(validator, name, wrapped)


def _start(validator, model: Any) -> None:
    """Begin (or skip) collection for this validation; runs after the validator's own `init_metrics`."""
    wanted = _wanted(validator, model)
    setattr(validator, _STATE, TinyCollector(obb=validator.args.task == OBB) if wanted else None)


def _on_update(validator, preds: list[dict], batch: dict) -> None:
    """Collect a batch when this validation reports tiny-object AP."""
    if getattr(validator, _STATE, None) is not None:
        _collect(validator, preds, batch)


def _on_gather(validator) -> None:
    """Gather across DDP ranks when this validation reports tiny-object AP."""
    if getattr(validator, _STATE, None) is not None:
        _gather(validator)


def on_val_start(validator) -> None:
    """Hook a detection or OBB validator once (instance-level wrappers; other validators and tasks are left alone)."""
    from ultralytics.models.yolo.detect import DetectionValidator

    if getattr(validator, "_hsfpn_tiny_hooked", False) or not isinstance(validator, DetectionValidator):
        return
    if validator.args.task not in TASKS:  # segment/pose subclasses: masks and keypoints are not boxes
        return
    validator._hsfpn_tiny_hooked = True
    setattr(validator, _STATE, None)
    _wrap(validator, "init_metrics", _start)
    _wrap(validator, "update_metrics", _on_update)
    _wrap(validator, "gather_stats", _on_gather)


def on_val_end(validator) -> None:
    """Evaluate once, print the summary line, save the report and expose the results as `validator.metrics.tiny` (and
    the ground-truth counts per size as `validator.metrics.tiny_counts`).
    """
    from ultralytics.utils import LOGGER

    collector = getattr(validator, _STATE, None)
    if collector is None:
        return
    setattr(validator, _STATE, None)  # free the predictions; the next validation starts afresh
    try:
        gt, pred, images = collector.arrays()
        evaluate, count = (tiny_ap_obb, size_counts_obb) if collector.obb else (tiny_ap, size_counts)
        results = evaluate(gt, pred, images, max(MAX_DETS, int(validator.args.max_det or 0)))
        counts = count(gt)
        validator.metrics.tiny, validator.metrics.tiny_counts = results, counts
        LOGGER.info(format_line(results, counts))
        max_det = int(validator.args.max_det or 0)
        if max_det and (over := frames_over(gt, images, max_det)):  # NMS kept only max_det per image before we saw them
            LOGGER.warning(dense_warning(over, images, max_det))
        save_report(validator.save_dir, results, counts, images, "train" if validator.training else "val")
    except Exception as e:  # a reporting extra must never fail the validation itself
        LOGGER.warning(f"tiny-object AP unavailable: {e}")


def _force_on(validator) -> None:
    """Opt this validation in (added by `enable_tiny_metrics`)."""
    setattr(validator, _FORCED, True)


CALLBACKS = {"on_val_start": on_val_start, "on_val_end": on_val_end}


def _add(callbacks: dict, event: str, fn) -> None:
    """Append a callback unless it is already there."""
    if fn not in callbacks[event]:
        callbacks[event].append(fn)


def patch_callbacks(base) -> None:
    """Add the tiny-object AP callbacks to Ultralytics' default callbacks (idempotent; imports no Ultralytics module).

    Args:
        base (module): `ultralytics.utils.callbacks.base`, fully executed.
    """
    for event, fn in CALLBACKS.items():
        _add(base.default_callbacks, event, fn)


def enable_tiny_metrics(model):
    """Report tiny-object AP for every validation run through this object, HS-FPN model or not.

    Args:
        model (YOLO | BaseTrainer | BaseValidator): Object whose `callbacks` drive validation; for a YOLO object this
            covers `val()`, `train()` (each epoch and the final validation). `HSFPN_TINY_METRICS=0` still switches off.

    Returns:
        (YOLO | BaseTrainer | BaseValidator): The same object.
    """
    for event, fn in (*CALLBACKS.items(), ("on_val_start", _force_on)):
        _add(model.callbacks, event, fn)
    return model
