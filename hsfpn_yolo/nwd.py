"""Gaussian-distance (NWD) label assignment and box loss for tiny objects, switched on by a model YAML key.

IoU punishes tiny boxes hard: shifting a 6-pixel box by one pixel costs about a third of its IoU, so tiny ground truths
get few and unstable positives. The Normalized Gaussian Wasserstein Distance (Wang et al., 2021, arXiv:2110.13389)
models a box as a 2-D Gaussian (mean its centre, standard deviations half its sides) and scores two boxes by

    NWD = exp(-W2 / C),  W2² = |centre1 - centre2|² + ((w1 - w2)² + (h1 - h2)²) / 4  (pixels),

which changes smoothly with a shift of a few pixels at any box size. C (pixels) sets how fast it falls; the paper ties
it to the dataset's average absolute object size.

A detect model whose YAML has the top-level key

    nwd:
      assign: false    # the assigner's alignment metric (and so the soft class targets): false: CIoU, as stock;
                       # true: NWD; max: the larger of NWD and CIoU per pair
      loss: 0.5        # w: box loss = (1 - w) * (1 - CIoU) + w * (1 - NWD); DFL unchanged
      constant: auto   # C in pixels; auto: the training set's mean sqrt(w * h) at the training image size

(or `nwd: true` for these defaults) trains with them. The defaults are the configuration that lost in no AP metric of
the benchmark (docs/benchmarks.md): `assign: true` leaves far-off early predictions without targets (NWD falls
exponentially with the distance) and stalled training from scratch; `max` cost AP_s. `init_criterion` is wrapped so that
the stock criterion gets the NWD assigner metric and box loss, and nothing else changes (candidate selection, STAL, DFL,
gains). The key lives in `model.yaml`, which every checkpoint carries, so resume, DDP workers and `tune` train alike;
`auto` is resolved to a number when training starts and written there. The head and its outputs are untouched: reload,
val, predict and export work as for any model. Without the key the stock criterion is returned as it is.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import nn

KEY = "nwd"
DEFAULTS = {"assign": False, "loss": 0.5, "constant": "auto"}
ASSIGN = (True, False, "max")  # alignment metric: NWD, CIoU (stock), or the larger of the two
EPS = 1e-7  # inside the square root: finite gradient for identical boxes


def nwd(box1: torch.Tensor, box2: torch.Tensor, constant: float) -> torch.Tensor:
    """Return the Normalized Gaussian Wasserstein Distance of xyxy boxes (broadcast over leading dims), in (0, 1].

    Args:
        box1 (torch.Tensor): Boxes (..., 4), xyxy.
        box2 (torch.Tensor): Boxes (..., 4), xyxy, in the same units.
        constant (float): C, in the boxes' units.
    """
    box1, box2 = box1.float(), box2.float()  # fp16 would lose the square root's small values under AMP
    centre = (box1[..., :2] + box1[..., 2:] - box2[..., :2] - box2[..., 2:]) / 2
    sides = (box1[..., 2:] - box1[..., :2] - box2[..., 2:] + box2[..., :2]) / 2
    w2 = centre.square().sum(-1) + sides.square().sum(-1)
    return torch.exp(-torch.sqrt(w2 + EPS) / constant)


def options(yaml: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the checked NWD options of a model YAML dict (defaults filled in), or None without the key.

    Args:
        yaml (dict, optional): Model YAML as a dict.
    """
    value = (yaml or {}).get(KEY)
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"model YAML key '{KEY}' must be true or a mapping of {list(DEFAULTS)}, not {value!r}.")
    unknown = set(value) - set(DEFAULTS)
    if unknown:
        raise ValueError(
            f"model YAML key '{KEY}': unknown option(s) {sorted(unknown)}; the options are {list(DEFAULTS)}."
        )
    out = {**DEFAULTS, **value}
    if out["assign"] not in ASSIGN:
        raise ValueError(f"model YAML key '{KEY}': assign must be true, false or max, not {out['assign']!r}.")
    if isinstance(out["loss"], bool) or not isinstance(out["loss"], (int, float)) or not 0 <= out["loss"] <= 1:
        raise ValueError(f"model YAML key '{KEY}': loss is the NWD weight w in [0, 1], not {out['loss']!r}.")
    c = out["constant"]
    if c != "auto" and (isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0):
        raise ValueError(f"model YAML key '{KEY}': constant is C in pixels (> 0) or 'auto', not {c!r}.")
    return out


