"""Sliced prediction over a folder of large frames, saved the way `yolo predict` saves its results.

Per frame: `<save_dir>/<stem>.jpg` with the boxes drawn and `<save_dir>/labels/<stem>.txt` ('cls xc yc w h conf',
normalised); for the whole run `<save_dir>/predictions.json`, COCO-style results (category_id = class + 1, bbox
[x, y, w, h] in frame pixels, as Ultralytics writes them for non-COCO datasets).

Examples:
    >>> from hsfpn_yolo.sliced import predict_sliced
    >>> results = predict_sliced("best.pt", "frames/", slice=640, overlap=0.2)

    $ hsfpn-yolo predict best.pt frames/ --slice 640 --overlap 0.2
"""

from __future__ import annotations

import glob
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .model import check_model, load_model, predict_frame, run_dir

LABEL_SCALE = 0.3  # Hershey font scale per pixel of line width: text about 7 px high at line width 1


def list_frames(source: str | Path | list) -> list[Path]:
    """Return the image files of SOURCE (file, folder, glob pattern, or list of these), sorted, checked readable.

    Raises:
        FileNotFoundError: SOURCE matches no image.
        ValueError: Some images cannot be opened (all named, before anything is predicted or written).
    """
    from hsfpn_yolo.data.convert_utils import ConversionError, is_image, load_sample

    items = source if isinstance(source, (list, tuple)) else [source]
    files = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.is_file() and is_image(f))
        elif any(c in str(item) for c in "*?["):
            files += sorted(Path(f) for f in glob.glob(str(item), recursive=True) if is_image(Path(f)))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    if not files:
        raise FileNotFoundError(f"{source}: no images found")
    bad = []
    for f in files:
        try:
            load_sample(None, f, str(f))
        except ConversionError as e:
            bad.append(str(e))
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ValueError(f"{len(bad)} of {len(files)} frames cannot be read: {'; '.join(bad[:5])}{more}")
    return files


def coco_results(result, image_id: int | str) -> list[dict[str, Any]]:
    """Return one frame's boxes as COCO-style result dicts (category_id = class + 1, bbox [x, y, w, h] in pixels)."""
    rows = []
    for (x1, y1, x2, y2), conf, cls in zip(
        result.boxes.xyxy.tolist(), result.boxes.conf.tolist(), result.boxes.cls.tolist()
    ):
        rows.append(
            {
                "image_id": image_id,
                "file_name": Path(result.path).name,
                "category_id": int(cls) + 1,
                "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                "score": round(conf, 5),
            }
        )
    return rows


def line_width_for(shape: tuple[int, ...]) -> int:
    """Return the box line width for a frame of SHAPE (h, w, ...): 1 px per 2000 px of its mean side, at least 1."""
    return max(1, round(sum(shape[:2]) / 4000))


def draw_boxes(result, line_width: int | None = None, labels: bool = False) -> np.ndarray:
    """Return a copy of the result's frame with its boxes drawn as crisp outlines around them.

    Ultralytics' `Results.plot` sizes lines and labels for objects of tens of pixels and draws anti-aliased lines over
    the box edges, which hides an object of a few pixels. Here each outline lies on the pixels just outside its box, so
    the object itself stays untouched.

    Args:
        result (ultralytics.engine.results.Results): Frame (`orig_img`, BGR) and boxes in its pixels.
        line_width (int, optional): Outline width in pixels; default: `line_width_for` the frame.
        labels (bool): Write 'name conf' in small type above each box (below it at the top edge).
    """
    import cv2
    from ultralytics.utils.plotting import colors

    im = result.orig_img.copy()
    lw = line_width or line_width_for(im.shape)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE * lw
    for (x1, y1, x2, y2), conf, cls in zip(
        result.boxes.xyxy.tolist(), result.boxes.conf.tolist(), result.boxes.cls.int().tolist()
    ):
        x1, y1, x2, y2 = math.floor(x1), math.floor(y1), math.ceil(x2) - 1, math.ceil(y2) - 1  # the box's pixels
        color = colors(cls, bgr=True)
        for i in range(1, lw + 1):  # nested 1-px outlines: exact pixels, unlike a thick anti-aliased line
            cv2.rectangle(im, (x1 - i, y1 - i), (x2 + i, y2 + i), color, 1, cv2.LINE_8)
        if labels:
            text = f"{result.names[cls]} {conf:.2f}"
            th = cv2.getTextSize(text, font, scale, 1)[0][1]
            y = y1 - lw - 2 if y1 - lw - 2 >= th else y2 + lw + th + 2  # baseline above the box, or below it
            cv2.putText(im, text, (x1 - lw, y), font, scale, color, 1, cv2.LINE_AA)
    return im


