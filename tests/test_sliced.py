"""Sliced prediction and validation through SAHI: boxes back in frame pixels, saved results, dense frames, bad input.

A stand-in detector finds pure red squares in whatever slice SAHI gives it, so the expected boxes in frame pixels
are known exactly, including a square cut by slice edges that SAHI has to merge back into one box.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hsfpn_yolo.cli import main
from hsfpn_yolo.sliced import predict_frame, predict_sliced, val_sliced
from hsfpn_yolo.sliced.model import load_model

# 640x480 frame, 320 px slices at 0.2 overlap: x windows 0-320, 256-576, 320-640; y windows 0-320, 160-480
SQUARES = [(20, 20, 40, 40), (300, 100, 340, 120), (600, 440, 630, 470)]  # the second is cut at x 320 (and 256)


def red_square_detector():
    """Return a YOLO object whose prediction finds the red squares of each image it is given (class 0); like a real
    detector it is less sure of a square cut by the image edge (conf 0.5) than of a whole one (conf 0.9).
    """
    from ultralytics import YOLO
    from ultralytics.engine.results import Results

    yolo = YOLO("yolov8n.yaml")

    def predict(source, stream=False, **kwargs):
        out = []
        for img in source:  # BGR slices from SAHI's ultralytics wrapper
            mask = ((img[..., 2] > 200) & (img[..., 1] < 50) & (img[..., 0] < 50)).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            ih, iw = mask.shape
            rows = [
                (x, y, x + w, y + h, 0.5 if min(x, y) == 0 or x + w == iw or y + h == ih else 0.9, 0)
                for x, y, w, h, _ in stats[1:n].tolist()
            ]
            out.append(Results(img, "", yolo.names, boxes=torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)))
        return out

    yolo.predict = predict
    return yolo


def draw(w: int, h: int, squares: list) -> np.ndarray:
    """Return a grey BGR frame with red squares (x1, y1, x2, y2, exclusive ends)."""
    frame = np.full((h, w, 3), 120, np.uint8)
    for x1, y1, x2, y2 in squares:
        frame[y1:y2, x1:x2] = (0, 0, 255)
    return frame


def sorted_boxes(xyxy) -> np.ndarray:
    """Return boxes sorted by x1, then y1."""
    a = np.asarray(xyxy, float).reshape(-1, 4)
    return a[np.lexsort((a[:, 1], a[:, 0]))]


def test_predict_frame_reassembles_slices():
    """Boxes come back in frame pixels; the square cut by slice edges is merged back into one full box."""
    detector = load_model(red_square_detector(), conf=0.25)
    r = predict_frame(detector, draw(640, 480, SQUARES), slice=320, overlap=0.2)
    np.testing.assert_allclose(sorted_boxes(r.boxes.xyxy), sorted_boxes(SQUARES))
    assert r.boxes.conf.tolist() == pytest.approx([0.9] * 3) and r.boxes.cls.tolist() == [0, 0, 0]
    small = predict_frame(detector, draw(200, 150, [(50, 60, 70, 80)]), slice=320, overlap=0.2)  # smaller than a slice
    assert small.boxes.xyxy.tolist() == [[50, 60, 70, 80]] and small.orig_shape == (150, 200)
    # without merging, the cut square would also come back as its pieces 300-320 and 320-340
    r = predict_frame(
        detector, draw(640, 480, SQUARES), 320, 0.2, postprocess="NMS", match_metric="IOU", match_threshold=0.6
    )
    assert sorted(map(tuple, r.boxes.xyxy.tolist())) == sorted(
        [(20, 20, 40, 40), (300, 100, 320, 120), (300, 100, 340, 120), (320, 100, 340, 120), (600, 440, 630, 470)]
    )


def test_predict_sliced_saves_results(tmp_path):
    """Annotated frames, YOLO txt with confidences and COCO JSON, all in frame coordinates."""
    (tmp_path / "frames").mkdir()
    assert cv2.imwrite(str(tmp_path / "frames" / "17.png"), draw(640, 480, SQUARES))
    results = predict_sliced(red_square_detector(), tmp_path / "frames", slice=320, project=tmp_path, name="p")
    save_dir = tmp_path / "p"
    assert results[0].save_dir == str(save_dir) and len(results) == 1
    assert cv2.imread(str(save_dir / "17.jpg")).shape == (480, 640, 3)
    rows = np.loadtxt(save_dir / "labels" / "17.txt", ndmin=2)
    xywh = rows[:, 1:5] * [640, 480, 640, 480]
    xyxy = np.c_[xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2]
    np.testing.assert_allclose(sorted_boxes(xyxy), sorted_boxes(SQUARES), atol=1e-3)
    assert rows[:, 0].tolist() == [0, 0, 0] and rows[:, 5] == pytest.approx([0.9] * 3)
    coco = json.loads((save_dir / "predictions.json").read_text())
    assert {(c["image_id"], c["category_id"], c["file_name"]) for c in coco} == {(17, 1, "17.png")}
    xyxy = [(x, y, x + w, y + h) for x, y, w, h in (c["bbox"] for c in coco)]
    np.testing.assert_allclose(sorted_boxes(xyxy), sorted_boxes(SQUARES))
    predict_sliced(red_square_detector(), tmp_path / "frames", slice=320, project=tmp_path, name="p")
    again = tmp_path / "p-2" / "labels" / "17.txt"  # a new run folder, numbered as Ultralytics does
    assert again.read_text() == (save_dir / "labels" / "17.txt").read_text()


def test_predict_bad_input_writes_nothing(tmp_path):
    """An unreadable frame or a bad slice size is reported before any result is written."""
    (tmp_path / "frames").mkdir()
    assert cv2.imwrite(str(tmp_path / "frames" / "a.png"), draw(640, 480, SQUARES))
    (tmp_path / "frames" / "b.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"1 of 2 frames cannot be read: .*b\.jpg"):
        predict_sliced(red_square_detector(), tmp_path / "frames", slice=320, project=tmp_path / "runs")
    with pytest.raises(ValueError, match="multiple of 32"):
        predict_sliced(red_square_detector(), tmp_path / "frames" / "a.png", slice=300, project=tmp_path / "runs")
    with pytest.raises(FileNotFoundError, match="no such file"):
        predict_sliced(red_square_detector(), tmp_path / "missing", project=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def write_dataset(root: Path, w: int, h: int, squares: list) -> Path:
    """Write a one-frame val split whose labels are the red squares (class 0); return its data YAML."""
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    assert cv2.imwrite(str(root / "images" / "val" / "f.png"), draw(w, h, squares))
    rows = [
        f"0 {(a + c) / 2 / w:.6f} {(b + d) / 2 / h:.6f} {(c - a) / w:.6f} {(d - b) / h:.6f}" for a, b, c, d in squares
    ]
    (root / "labels" / "val" / "f.txt").write_text("\n".join(rows) + "\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/val\nval: images/val\nnames:\n  0: square\n")
    return root / "data.yaml"


def test_val_sliced_matches_known_boxes(tmp_path):
    """Perfect sliced boxes give AP 1 on the full frame; the report is saved with the slicing settings."""
    data = write_dataset(tmp_path / "d", 640, 480, SQUARES)
    # conf 0.25: SAHI merges with GREEDYNMM only above conf 0.1, which puts the cut square back together
    m = val_sliced(
        red_square_detector(), data, 320, conf=0.25, postprocess="GREEDYNMM", match_metric="IOS", project=tmp_path
    )
    assert m["AP"] == pytest.approx(1.0) and m["AP50"] == pytest.approx(1.0) and m["images"] == 1
    assert m["instances"]["all"] == 3 and m["AP_m"] == -1  # no 32-64 px objects here
    report = json.loads((Path(m["save_dir"]) / "tiny_metrics.json").read_text())
    assert report["sliced"]["slice"] == 320 and report["sliced"]["max_det"] == 1500 and report["s_per_frame"] > 0
    assert (Path(m["save_dir"]) / "tiny_metrics.csv").read_text().splitlines()[1].split(",")[1] == "sliced"


def test_dense_frame_max_det(tmp_path, monkeypatch):
    """A frame with 400 objects: the AI-TOD cap (1500) keeps them all; a cap of 300 loses recall and warns."""
    from ultralytics.utils import LOGGER

    warnings = []
    monkeypatch.setattr(LOGGER, "warning", lambda msg, *a, **k: warnings.append(str(msg)))
    # 20 x 20 squares of 6 px on a 32 px grid; none crosses a slice edge (256, 320, 576), so each is found whole
    squares = [(8 + 32 * i, 8 + 32 * j, 14 + 32 * i, 14 + 32 * j) for i in range(20) for j in range(20)]
    data = write_dataset(tmp_path / "d", 640, 640, squares)
    full = val_sliced(red_square_detector(), data, slice=320, project=tmp_path, progress=False)
    assert full["AP50"] == pytest.approx(1.0) and full["instances"]["vt"] == 400 and not warnings
    capped = val_sliced(red_square_detector(), data, slice=320, max_det=300, project=tmp_path, progress=False)
    assert 0.7 < capped["AP50"] < 0.8  # 300 of 400 found: recall 0.75 at precision 1
    assert len(warnings) == 1 and "1 of 1 images hold more ground-truth objects than max_det=300" in warnings[0]


@pytest.fixture
def small_frame(tmp_path) -> Path:
    """A 320x256 frame with a few squares, as a one-frame dataset."""
    return write_dataset(tmp_path / "d", 320, 256, [(20, 20, 40, 40), (200, 100, 230, 120)])


@pytest.mark.slow  # builds two models and runs their first prediction: about 40 s on a loaded 2-core CPU
def test_cli_predict_and_val_with_a_real_model(tmp_path, small_frame, capsys):
    """`hsfpn-yolo predict` and `hsfpn-yolo val` run a real (untrained) Ultralytics model end to end through SAHI."""
    frame = small_frame.parent / "images" / "val" / "f.png"
    runs = ["--project", str(tmp_path / "runs"), "--slice", "128", "--device", "cpu"]
    torch.manual_seed(0)  # the untrained weights
    # An untrained head scores every box about 1.6e-4 (its initial class bias): boxes above conf 1e-4, none above 0.25
    assert main(["predict", "yolov8n.yaml", str(frame), *runs, "--conf", "1e-4"]) == 0
    out = tmp_path / "runs" / "predict-sliced"
    assert cv2.imread(str(out / "f.jpg")).shape == (256, 320, 3)
    coco = json.loads((out / "predictions.json").read_text())
    assert coco and len(np.loadtxt(out / "labels" / "f.txt", ndmin=2)) == len(coco)
    assert all(c["score"] >= 1e-4 and x + w <= 320 and y + h <= 256 for c in coco for x, y, w, h in [c["bbox"]])
    assert main(["predict", "yolov8n.yaml", str(frame), *runs, "--name", "sure"]) == 0  # conf 0.25
    assert json.loads((tmp_path / "runs" / "sure" / "predictions.json").read_text()) == []
    assert not (tmp_path / "runs" / "sure" / "labels" / "f.txt").exists()  # as `yolo predict`: no txt without boxes
    assert main(["val", "yolov8n.yaml", str(small_frame), "--max-det", "50", "--conf", "0.25", *runs]) == 0
    report = json.loads((tmp_path / "runs" / "val-sliced" / "tiny_metrics.json").read_text())
    assert report["images"] == 1 and report["instances"]["all"] == 2 and report["sliced"]["max_det"] == 50
    assert main(["val", "yolov8n.yaml", str(small_frame), "--overlap", "1.5", *runs]) == 2
    assert "overlap must be in [0, 1)" in capsys.readouterr().err


def test_cli_passes_options(monkeypatch, tmp_path):
    """`predict` and `val` pass every option to the Python functions; left-out --max-det keeps the function default."""
    from hsfpn_yolo import sliced

    calls = []
    monkeypatch.setattr(sliced, "predict_sliced", lambda *a, **k: calls.append(("predict", a, k)), raising=False)
    monkeypatch.setattr(sliced, "val_sliced", lambda *a, **k: calls.append(("val", a, k)), raising=False)
    common = ["--slice", "320", "--overlap", "0.25", "--full-frame", "--device", "cpu", "--project", str(tmp_path)]
    assert main(["predict", "m.pt", "frames/", *common, "--postprocess", "NMS", "--match-threshold", "0.4"]) == 0
    assert main(["val", "m.pt", "d.yaml", *common, "--split", "test"]) == 0
    assert main(["val", "m.pt", "d.yaml", "--max-det", "3000"]) == 0
    (_, pa, pk), (_, va, vk), (_, _, vk2) = calls
    assert pa == ("m.pt", "frames/") and va == ("m.pt", "d.yaml")
    assert pk["slice"] == vk["slice"] == 320 and pk["overlap"] == vk["overlap"] == 0.25 and pk["full_frame"]
    assert (pk["postprocess"], pk["match_metric"], pk["match_threshold"], pk["conf"]) == ("NMS", "IOS", 0.4, 0.25)
    assert (vk["postprocess"], vk["match_metric"], vk["conf"], vk["split"]) == ("NMS", "IOU", 0.001, "test")
    assert "max_det" not in vk and vk2["max_det"] == 3000 and pk["project"] == tmp_path