def enable(model, **overrides) -> Any:
    """Switch NWD assignment and loss on for a YOLO object or model built from any detect YAML (Python API).

    A YOLO object built from a YAML file trains a model its trainer builds anew from that file, so the options also
    travel by a callback that gives them to the trained model before the first step.

    Args:
        model (YOLO | DetectionModel): The model to train; its YAML dict gets the key (copied, not edited in place).
        **overrides: Options of `DEFAULTS` (assign, loss, constant).

    Returns:
        (YOLO | DetectionModel): The same object.
    """
    net = model.model if hasattr(getattr(model, "model", None), "yaml") else model  # YOLO object or the model
    opts = {**(options(net.yaml) or DEFAULTS), **overrides}
    options({KEY: opts})  # refuse bad values now, not at the first training step
    net.yaml, net.criterion = {**net.yaml, KEY: opts}, None
    if hasattr(model, "add_callback"):
        callbacks = model.callbacks["on_pretrain_routine_end"]
        callbacks[:] = [c for c in callbacks if getattr(c, "func", None) is not carry_options]  # the latest call wins
        model.add_callback("on_pretrain_routine_end", functools.partial(carry_options, opts))
    return model


def _trained_models(trainer) -> list:
    """Return the model a trainer trains and its EMA copy (which validation uses and the checkpoint saves)."""
    from ultralytics.utils.torch_utils import unwrap_model

    ema = getattr(getattr(trainer, "ema", None), "ema", None)
    return [m for m in (unwrap_model(trainer.model), ema) if m is not None]


def carry_options(opts: dict[str, Any], trainer) -> None:
    """Callback of `enable`: give the trained model and its EMA the NWD options, then resolve `constant: auto`."""
    _set_options(_trained_models(trainer), opts)
    resolve_constant(trainer)


def _set_options(models: list, opts: dict[str, Any]) -> None:
    """Give each model a copy of its YAML dict with these NWD options; its criterion is rebuilt with them."""
    for m in models:
        m.yaml, m.criterion = {**m.yaml, KEY: opts}, None


class NWDBoxLoss(nn.Module):
    """Ultralytics' BboxLoss with (1 - NWD) blended into its IoU term; its DFL/L1 term is kept as it is.

    Args:
        stock (nn.Module): The criterion's own BboxLoss.
        weight (float): w in (1 - w) * (1 - CIoU) + w * (1 - NWD).
        constant (float): C in pixels.
    """

    def __init__(self, stock: nn.Module, weight: float, constant: float):
        super().__init__()
        self.stock, self.weight, self.constant = stock, weight, constant

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the blended box loss and the stock DFL/L1 loss, from BboxLoss's arguments (pred_dist, pred_bboxes,
        anchor_points, target_bboxes, target_scores, target_scores_sum, fg_mask, imgsz, stride; boxes divided by
        their stride)."""
        loss_iou, loss_dfl = self.stock(*args)
        _, pred_bboxes, _, target_bboxes, target_scores, target_scores_sum, fg_mask, _, stride = args
        # Every anchor, masked: no `nonzero`, so no host sync (element-wise work, small next to the network)
        weight = target_scores.sum(-1) * fg_mask
        scale = stride.view(1, -1, 1)  # back to pixels, where C is defined
        similarity = nwd(pred_bboxes * scale, target_bboxes * scale, self.constant)
        loss_nwd = ((1.0 - similarity) * weight).sum() / target_scores_sum
        return (1.0 - self.weight) * loss_iou + self.weight * loss_nwd.to(loss_iou.dtype), loss_dfl


@functools.cache
def nwd_assigner(stock_cls: type) -> type:
    """Return the subclass of an Ultralytics assigner class whose alignment metric is NWD instead of CIoU."""

    class NWDAssigner(stock_cls):
        """TaskAlignedAssigner scoring box alignment by NWD (pixel boxes) instead of CIoU, or by the larger of both."""

        nwd_constant, nwd_max = 1.0, False

        def iou_calculation(self, gt_bboxes, pd_bboxes):
            """Return the NWD of each (ground truth, prediction) pair (or its maximum with the stock CIoU)."""
            similarity = nwd(gt_bboxes, pd_bboxes, self.nwd_constant).to(pd_bboxes.dtype)
            # NWD falls exponentially with the distance, CIoU only polynomially: far-off early predictions keep a target
            return (
                torch.maximum(similarity, super().iou_calculation(gt_bboxes, pd_bboxes)) if self.nwd_max else similarity
            )

    NWDAssigner.__qualname__ = NWDAssigner.__name__ = f"NWD{stock_cls.__name__}"
    return NWDAssigner


def _detection_losses(criterion) -> list:
    """Return the per-head detection losses of a criterion: itself, or an end-to-end loss's one-to-many and one-to-one."""
    return [criterion.one2many, criterion.one2one] if hasattr(criterion, "one2one") else [criterion]


