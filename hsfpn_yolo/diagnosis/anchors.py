"""Which anchor points a box can be assigned to, asked of the installed Ultralytics code itself.

A model's strides come from building it (`DetectionModel(...).stride`); its anchor points are those of
`ultralytics.utils.tal.make_anchors` at the training size, in pixels as the loss scales them; a box's candidates are
the anchors that `TaskAlignedAssigner.select_candidates_in_gts` (`RotatedTaskAlignedAssigner` for oriented boxes)
returns for it, so the counts follow the installed release. 8.4 releases differ in how that function treats small
boxes: recent ones widen a side below a stride-based limit about the box centre before the in-box test (small-target
enlargement), 8.4.0 widens sides below the finest stride to the second stride, and its rotated assigner widens none.
The function only enlarges boxes its `mask_gt` marks as real, so a zero mask gives the plain in-box test; `enlargement`
measures what the installed one does with a probe instead of reading version numbers.

Boxes are processed in chunks with the anchors near them only: the test is per (box, anchor) pair, so a chunk needs
just the anchors inside its boxes' extent widened by the enlargement, and memory stays bounded at any anchor count.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import re

import numpy as np
import torch

CHUNK = 512  # boxes per call at most: spatially close boxes, so a chunk needs few anchors
PAIRS = 4_000_000  # (box, anchor) pairs per call at most: bounds memory for large boxes
PROBE_SIDES = np.arange(0.5, 64.5, 0.5)  # square boxes the enlargement probe measures, px
PROBE_STEP = 0.125  # spacing of the probe's anchor points, px


def closest_model(name: str) -> str | None:
    """Return the model name closest to NAME among the packaged and Ultralytics' model YAMLs, with NAME's scale letter
    (yolov8x-p3 -> yolov8x-p2), or None when nothing is close."""
    from hsfpn_yolo.lookup import packaged_models, stock_models, unscaled

    known = sorted({n.removesuffix(".yaml") for n in [*packaged_models(), *stock_models()]})
    close = difflib.get_close_matches(unscaled(name), known, n=1, cutoff=0.6)
    if not close:
        return None
    letter = re.sub(r"^\D*\d+([nslmx])?.*$", r"\1", name) if unscaled(name) != name else ""
    return re.sub(r"^(\D*\d+)", rf"\g<1>{letter}", close[0], count=1)


def check_model(name: str) -> str:
    """Return the YAML that builds model NAME, or raise FileNotFoundError naming the closest known model.

    Args:
        name (str): A model name ('yolov8n', 'yolov8n-p2', 'yolov8s-finepath') or a model YAML path.
    """
    from pathlib import Path

    from hsfpn_yolo.bench.common import model_yaml
    from hsfpn_yolo.lookup import packaged_yaml, stock_models, unscaled

    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return name
    stem = Path(name).name.removesuffix(".yaml").removesuffix(".yml")
    if packaged_yaml(stem) or f"{unscaled(stem)}.yaml" in stock_models() or f"{stem}.yaml" in stock_models():
        return model_yaml(stem)
    close = closest_model(stem)
    hint = f"; did you mean '{close}'?" if close else ""
    raise FileNotFoundError(
        f"unknown model '{name}': not a model YAML file, an hsfpn-yolo or an Ultralytics model{hint}"
    )


@contextlib.contextmanager
def one_thread():
    """Run tensor work on one thread: it is too small to share, and on a busy CPU idle threads spin at every op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.cache
def model_strides(name: str) -> tuple[int, ...]:
    """Return the strides of model NAME's detection head, from the model Ultralytics builds (CPU, no weights).

    Args:
        name (str): A model name or model YAML path (see `check_model`).
    """
    from ultralytics.nn.modules import Detect
    from ultralytics.nn.tasks import DetectionModel

    with one_thread():  # the build runs one forward pass to measure the strides
        model = DetectionModel(check_model(name), verbose=False)
    if not isinstance(model.model[-1], Detect):
        raise ValueError(
            f"model '{name}' has no detection head ({type(model.model[-1]).__name__}); give a detect model"
        )
    return tuple(int(s) for s in model.stride.tolist())


def assigner(strides: tuple[int, ...], obb: bool = False):
    """Return the installed task-aligned assigner (rotated for oriented boxes) as the loss builds it for STRIDES."""
    from ultralytics.utils import tal

    cls = tal.RotatedTaskAlignedAssigner if obb else tal.TaskAlignedAssigner
    kwargs = {"stride": list(strides)} if "stride" in inspect.signature(cls.__init__).parameters else {}
    return cls(topk=10, num_classes=1, alpha=0.5, beta=6.0, **kwargs)


