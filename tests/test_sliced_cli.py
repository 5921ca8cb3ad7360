"""Sliced prediction as installed: `hsfpn-yolo predict` writes only its run folder, and its drawn frames keep objects of
a few pixels visible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from hsfpn_yolo.sliced import draw_boxes, load_model, predict_frame, predict_sliced

# 4x4 objects (x, y): (61, 30) crosses the edge of the first 64-px slice, (0, 90) and (124, 120) touch a 128-px frame's
# borders
SQUARES = [(10, 12), (61, 30), (62, 62), (0, 90), (124, 120)]


def tiny_frame(w: int = 128, h: int = 128) -> np.ndarray:
    """Return a grey BGR frame with white 4x4 squares at SQUARES."""
    frame = np.full((h, w, 3), 120, np.uint8)
    for x, y in SQUARES:
        frame[y : y + 4, x : x + 4] = 255
    return frame


def square_detector():
    """Return a YOLO object whose prediction boxes the white blobs of each image it is given (class 0, conf 0.8)."""
    from ultralytics import YOLO
    from ultralytics.engine.results import Results

    yolo = YOLO("yolov8n.yaml")

    def predict(source, stream=False, **kwargs):
        out = []
        for img in source:
            n, _, stats, _ = cv2.connectedComponentsWithStats((img.min(-1) > 200).astype(np.uint8))
            rows = [(x, y, x + w, y + h, 0.8, 0) for x, y, w, h, _ in stats[1:n].tolist()]
            out.append(Results(img, "", yolo.names, boxes=torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)))
        return out

    yolo.predict = predict
    return yolo


def object_masks(shape: tuple[int, int], line_width: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the masks of the squares' pixels and of the LINE_WIDTH-wide rings just around them."""
    objects = np.zeros(shape, np.uint8)
    for x, y in SQUARES:
        objects[y : y + 4, x : x + 4] = 1
    k = 2 * line_width + 1
    return objects.astype(bool), cv2.dilate(objects, np.ones((k, k), np.uint8)).astype(bool) & ~objects.astype(bool)


def square_results(frame: np.ndarray):
    """Return an Ultralytics Results holding the frame and one box per square (x2, y2 exclusive)."""
    from ultralytics.engine.results import Results

    rows = [(x, y, x + 4, y + 4, 0.8, 0) for x, y in SQUARES]
    return Results(frame, "", {0: "car"}, boxes=torch.tensor(rows, dtype=torch.float32))


def test_draw_boxes_paints_only_rings_around_objects():
    """Boxes are exact rings of the line width on the pixels around each object: the objects and the rest are kept."""
    frame = tiny_frame()
    for lw in (1, 2):
        drawn = draw_boxes(square_results(frame), line_width=lw)
        objects, rings = object_masks(frame.shape[:2], lw)
        changed = (drawn != frame).any(-1)
        assert np.array_equal(changed, rings)  # every ring pixel painted, nothing else
        assert len(np.unique(drawn[rings], axis=0)) == 1 and (drawn[objects] == 255).all()
    assert np.array_equal(draw_boxes(square_results(frame)), draw_boxes(square_results(frame), line_width=1))


def test_draw_boxes_labels_are_small():
    """Labels are optional and, when asked for, small text next to each box that leaves the objects untouched."""
    frame = tiny_frame(512, 384)
    objects, rings = object_masks(frame.shape[:2], 1)
    drawn = draw_boxes(square_results(frame), labels=True)
    text = (drawn != frame).any(-1) & ~rings
    assert (drawn[objects] == 255).all() and text.any()
    assert text.sum() < 0.01 * text.size
    beside = np.zeros_like(text)  # a line of small text just above or below each box, from its left edge
    for x, y in SQUARES:
        beside[max(y - 14, 0) : y + 18, max(x - 2, 0) : x + 60] = True
    assert not (text & ~beside).any()