def apply(criterion, opts: dict[str, Any], model_name: str) -> None:
    """Give a detect criterion the NWD assigner metric and box loss (in place).

    Args:
        criterion: `v8DetectionLoss`, or `E2ELoss` holding two.
        opts (dict): Checked options with a numeric constant.
        model_name (str): For the error message.
    """
    losses = _detection_losses(criterion)
    for loss in losses:
        assigner, box = getattr(loss, "assigner", None), getattr(loss, "bbox_loss", None)
        if type(assigner).__name__ != "TaskAlignedAssigner" or type(box).__name__ != "BboxLoss":
            raise ValueError(
                f"model YAML key '{KEY}' works with detect models (axis-aligned boxes); {model_name} trains with "
                f"{type(loss).__name__} and {type(assigner).__name__}: remove the key."
            )
    for loss in losses:
        if opts["assign"]:
            loss.assigner.__class__ = nwd_assigner(type(loss.assigner))
            loss.assigner.nwd_constant = float(opts["constant"])
            loss.assigner.nwd_max = opts["assign"] == "max"
        if opts["loss"] > 0:
            loss.bbox_loss = NWDBoxLoss(loss.bbox_loss, float(opts["loss"]), float(opts["constant"]))


def wrap_init_criterion(stock):
    """Return an `init_criterion` that applies the model YAML's NWD options to the stock criterion (none: untouched).

    Args:
        stock (Callable): A model class's own `init_criterion`.
    """

    @functools.wraps(stock)
    def init_criterion(self):
        criterion = stock(self)
        opts = options(getattr(self, "yaml", None))
        if opts is None:
            return criterion
        if opts["constant"] == "auto":
            raise ValueError(
                f"model YAML key '{KEY}': constant 'auto' is measured from the training set when training starts; "
                "outside training give C in pixels (e.g. constant: 12.8)."
            )
        apply(criterion, opts, type(self).__name__)
        return criterion

    return init_criterion


def mean_box_size(dataset, imgsz: int) -> float:
    """Return the mean sqrt(w * h) in pixels of every box of an Ultralytics dataset, each image letterboxed to `imgsz`.

    Args:
        dataset: YOLODataset (its `labels`: normalised xywh `bboxes` and the image `shape` (h, w)).
        imgsz (int): Training image size (the long side).
    """
    total, count = 0.0, 0
    for label in dataset.labels:
        boxes = label["bboxes"]
        if len(boxes):
            h, w = label["shape"]
            scale = imgsz / max(h, w)
            total += float(np.sqrt((boxes[:, 2] * w * scale) * (boxes[:, 3] * h * scale)).sum())
            count += len(boxes)
    if not count:
        raise ValueError(f"model YAML key '{KEY}': constant 'auto' needs boxes in the training set; give C in pixels.")
    return total / count


def resolve_constant(trainer) -> None:
    """Callback: replace `constant: auto` by the training set's mean box size in the trained model's YAML and its EMA's.

    The YAML dict is replaced, not edited, so a YAML dict shared with the caller keeps its own value.
    """
    from ultralytics.utils import LOGGER

    models = _trained_models(trainer)
    opts = options(getattr(models[0], "yaml", None))
    if opts is None or opts["constant"] != "auto":
        return
    c = round(mean_box_size(trainer.train_loader.dataset, trainer.args.imgsz), 2)
    _set_options(models, {**opts, "constant": c})
    LOGGER.info(
        f"NWD: assign={opts['assign']}, loss weight {opts['loss']}, C = {c} px (mean box size of the train set)"
    )


def patch_tasks(tasks) -> None:
    """Wrap `init_criterion` of DetectionModel and of every subclass that defines its own (idempotent).

    Args:
        tasks (module): `ultralytics.nn.tasks`, fully executed.
    """
    from ._autoload import wrap_once

    for cls in vars(tasks).values():
        if isinstance(cls, type) and issubclass(cls, tasks.DetectionModel) and "init_criterion" in vars(cls):
            wrap_once(cls, "init_criterion", wrap_init_criterion)


def patch_callbacks(base) -> None:
    """Add the callback that resolves `constant: auto` to Ultralytics' default callbacks (idempotent).

    Args:
        base (module): `ultralytics.utils.callbacks.base`, fully executed.
    """
    callbacks = base.default_callbacks["on_pretrain_routine_end"]
    if resolve_constant not in callbacks:
        callbacks.append(resolve_constant)
