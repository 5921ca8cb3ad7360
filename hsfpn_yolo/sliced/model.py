"""Any Ultralytics detector as a SAHI detection model, and one frame's sliced prediction as Ultralytics results.

SAHI slices the frame, runs the model on each slice, shifts the boxes back to frame coordinates and merges the
duplicates of the overlaps; nothing of that is redone here. The merged boxes come back as an Ultralytics `Results`.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

POSTPROCESS = ("GREEDYNMM", "NMM", "NMS", "LSNMS")  # SAHI's merge of the slices' boxes; GREEDYNMM is its default
MATCH_METRICS = ("IOS", "IOU")


def _sahi_device(device: str | None) -> str | None:
    """Return an Ultralytics device string ('0', '0,1', 'cpu') in torch's spelling ('cuda:0'), which SAHI expects."""
    if device is None or str(device).strip() == "":
        return None
    first = str(device).split(",")[0].strip()
    return f"cuda:{first}" if first.isdigit() else first


@contextmanager
def python_call():
    """Keep Ultralytics' `Model.predict` from taking the calls made inside for its own `yolo predict` command line.

    Ultralytics reads any program whose name ends in 'yolo' (our `hsfpn-yolo` too) with 'predict' among its arguments
    as its CLI: it then saves annotated images into its runs folder and returns None. Only the program name seen by
    that check (`ultralytics.engine.model.ARGV`, sys.argv) is hidden, and only while inside.
    """
    from ultralytics.engine import model as engine_model

    argv = engine_model.ARGV
    engine_model.ARGV = ["", *argv[1:]]
    try:
        yield
    finally:
        engine_model.ARGV = argv


def load_model(model: Any, conf: float = 0.25, device: str | None = None, imgsz: int | None = None):
    """Wrap an Ultralytics detector as SAHI's ultralytics detection model.

    Args:
        model (str | Path | YOLO): Checkpoint (.pt, or any format Ultralytics loads), model YAML, or YOLO object.
        conf (float): Confidence threshold of each slice's detections.
        device (str, optional): 'cpu', '0', 'cuda:0'; default: SAHI's choice (GPU when present).
        imgsz (int, optional): Inference size of each slice; default: the slice size.

    Returns:
        (sahi.models.ultralytics.UltralyticsDetectionModel): The wrapped model.
    """
    from sahi import AutoDetectionModel
    from ultralytics import YOLO

    yolo = model if isinstance(model, YOLO) else YOLO(str(model))
    if yolo.task != "detect":
        raise ValueError(f"sliced prediction needs a detection model, got a {yolo.task!r} model from {model}")
    return AutoDetectionModel.from_pretrained(
        model_type="ultralytics", model=yolo, confidence_threshold=conf, device=_sahi_device(device), image_size=imgsz
    )


def predict_frame(
    detector,
    image: str | Path | np.ndarray,
    slice: int = 640,
    overlap: float = 0.2,
    full_frame: bool = False,
    postprocess: str = "GREEDYNMM",
    match_metric: str = "IOS",
    match_threshold: float = 0.5,
    batch: int = 1,
):
    """Run SAHI's sliced prediction on one frame and return its merged boxes as an Ultralytics `Results`.

    Args:
        detector: Model from `load_model`.
        image (str | Path | np.ndarray): Frame file, or BGR array (as cv2 reads it).
        slice (int): Slice side in pixels, a multiple of 32.
        overlap (float): Fraction of the slice side shared by neighbouring slices, in [0, 1).
        full_frame (bool): Also predict on the whole frame resized, and merge those boxes in (large objects).
        postprocess (str): SAHI merge of overlapping boxes: one of POSTPROCESS. SAHI itself switches to NMS/IOU when
            the confidence threshold is below 0.1, where merging would grow boxes from weak detections.
        match_metric (str): 'IOS' (intersection over the smaller box) or 'IOU'.
        match_threshold (float): Overlap above which two boxes are merged or suppressed.
        batch (int): Slices per model call.

    Returns:
        (ultralytics.engine.results.Results): Boxes [x1, y1, x2, y2, conf, cls] in frame pixels, with the frame.
    """
    import cv2
    import torch
    from sahi.predict import get_sliced_prediction
    from ultralytics.engine.results import Results

    from hsfpn_yolo.data.tiles import check_slicing

    check_slicing(slice, overlap)
    path = "" if isinstance(image, np.ndarray) else str(image)
    frame = image if isinstance(image, np.ndarray) else cv2.imread(path, cv2.IMREAD_COLOR)
    if frame is None:
        raise ValueError(f"{path}: unreadable image")
    with python_call():
        result = get_sliced_prediction(
            np.ascontiguousarray(frame[..., ::-1]),  # SAHI works in RGB
            detector,
            slice_height=slice,
            slice_width=slice,
            overlap_height_ratio=overlap,
            overlap_width_ratio=overlap,
            perform_standard_pred=full_frame,
            postprocess_type=postprocess,
            postprocess_match_metric=match_metric,
            postprocess_match_threshold=match_threshold,
            verbose=0,
            batch_size=batch,
        )
    rows = [(*p.bbox.to_xyxy(), p.score.value, p.category.id) for p in result.object_prediction_list]
    boxes = torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)
    return Results(frame, path, detector.model.names, boxes=boxes)
