"""The first run: train an HS-FPN YOLOv8n on the built-in synthetic tiny-object set and show what it detects.

It is one run of `hsfpn-yolo bench accuracy --starts scratch --epochs 10`: the same training call
(`bench.training.fit`) with the same data and settings (one optimizer step per batch) at the benchmark's first seed,
shortened to 10 epochs so that it ends in minutes on a CPU. Nothing is downloaded: the data is rendered locally and
the model starts from scratch.

Examples:
    hsfpn-yolo demo                      # several minutes on 2 CPU cores
    hsfpn-yolo demo --device 0           # on a GPU
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .bench.training import SEEDS, SYNTH, fit, synth_data, train_settings

MODEL = "yolov8n-hsfpn"
EPOCHS = 10  # the benchmark's regime, stopped at 10 epochs: minutes on 2 CPU cores
UPSCALE = 3  # the prediction image is drawn at 3x: boxes around 2-30 px objects stay visible


def draw_prediction(weights: str | Path, image: Path, imgsz: int, out: Path) -> int:
    """Predict on one image with the trained weights, save it with the boxes drawn; return the number of boxes.

    Args:
        weights (str | Path): Trained checkpoint.
        image (Path): Image to predict on.
        imgsz (int): Inference size.
        out (Path): Where to write the annotated JPEG.
    """
    import cv2
    from ultralytics import YOLO

    result = YOLO(weights).predict(image, imgsz=imgsz, conf=0.25, max_det=1000, verbose=False)[0]
    h, w = result.orig_shape
    boxes = result.boxes.data.clone()
    boxes[:, :4] *= UPSCALE  # the boxes follow the upscaled image
    result.orig_img = cv2.resize(result.orig_img, (w * UPSCALE, h * UPSCALE), interpolation=cv2.INTER_NEAREST)
    result.orig_shape = result.orig_img.shape[:2]
    result.update(boxes=boxes)
    cv2.imwrite(str(out), result.plot(line_width=1, font_size=8, labels=False))
    return len(result.boxes)


def run(
    model: str = MODEL,
    epochs: int = EPOCHS,
    train: int = SYNTH["train"],
    val: int = SYNTH["val"],
    device: str = "cpu",
    project: str | Path = "runs/demo",
) -> dict[str, Any]:
    """Render the data, train, validate, draw a prediction; return the final tiny-object metrics and where things are.

    Args:
        model (str): Model name or YAML path.
        epochs (int): Training epochs.
        train (int): Training images.
        val (int): Validation images.
        device (str): 'cpu', '0', ...
        project (str | Path): Folder for the run.
    """
    from .metrics.report import format_line

    imgsz = SYNTH["imgsz"]
    data = synth_data(train, val, imgsz, SYNTH["seed"])
    project = Path(project).resolve()
    yolo, clock = fit(model, SEEDS[0], data, imgsz, device, project, train_settings(epochs), name="train")
    metrics, save_dir = yolo.metrics, Path(yolo.trainer.save_dir)
    images = sorted((Path(data).parent / "images" / "val").glob("*"))
    prediction = save_dir / "prediction.jpg"
    boxes = draw_prediction(yolo.trainer.best, images[0], imgsz, prediction)
    tiny = dict(getattr(metrics, "tiny", None) or {})
    return {
        "tiny": tiny,
        "line": format_line(tiny, getattr(metrics, "tiny_counts", None) or {}) if tiny else None,
        "train_s": clock.wall_s,
        "weights": str(yolo.trainer.best),
        "save_dir": str(save_dir),
        "prediction": str(prediction),
        "boxes": boxes,
        "data": data,
    }


def report(out: dict[str, Any]) -> str:
    """Return the closing summary of a demo run: metrics, files and what to run next."""
    w, data = out["weights"], out["data"]
    return "\n".join(
        [
            "",
            f"Training took {out['train_s'] / 60:.1f} min.",
            out["line"] or "Tiny-object AP: not reported",
            f"Prediction: {out['prediction']}  ({out['boxes']} boxes drawn)",
            f"Weights:    {w}",
            f"Run folder: {out['save_dir']}  (results.csv, tiny_metrics.csv)",
            "",
            "Next:",
            f"  yolo predict model={w} source=path/to/images",
            f"  yolo val model={w} data={data}",
            f"  yolo export model={w} format=onnx",
            "  yolo train model=yolov8n-hsfpn.yaml data=path/to/data.yaml epochs=100 imgsz=640",
            "  hsfpn-yolo convert visdrone|aitod ...   (VisDrone or AI-TOD into YOLO format; see README)",
        ]
    )