def anchor_points(strides: tuple[int, ...], imgsz: int) -> torch.Tensor:
    """Return the (A, 2) anchor centres of every level in canvas pixels, from Ultralytics' `make_anchors`."""
    from ultralytics.utils.tal import make_anchors

    feats = [torch.empty(1, 0, -(-imgsz // s), -(-imgsz // s)) for s in strides]  # sizes only: no channels
    points, stride = make_anchors(feats, torch.tensor(strides, dtype=torch.float32))
    return points * stride  # grid units to pixels, as the loss passes them to the assigner


def select(assign, points: torch.Tensor, boxes: torch.Tensor, enlarge: bool) -> torch.Tensor:
    """Return the (n, a) candidate mask of the installed `select_candidates_in_gts` for one batch of boxes.

    Args:
        assign (TaskAlignedAssigner): From `assigner`.
        points (torch.Tensor): (a, 2) anchor centres, px.
        boxes (torch.Tensor): (n, 4) x1 y1 x2 y2 or (n, 5) xc yc w h angle, px.
        enlarge (bool): Mark the boxes as real (the function may enlarge small ones) or not (plain in-box test).
    """
    gt = boxes.float()[None]
    if takes_mask(type(assign)):
        mask = torch.full((1, len(boxes), 1), float(enlarge))
        return assign.select_candidates_in_gts(points, gt, mask).bool()[0]
    return assign.select_candidates_in_gts(points, gt).bool()[0]


@functools.cache
def takes_mask(cls: type) -> bool:
    """Return whether an assigner class's `select_candidates_in_gts` takes the `mask_gt` of real boxes."""
    return "mask_gt" in inspect.signature(cls.select_candidates_in_gts).parameters


@functools.cache
def enlargement(strides: tuple[int, ...], obb: bool = False) -> dict:
    """Measure the installed small-target enlargement: square boxes of every PROBE_SIDES side on a dense row of points.

    Returns:
        (dict): `applies`; `below` and `to`: sides under `below` px are widened to `to` px (None where none is).
    """
    assign, c = assigner(strides, obb), 100.0
    xs = torch.arange(c - 48, c + 48, PROBE_STEP)
    points = torch.stack([xs, torch.full_like(xs, c)], 1)
    s = torch.tensor(PROBE_SIDES, dtype=torch.float32)[:, None]
    boxes = torch.cat([c - s / 2, c - s / 2, c + s / 2, c + s / 2], 1)
    if obb:
        boxes = torch.cat([torch.full_like(s, c), torch.full_like(s, c), s, s, torch.zeros_like(s)], 1)
    width = [np.round(select(assign, points, boxes, e).sum(1).numpy() * PROBE_STEP * 2) / 2 for e in (False, True)]
    if width[0][-1] != width[1][-1]:  # a box larger than any enlargement must not change
        raise RuntimeError("this Ultralytics release's select_candidates_in_gts cannot be asked without enlargement")
    grown = np.flatnonzero(width[1] > width[0])
    if not len(grown):
        return {"applies": False, "below": None, "to": None}
    return {"applies": True, "below": float(PROBE_SIDES[grown[-1] + 1]), "to": float(width[1][grown[0]])}


def _morton(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the Z-order code of 16-bit integer coordinates: nearby points get nearby codes."""

    def spread(v):
        v = (v | (v << 8)) & 0x00FF00FF
        v = (v | (v << 4)) & 0x0F0F0F0F
        v = (v | (v << 2)) & 0x33333333
        return (v | (v << 1)) & 0x55555555

    return spread(x) | (spread(y) << 1)


def extent(boxes: np.ndarray) -> np.ndarray:
    """Return the axis-aligned (N, 4) x1 y1 x2 y2 extent of canvas boxes (x1 y1 x2 y2, or xc yc w h angle)."""
    if boxes.shape[1] == 4:
        return boxes
    c, s = np.abs(np.cos(boxes[:, 4])), np.abs(np.sin(boxes[:, 4]))
    half = np.c_[boxes[:, 2] * c + boxes[:, 3] * s, boxes[:, 2] * s + boxes[:, 3] * c] / 2
    return np.c_[boxes[:, :2] - half, boxes[:, :2] + half]


def spatial_order(hull: np.ndarray) -> np.ndarray:
    """Return an order of boxes that keeps boxes of one size octave and one neighbourhood together."""
    side = np.maximum(hull[:, 2] - hull[:, 0], hull[:, 3] - hull[:, 1])
    octave = np.clip(np.floor(np.log2(np.maximum(side, 1))), 0, 15).astype(np.int64)
    centre = np.clip((hull[:, :2] + hull[:, 2:]) / 2, 0, 65535).astype(np.int64)
    return np.lexsort((_morton(centre[:, 0], centre[:, 1]), octave))


def candidate_counts(boxes: np.ndarray, strides: tuple[int, ...], imgsz: int, enlarge: bool = True) -> np.ndarray:
    """Return the number of candidate anchor points of each box under the installed assigner.

    Args:
        boxes (np.ndarray): (N, 4) x1 y1 x2 y2 or (N, 5) xc yc w h angle (oriented), canvas pixels.
        strides (tuple[int, ...]): The model's strides.
        imgsz (int): Training image size (the square canvas side).
        enlarge (bool): As training selects (small-target enlargement where the release has it), or the plain
            in-box test.
    """
    obb = boxes.shape[1] == 5
    assign, points = assigner(strides, obb), anchor_points(strides, imgsz)
    grow = enlargement(strides, obb)["to"] if enlarge else None
    pad = (grow or 0.0) / 2 + 1.0  # an enlarged box reaches at most grow / 2 past its centre, so past its hull
    hull, order = extent(boxes), spatial_order(extent(boxes))
    px, py = points[:, 0].numpy(), points[:, 1].numpy()
    counts, start, n = np.zeros(len(boxes), np.int64), 0, CHUNK
    with one_thread():
        while start < len(order):
            idx = order[start : start + n]
            lo, hi = hull[idx, :2].min(0) - pad, hull[idx, 2:].max(0) + pad
            near = np.flatnonzero((px > lo[0]) & (px < hi[0]) & (py > lo[1]) & (py < hi[1]))
            if len(idx) * len(near) > PAIRS and len(idx) > 1:
                n = max(1, len(idx) // 2)  # large boxes: fewer per call, so memory stays bounded
                continue
            if len(near):
                counts[idx] = select(assign, points[near], torch.from_numpy(boxes[idx]), enlarge).sum(1).numpy()
            start, n = start + len(idx), CHUNK
    return counts