def test_saved_frames_keep_tiny_objects_visible(tmp_path):
    """Through SAHI and the saved JPG: thin boxes around every square, the squares still white, little else changed."""
    frame = tiny_frame(256, 192)
    assert cv2.imwrite(str(tmp_path / "f.png"), frame)
    results = predict_sliced(square_detector(), tmp_path / "f.png", 64, project=tmp_path, name="p", progress=False)
    assert len(results[0].boxes) == len(SQUARES)
    saved = cv2.imread(str(tmp_path / "p" / "f.jpg")).astype(int)
    diff = np.abs(saved - frame).max(-1)
    objects, rings = object_masks(frame.shape[:2], 1)
    assert (diff[rings] > 48).mean() > 0.8 and (saved[objects] > 160).all()  # JPEG blurs colours a little
    assert (diff > 48).mean() < 0.01


def test_sliced_prediction_ignores_the_program_name(monkeypatch, tmp_path):
    """Under a program named like `hsfpn-yolo predict`, Ultralytics' prediction still returns results to SAHI."""
    from ultralytics import YOLO
    from ultralytics.engine import model as engine_model

    argv = [str(Path(sys.executable).parent / "hsfpn-yolo"), "predict", "m.pt", "frames/"]
    monkeypatch.setattr(engine_model, "ARGV", argv)
    monkeypatch.chdir(tmp_path)
    r = predict_frame(load_model(YOLO("yolov8n.yaml"), device="cpu"), tiny_frame(), slice=64)
    assert r.orig_shape == (128, 128) and engine_model.ARGV is argv
    assert not any(tmp_path.iterdir())


def test_installed_predict_writes_only_its_run(tmp_path):
    """`hsfpn-yolo predict MODEL FRAMES --slice 64` as installed: exit 0, readable outputs, nothing else written."""
    from ultralytics import YOLO
    from ultralytics.utils import SettingsManager

    from hsfpn_yolo.data.synth import generate

    frames = Path(generate(tmp_path / "data", train=1, val=2, imgsz=128, progress=False)["path"]) / "images" / "val"
    torch.manual_seed(0)
    YOLO("yolov8n-hsfpn.yaml").save(tmp_path / "m.pt")
    work, config = tmp_path / "work", tmp_path / "config"
    work.mkdir()
    # Ultralytics' own runs folder inside the working folder, so that anything written there is seen below
    SettingsManager(config / "Ultralytics" / "settings.json").update(runs_dir=str(work / "runs"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}  # Ultralytics behaves apart in tests
    env.update(YOLO_CONFIG_DIR=str(config), YOLO_OFFLINE="1")
    exe = Path(sys.executable).parent / "hsfpn-yolo"
    cmd = [str(exe), "predict", str(tmp_path / "m.pt"), str(frames), "--slice", "64", "--conf", "1e-4"]
    cmd += ["--device", "cpu"]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    run = work / "runs" / "detect" / "predict-sliced"
    assert all(p == run or run in p.parents or p in run.parents for p in work.rglob("*")), sorted(work.rglob("*"))
    names = sorted(f.name for f in frames.iterdir())
    assert sorted(f.name for f in run.glob("*.jpg")) == names  # the frames are .jpg too
    for name in names:
        assert cv2.imread(str(run / name)).shape == cv2.imread(str(frames / name)).shape == (128, 128, 3)
    rows = {f.stem: np.loadtxt(f, ndmin=2) for f in (run / "labels").glob("*.txt")}
    assert sorted(rows) == [Path(n).stem for n in names]  # conf 1e-4: an untrained model finds boxes everywhere
    for r in rows.values():
        assert r.shape[1] == 6 and (r[:, 0] == r[:, 0].round()).all() and ((r[:, 1:5] >= 0) & (r[:, 1:5] <= 1)).all()
        assert (r[:, 5] >= 1e-4).all()
    coco = json.loads((run / "predictions.json").read_text())
    assert len(coco) == sum(len(r) for r in rows.values())
    for c in coco:
        x, y, w, h = c["bbox"]
        assert c["file_name"] in names and c["image_id"] == Path(c["file_name"]).stem and 1 <= c["category_id"] <= 80
        assert 0 <= x and 0 <= y and 0 < w and 0 < h and x + w <= 128 and y + h <= 128 and c["score"] >= 1e-4
