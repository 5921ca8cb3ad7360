"""Tiny-object AP of sliced inference on full frames: the numbers of our `yolo val` line, from SAHI's merged boxes.

Each frame of the split is predicted slice by slice (`predict_frame`), its merged boxes capped at `max_det` by score,
and AP / AP50 / AP75 / AP_vt / AP_t / AP_s / AP_m computed over all frames with `hsfpn_yolo.metrics.tiny_ap`, in
original frame pixels; the report is saved as tiny_metrics.json / tiny_metrics.csv like the validation hook's.

Examples:
    >>> from hsfpn_yolo.sliced import val_sliced
    >>> metrics = val_sliced("best.pt", "cfg/datasets/VisDrone.yaml", slice=640, overlap=0.2)

    $ hsfpn-yolo val best.pt cfg/datasets/VisDrone.yaml --slice 640 --overlap 0.2
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from hsfpn_yolo.metrics.tiny import MAX_DETS, cap_detections, dense_warning, frames_over, size_counts, tiny_ap

from .model import check_model, load_model, predict_frame, run_dir


def split_frames(data: str | Path, split: str = "val") -> tuple[list[Path], list[Path]]:
    """Return the image files of a data YAML's split and their label files (Ultralytics' images/ → labels/ rule).

    The dataset is checked (and prepared on first use, as for `yolo val`) by Ultralytics' `check_det_dataset`.
    """
    from ultralytics.data.utils import check_det_dataset, img2label_paths

    from hsfpn_yolo.data.convert_utils import is_image

    info = check_det_dataset(str(data))
    entries = info.get(split)
    if not entries:
        raise ValueError(f"{data}: no '{split}' split")
    files = []
    for entry in entries if isinstance(entries, list) else [entries]:
        p = Path(entry)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and is_image(f))
        elif p.suffix == ".txt":  # a list of image paths; './x' is relative to the list's folder, as in Ultralytics
            lines = [x.strip() for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
            files += [p.parent / x[2:] if x.startswith("./") else Path(x) for x in lines]
        else:
            files.append(p)
    if not files:
        raise FileNotFoundError(f"{data}: the '{split}' split has no images")
    return files, [Path(x) for x in img2label_paths([str(f) for f in files])]


def frame_truth(image: Path, label: Path) -> np.ndarray:
    """Return a frame's ground truth as (N, 5) rows [cls, x1, y1, x2, y2] in frame pixels (none without a label file)."""
    from hsfpn_yolo.data.convert_utils import load_sample
    from hsfpn_yolo.data.tiles import read_labels

    w, h = load_sample(None, image, str(image)).size
    return read_labels(label, w, h) if label.is_file() else np.zeros((0, 5))


def val_sliced(
    model: Any,
    data: str | Path,
    slice: int = 640,
    overlap: float = 0.2,
    split: str = "val",
    full_frame: bool = False,
    conf: float = 0.001,
    max_det: int = MAX_DETS,
    device: str | None = None,
    imgsz: int | None = None,
    postprocess: str = "NMS",
    match_metric: str = "IOU",
    match_threshold: float = 0.5,
    project: str | Path | None = None,
    name: str = "val-sliced",
    exist_ok: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a detector on the full frames of a split with sliced inference; save and return tiny-object AP.

    Args:
        model (str | Path | YOLO): Any Ultralytics detection checkpoint, model YAML or YOLO object.
        data (str | Path): Data YAML of the full-frame dataset (e.g. cfg/datasets/VisDrone.yaml).
        slice (int): Slice side in pixels, a multiple of 32.
        overlap (float): Fraction of the slice side shared by neighbouring slices, in [0, 1).
        split (str): Split to evaluate.
        full_frame (bool): Also predict on the whole frame and merge those boxes in.
        conf (float): Confidence threshold (low, as for AP; SAHI then merges with NMS/IOU).
        max_det (int): Detections kept per frame after merging, highest scores first; AI-TOD's protocol keeps 1500.
        device (str, optional): 'cpu', '0', ...
        imgsz (int, optional): Inference size per slice (default: the slice size).
        postprocess (str): SAHI's merge of the slices' boxes (see `hsfpn_yolo.sliced.POSTPROCESS`); NMS, which SAHI
            itself switches to below conf 0.1, since merging would grow boxes from weak detections.
        match_metric (str): 'IOU' or 'IOS' for that merge.
        match_threshold (float): Overlap above which boxes are suppressed or merged.
        project (str | Path, optional): Parent folder of the run; default: 'detect' in Ultralytics' runs_dir setting,
            as `yolo val` (see `run_dir`).
        name (str): Run folder name; incremented unless EXIST_OK.
        exist_ok (bool): Reuse an existing run folder.
        progress (bool): Show a progress bar over frames and print the AP line.

    Returns:
        (dict[str, Any]): AP, AP50, AP75, AP_vt, AP_t, AP_s, AP_m (-1 where a size has no objects), 'images',
            'instances' per size, 's_per_frame' (prediction wall time), the settings and 'save_dir'.
    """
    from ultralytics.utils import LOGGER, TQDM

    from hsfpn_yolo.data.tiles import check_slicing
    from hsfpn_yolo.metrics.report import format_line, save_report

    check_slicing(slice, overlap)
    if max_det < 1:
        raise ValueError(f"max_det must be a positive number of detections per frame, got {max_det}")
    check_model(model)  # before the data, which Ultralytics may first have to prepare
    images, labels = split_frames(data, split)
    truth = [frame_truth(i, l) for i, l in zip(images, labels)]  # every frame checked before predicting
    detector = load_model(model, conf, device, imgsz)
    gt, pred, seconds = [], [], 0.0
    for k, (image, boxes) in enumerate(
        TQDM(list(zip(images, truth)), desc="Sliced val", unit="frame", disable=not progress)
    ):
        t = time.perf_counter()
        r = predict_frame(detector, image, slice, overlap, full_frame, postprocess, match_metric, match_threshold)
        seconds += time.perf_counter() - t
        b = r.boxes
        pred.append(np.c_[np.full(len(b), k), b.cls.numpy(), b.conf.numpy(), b.xyxy.numpy()])
        gt.append(np.c_[np.full(len(boxes), k), boxes])
    gt, pred = np.concatenate(gt).reshape(-1, 6), cap_detections(np.concatenate(pred).reshape(-1, 7), max_det)
    n = len(images)
    results, counts = tiny_ap(gt, pred, n, max_det), size_counts(gt)
    settings = {"slice": slice, "overlap": overlap, "full_frame": full_frame, "conf": conf, "max_det": max_det}
    settings.update({"postprocess": postprocess, "match_metric": match_metric, "match_threshold": match_threshold})
    timing = {"s_per_frame": seconds / n, "split": split, "data": str(data)}
    save_dir = run_dir(project, name, exist_ok, "val")
    save_report(save_dir, results, counts, n, "sliced", extra={"sliced": settings, **timing})
    if over := frames_over(gt, n, max_det):
        LOGGER.warning(dense_warning(over, n, max_det))
    if progress:
        LOGGER.info(format_line(results, counts))
        LOGGER.info(f"Sliced val of {n} frames ({seconds / n:.2f} s per frame) saved to {save_dir}")
    return {**results, "images": n, "instances": counts, **timing, **settings, "save_dir": str(save_dir)}
