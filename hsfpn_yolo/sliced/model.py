"""Any Ultralytics detector as a SAHI detection model, and one frame's sliced prediction as Ultralytics results.

SAHI slices the frame, runs the model on each slice, shifts the boxes back to frame coordinates and merges the
duplicates of the overlaps; nothing of that is redone here. The merged boxes come back as an Ultralytics `Results`.
"""

from __future__ import annotations

import pickle
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

POSTPROCESS = ("GREEDYNMM", "NMM", "NMS", "LSNMS")  # SAHI's merge of the slices' boxes; GREEDYNMM is its default
MATCH_METRICS = ("IOS", "IOU")
# What torch raises reading a damaged checkpoint: EOFError for an empty file, UnpicklingError for bytes that are no
# pickle (or a truncated legacy-format file), a RuntimeError with one of TORCH_READ_ERRORS for a truncated one.
# Ultralytics 8.4.190 re-raises most of them as a TypeError from the original; 8.4.0 lets them all through.
DAMAGED = (EOFError, pickle.UnpicklingError)
TORCH_READ_ERRORS = ("PytorchStreamReader", "unexpected EOF")  # its zip reader; its legacy-format reader


class CheckpointError(ValueError):
    """A checkpoint file that exists but cannot be loaded (empty, truncated or damaged)."""


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


def run_dir(project: str | Path | None, name: str, exist_ok: bool = False, mode: str = "predict") -> Path:
    """Return the folder of a detection run as `yolo` picks it (Ultralytics' `get_save_dir`), numbered unless EXIST_OK.

    Args:
        project (str | Path, optional): Parent folder; None: 'detect' in Ultralytics' runs_dir setting. A relative
            one goes where `yolo ... project=PROJECT` puts its runs in the installed Ultralytics release.
        name (str): Run folder name.
        exist_ok (bool): Reuse an existing run folder.
        mode (str): The Ultralytics mode the run stands for ('predict' or 'val').
    """
    from types import SimpleNamespace

    from ultralytics.cfg import get_save_dir

    project = None if project is None else str(project)
    return get_save_dir(SimpleNamespace(project=project, name=name, task="detect", mode=mode, exist_ok=exist_ok))


def missing_model_message(model: str) -> str:
    """Return the error for a checkpoint that exists nowhere Ultralytics looks and is none it downloads.

    Args:
        model (str): The checkpoint as given, e.g. 'runs/detect/train/weights/best.pt'.
    """
    from ultralytics.utils import SETTINGS

    from hsfpn_yolo.lookup import packaged_yaml

    example = Path(SETTINGS["runs_dir"]) / "detect" / "train" / "weights" / "best.pt"
    message = (
        f"checkpoint '{model}' does not exist; give the path of trained weights (`yolo train` saves them as e.g. "
        f"{example}) or the name of an Ultralytics model that it downloads, e.g. yolov8n.pt"
    )
    if packaged_yaml(Path(model).stem):  # e.g. yolov8n-hsfpn.pt: the package ships model YAMLs, not weights
        message += f"; {Path(model).stem}.yaml builds the model untrained"
    return message


def check_model(model: Any) -> None:
    """Raise FileNotFoundError at once for a checkpoint that is neither on disk nor an Ultralytics download.

    Ultralytics asks GitHub for any weights file missing locally before it fails; only its own model names
    (yolov8n.pt, yolo11n, ...) can come from there, so any other missing file is reported without that detour.
    Model YAMLs (resolved by Ultralytics and the package), URLs and YOLO objects pass unchecked.

    Args:
        model (str | Path | YOLO): The MODEL argument of sliced prediction or validation.
    """
    from ultralytics.utils import SETTINGS
    from ultralytics.utils.checks import check_model_file_from_stem, check_yolov5u_filename
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    if not isinstance(model, (str, Path)) or "://" in str(model):
        return
    text = str(model).strip()
    # The name YOLO() and its download step turn the given one into: yolov8n -> yolov8n.pt, yolov5n.pt -> yolov5nu.pt
    asset = Path(check_yolov5u_filename(str(check_model_file_from_stem(text)), verbose=False))
    if Path(text).suffix in {".yaml", ".yml"} or asset.name in GITHUB_ASSETS_NAMES:
        return
    if not any(p.exists() or (Path(SETTINGS["weights_dir"]) / p).exists() for p in (Path(text), asset)):
        raise FileNotFoundError(missing_model_message(text))


def damage(error: BaseException) -> BaseException | None:
    """Return the error torch raised for a damaged checkpoint, ERROR itself or the one it was raised from; else None."""
    for e in (error, error.__cause__):
        if isinstance(e, DAMAGED) or (isinstance(e, RuntimeError) and any(t in str(e) for t in TORCH_READ_ERRORS)):
            return e
    return None


def load_yolo(model: str | Path):
    """Load a checkpoint or model YAML as an Ultralytics YOLO object.

    Args:
        model (str | Path): Checkpoint (.pt, or any format Ultralytics loads) or model YAML.

    Raises:
        FileNotFoundError: MODEL is a checkpoint that does not exist (see `check_model`).
        CheckpointError: MODEL exists but torch cannot read it.
    """
    from ultralytics import YOLO

    check_model(model)
    try:
        return YOLO(str(model))
    except (TypeError, RuntimeError, *DAMAGED) as e:
        cause = damage(e)
        if cause is None:
            raise
        detail = str(cause).split(". ")[0].rstrip(".")  # torch's zip reader goes on with advice for developers
        raise CheckpointError(
            f"{model} is not a loadable checkpoint ({type(cause).__name__}: {detail}): the file is empty, truncated "
            "or damaged; copy or save it again"
        ) from e


def load_model(model: Any, conf: float = 0.25, device: str | None = None, imgsz: int | None = None):
    """Wrap an Ultralytics detector as SAHI's ultralytics detection model.

    Args:
        model (str | Path | YOLO): Checkpoint (.pt, or any format Ultralytics loads), model YAML, or YOLO object.
        conf (float): Confidence threshold of each slice's detections.
        device (str, optional): 'cpu', '0', 'cuda:0'; default: SAHI's choice (GPU when present).
        imgsz (int, optional): Inference size of each slice; default: the slice size.

    Returns:
        (sahi.models.ultralytics.UltralyticsDetectionModel): The wrapped model.

    Raises:
        FileNotFoundError: MODEL is a checkpoint that does not exist.
        CheckpointError: MODEL exists but cannot be loaded.
    """
    from sahi import AutoDetectionModel
    from ultralytics import YOLO

    yolo = model if isinstance(model, YOLO) else load_yolo(model)
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