def predict_sliced(
    model: Any,
    source: str | Path | list,
    slice: int = 640,
    overlap: float = 0.2,
    full_frame: bool = False,
    conf: float = 0.25,
    device: str | None = None,
    imgsz: int | None = None,
    postprocess: str = "GREEDYNMM",
    match_metric: str = "IOS",
    match_threshold: float = 0.5,
    save: bool = True,
    save_txt: bool = True,
    save_json: bool = True,
    project: str | Path | None = None,
    name: str = "predict-sliced",
    exist_ok: bool = False,
    line_width: int | None = None,
    labels: bool = False,
    progress: bool = True,
) -> list:
    """Predict every frame of SOURCE slice by slice with SAHI and save annotated images, YOLO txt and COCO JSON.

    Args:
        model (str | Path | YOLO): Any Ultralytics detection checkpoint, model YAML or YOLO object.
        source (str | Path | list): Image file, folder, glob pattern, or a list of them.
        slice (int): Slice side in pixels, a multiple of 32.
        overlap (float): Fraction of the slice side shared by neighbouring slices, in [0, 1).
        full_frame (bool): Also predict on the whole frame and merge those boxes in.
        conf (float): Confidence threshold.
        device (str, optional): 'cpu', '0', ...
        imgsz (int, optional): Inference size per slice (default: the slice size).
        postprocess (str): SAHI's merge of the slices' boxes (see `hsfpn_yolo.sliced.POSTPROCESS`).
        match_metric (str): 'IOS' or 'IOU' for that merge.
        match_threshold (float): Overlap above which boxes are merged.
        save (bool): Save each frame with its boxes drawn.
        save_txt (bool): Save each frame's boxes as a YOLO label file with confidences.
        save_json (bool): Save all boxes as COCO-style results in predictions.json.
        project (str | Path, optional): Parent folder of the run; default: 'detect' in Ultralytics' runs_dir setting,
            as `yolo predict` (see `run_dir`).
        name (str): Run folder name; numbered as `yolo` numbers its runs (predict-sliced-2, ...) unless EXIST_OK.
        exist_ok (bool): Reuse an existing run folder.
        line_width (int, optional): Box outline width in the saved images; default: 1 px per 2000 px of frame side.
        labels (bool): Write class name and confidence next to each box in the saved images (small type).
        progress (bool): Show a progress bar over frames and log where the results are.

    Returns:
        (list[ultralytics.engine.results.Results]): One result per frame, boxes in frame pixels, `save_dir` set; the
            frames themselves are not kept in memory (`orig_img` is None), the drawn ones are in save_dir.
    """
    import cv2
    from ultralytics.utils import LOGGER, TQDM

    from hsfpn_yolo.data.tiles import check_slicing

    check_slicing(slice, overlap)
    check_model(model)
    frames = list_frames(source)  # every frame checked before anything is written
    detector = load_model(model, conf, device, imgsz)
    save_dir = run_dir(project, name, exist_ok, "predict")
    results, coco = [], []
    for path in TQDM(frames, desc="Sliced prediction", unit="frame", disable=not progress):
        r = predict_frame(detector, path, slice, overlap, full_frame, postprocess, match_metric, match_threshold)
        r.save_dir = str(save_dir)
        if save or save_txt or save_json:
            save_dir.mkdir(parents=True, exist_ok=True)
        if save:
            cv2.imwrite(str(save_dir / f"{path.stem}.jpg"), draw_boxes(r, line_width, labels))
        if save_txt:
            (save_dir / "labels").mkdir(exist_ok=True)
            txt = save_dir / "labels" / f"{path.stem}.txt"
            txt.unlink(missing_ok=True)  # Results.save_txt appends
            r.save_txt(txt, save_conf=True)
        if save_json:
            coco += coco_results(r, int(path.stem) if path.stem.isnumeric() else path.stem)
        r.orig_img = None  # keep the boxes, not every large frame, in memory
        results.append(r)
    if save_json:
        (save_dir / "predictions.json").write_text(json.dumps(coco), encoding="utf-8")
    if progress and (save or save_txt or save_json):
        LOGGER.info(f"Sliced predictions of {len(frames)} frames saved to {save_dir}")
    return results
