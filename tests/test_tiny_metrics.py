"""Tiny-object AP (AI-TOD size ranges): evaluation with known answers and the hook into Ultralytics validation."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from hsfpn_yolo.metrics import KEYS, enable_tiny_metrics, is_hsfpn_model, size_counts, tiny_ap
from hsfpn_yolo.register import register
from hsfpn_yolo.metrics import hooks
from hsfpn_yolo.metrics.report import CSV_NAME, JSON_NAME, format_line
from tests.conftest import CFG
from tests.helpers import BIN

CLASS_COLOURS = ((0, 0, 255), (255, 0, 0))  # BGR: class 0 red, class 1 blue
# (class, x, y, side) per 96x64 image: sides 5 (very tiny), 12 (tiny), 24 (small), 40 (medium); letterboxed to 64
# they shrink by 2/3 (40 px -> 27 px), so the bucket counts below only hold if sizes are taken in original pixels
SCENES = (
    ((0, 4, 4, 5), (1, 20, 4, 12), (0, 4, 30, 24)),
    ((1, 2, 2, 40), (0, 50, 50, 5)),
    ((0, 40, 10, 12), (1, 10, 36, 24)),
    ((0, 80, 30, 5), (1, 5, 5, 12), (0, 60, 40, 20)),
)


def _boxes(*rows: tuple[int, int, int, int, int], image: int = 0) -> np.ndarray:
    """Return ground truth rows [image, cls, x1, y1, x2, y2] for squares given as (cls, x, y, side)."""
    return np.array([[image, c, x, y, x + s, y + s] for c, x, y, s in rows], dtype=float).reshape(-1, 6)


def _as_preds(gt: np.ndarray, conf: float = 0.9) -> np.ndarray:
    """Return predictions [image, cls, conf, x1, y1, x2, y2] identical to the ground truth."""
    return np.c_[gt[:, :2], np.full(len(gt), conf), gt[:, 2:]]


# Evaluation -------------------------------------------------------------------------------------------------------


def test_perfect_predictions_score_one_where_objects_exist():
    """Exact predictions give 1.0 for every AP; sizes 5, 12, 24, 40 fill all four buckets."""
    gt = np.r_[_boxes((0, 10, 10, 5), (1, 30, 30, 12)), _boxes((0, 5, 5, 24), (1, 100, 100, 40), image=1)]
    assert tiny_ap(gt, _as_preds(gt)) == dict.fromkeys(KEYS, 1.0)


def test_only_one_bucket_detected():
    """Detecting only the tiny (8-16 px) objects: AP_t 1, other buckets 0, the empty medium bucket -1."""
    gt = _boxes((0, 10, 10, 5), (0, 30, 30, 12), (0, 60, 60, 24), (0, 5, 60, 13))
    tiny = gt[(gt[:, 4] - gt[:, 2] > 8) & (gt[:, 4] - gt[:, 2] < 16)]
    r = tiny_ap(gt, _as_preds(tiny))
    assert (r["AP_vt"], r["AP_t"], r["AP_s"], r["AP_m"]) == (0.0, 1.0, 0.0, -1.0)
    # Recall 0.5 at precision 1: 51 of COCO's 101 recall points (0, 0.01, ..., 0.5); exact boxes: every IoU threshold
    assert r["AP"] == r["AP50"] == r["AP75"] == pytest.approx(51 / 101)


def test_buckets_use_sqrt_area_not_width():
    """A 4x36 box (sqrt area 12) is tiny although it is 36 px long."""
    gt = _boxes((0, 0, 0, 0))
    gt[0, 4:] = [4, 36]
    r = tiny_ap(gt, _as_preds(gt))
    assert (r["AP_vt"], r["AP_t"], r["AP_s"], r["AP_m"]) == (-1.0, 1.0, -1.0, -1.0)
    assert size_counts(gt) == {"all": 1, "vt": 0, "t": 1, "s": 0, "m": 0, "other": 0}


def test_size_counts_on_bucket_edges():
    """Boxes exactly on a bucket edge count once, in the bucket they start; the counts add up to all boxes."""
    gt = _boxes((0, 0, 0, 2), (0, 0, 0, 7), (0, 0, 0, 8), (0, 0, 0, 16), (0, 0, 0, 32), (0, 0, 0, 64), (0, 0, 0, 1))
    counts = size_counts(gt)
    assert counts == {"all": 7, "vt": 2, "t": 1, "s": 1, "m": 1, "other": 2}
    assert sum(v for k, v in counts.items() if k != "all") == counts["all"]
    # Each edge on its own: the lower edge belongs to the bucket, the upper one to the next
    for side, key in ((2, "vt"), (8, "t"), (16, "s"), (32, "m"), (64, "other")):
        assert size_counts(_boxes((0, 0, 0, side)))[key] == 1, side
        # a box scaled to the network input and back in float32 lands a few 1e-6 px below its edge: same bucket
        assert size_counts(_boxes((0, 0, 0, np.float32(side) * (1 - 1e-6))))[key] == 1, side


def test_zero_predictions_and_zero_labels():
    """No predictions: 0 where objects exist; no labels at all: -1 everywhere; an image count alone is fine."""
    gt = _boxes((0, 10, 10, 5), (1, 30, 30, 24))
    r = tiny_ap(gt, np.zeros((0, 7)))
    assert (r["AP"], r["AP_vt"], r["AP_t"], r["AP_s"]) == (0.0, 0.0, -1.0, 0.0)
    assert tiny_ap(np.zeros((0, 6)), _as_preds(gt)) == dict.fromkeys(KEYS, -1.0)
    assert tiny_ap(np.zeros((0, 6)), np.zeros((0, 7)), num_images=3) == dict.fromkeys(KEYS, -1.0)


def test_false_positives_on_an_image_without_labels_count():
    """A confident false positive on an unlabelled image lowers AP: that image must be part of the evaluation."""
    gt = _boxes((0, 10, 10, 12))
    fp = _as_preds(_boxes((0, 10, 10, 12), image=1), conf=0.99)
    r = tiny_ap(gt, np.r_[fp, _as_preds(gt, conf=0.5)], num_images=2)
    assert r["AP_t"] == pytest.approx(0.5)  # the one object found second: precision 1/2 at every recall


def test_format_line_shows_empty_bucket_as_na():
    """The summary line names every key and prints -1 as n/a."""
    line = format_line(dict(zip(KEYS, (0.5, 0.7, 0.4, 0.1, 0.2, 0.3, -1.0))), {"vt": 3, "t": 2, "s": 1, "m": 0})
    assert line.startswith("Tiny-object AP (AI-TOD sizes): AP 0.500 AP50 0.700") and "AP_m n/a" in line


# Validator hook ---------------------------------------------------------------------------------------------------


def test_letterboxed_boxes_are_measured_in_original_pixels(tmp_path, monkeypatch):
    """A 10x10 px object in a 100x200 image letterboxed to 64x64 (3.2 px there) is tiny, not very tiny."""
    from ultralytics.models.yolo.detect import DetectionValidator

    monkeypatch.delenv(hooks.ENV_VAR, raising=False)
    validator = DetectionValidator(save_dir=tmp_path, args={"task": "detect"})
    hooks.on_val_start(validator)
    hooks._force_on(validator)
    hooks._start(validator, model=None)
    gain, pad_top = 0.32, 16  # 200 px wide -> 64; 100 px high -> 32, padded by 16 above and below
    x1, y1, side = 60.0, 40.0, 10.0  # original pixels
    cx, cy, w = (x1 + side / 2) * gain, (y1 + side / 2) * gain + pad_top, side * gain
    batch = {
        "img": torch.zeros(1, 3, 64, 64),
        "batch_idx": torch.zeros(1),
        "cls": torch.zeros(1, 1),
        "bboxes": torch.tensor([[cx / 64, cy / 64, w / 64, w / 64]]),
        "ori_shape": [(100, 200)],
        "ratio_pad": [((gain, gain), (0, pad_top))],
        "im_file": ["a.jpg"],
    }
    pred = {
        "bboxes": torch.tensor([[cx - w / 2, cy - w / 2, cx + w / 2, cy + w / 2]]),
        "conf": torch.tensor([0.8]),
        "cls": torch.zeros(1),
    }
    hooks._on_update(validator, [pred], batch)
    gt, preds, images = getattr(validator, hooks._STATE).arrays()
    assert images == 1
    np.testing.assert_allclose(gt, [[0, 0, x1, y1, x1 + side, y1 + side]], atol=1e-3)
    np.testing.assert_allclose(preds, [[0, 0, 0.8, x1, y1, x1 + side, y1 + side]], atol=1e-3)
    r = tiny_ap(gt, preds, images)
    assert (r["AP_vt"], r["AP_t"]) == (-1.0, 1.0)


def test_switches(monkeypatch):
    """hsfpn-yolo models (HS-FPN blocks, or `hsfpn_yolo: true` in a block-free YAML) are on by default, stock models
    off; the environment variable overrides either way."""
    from ultralytics.nn.tasks import DetectionModel

    hsfpn, path, plain = (
        DetectionModel(str(y), verbose=False)
        for y in (CFG / "yolov8n-hsfpn.yaml", CFG / "yolov8n-finepath.yaml", "yolov8n.yaml")
    )
    assert is_hsfpn_model(path) and is_hsfpn_model(
        type("AutoBackend", (), {"backend": type("B", (), {"model": path})})()
    )
    validator = type("V", (), {})()
    monkeypatch.delenv(hooks.ENV_VAR, raising=False)
    assert is_hsfpn_model(hsfpn) and not is_hsfpn_model(plain) and not is_hsfpn_model(None)
    assert hooks._wanted(validator, hsfpn) and not hooks._wanted(validator, plain)
    hooks._force_on(validator)
    assert hooks._wanted(validator, plain)
    monkeypatch.setenv(hooks.ENV_VAR, "0")
    assert not hooks._wanted(validator, hsfpn) and not hooks._wanted(validator, plain)
    monkeypatch.setenv(hooks.ENV_VAR, "1")
    assert hooks._wanted(type("V", (), {})(), plain)


def test_install_is_idempotent():
    """Registering twice adds each default callback once."""
    from ultralytics.utils.callbacks.base import default_callbacks

    register()
    register()
    assert default_callbacks["on_val_start"].count(hooks.on_val_start) == 1
    assert default_callbacks["on_val_end"].count(hooks.on_val_end) == 1


# End to end -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_yaml(tmp_path_factory) -> Path:
    """Write a 4-image 96x64 detection dataset of coloured squares (train = val) and return its YAML."""
    import cv2

    root = tmp_path_factory.mktemp("squares")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    for i, scene in enumerate(SCENES):
        img = np.full((64, 96, 3), 127, np.uint8)
        rows = []
        for c, x, y, s in scene:
            img[y : y + s, x : x + s] = CLASS_COLOURS[c]
            rows.append(f"{c} {(x + s / 2) / 96:.6f} {(y + s / 2) / 64:.6f} {s / 96:.6f} {s / 64:.6f}")
        cv2.imwrite(str(root / "images" / f"im{i}.png"), img)
        (root / "labels" / f"im{i}.txt").write_text("\n".join(rows) + "\n")
    yaml = root / "squares.yaml"
    yaml.write_text(f"path: {root}\ntrain: images\nval: images\nnames:\n  0: red\n  1: blue\n")
    return yaml


def _read_csv(file: Path) -> list[dict]:
    """Return the rows of a CSV file."""
    with file.open(newline="") as f:
        return list(csv.DictReader(f))


def test_model_val_reports_tiny_metrics(data_yaml, tmp_path, monkeypatch):
    """`model.val()` (rect batches, then square ones) on a plain model with HSFPN_TINY_METRICS=1 reports the metrics."""
    from ultralytics import YOLO

    register()
    monkeypatch.setenv(hooks.ENV_VAR, "1")
    args = dict(data=str(data_yaml), imgsz=64, batch=2, device="cpu", plots=False, project=str(tmp_path), name="v")
    metrics = YOLO("yolov8n.yaml").val(**args, exist_ok=True)
    run = Path(metrics.save_dir)
    report = json.loads((run / JSON_NAME).read_text())
    assert metrics.tiny == {k: report[k] for k in KEYS}  # returned and saved alike
    assert all(metrics.tiny[f"AP_{k}"] >= 0 for k in ("vt", "t", "s", "m"))  # no -1: every size range holds objects
    assert report["instances"] == {"all": 10, "vt": 3, "t": 3, "s": 3, "m": 1, "other": 0} and report["images"] == 4
    assert len(_read_csv(run / CSV_NAME)) == 1

    metrics = YOLO("yolov8n.yaml").val(**args, exist_ok=True, rect=False)  # square letterbox, same run folder
    assert [r["val"] for r in _read_csv(run / CSV_NAME)] == ["1", "2"]
    report = json.loads((run / JSON_NAME).read_text())  # replaced by the latest validation
    assert metrics.tiny == {k: report[k] for k in KEYS}
    assert report["instances"]["all"] == 10 and report["images"] == 4


def test_switched_off_and_opt_in(data_yaml, tmp_path, monkeypatch):
    """Without the switch a plain model reports nothing; `enable_tiny_metrics` opts one YOLO object in."""
    from ultralytics import YOLO

    register()
    monkeypatch.delenv(hooks.ENV_VAR, raising=False)
    args = dict(data=str(data_yaml), imgsz=64, batch=4, device="cpu", plots=False, project=str(tmp_path))
    metrics = YOLO("yolov8n.yaml").val(**args, name="off")
    assert not hasattr(metrics, "tiny") and not (Path(metrics.save_dir) / JSON_NAME).exists()
    metrics = enable_tiny_metrics(YOLO("yolov8n.yaml")).val(**args, name="on", save_json=True)
    report = json.loads((Path(metrics.save_dir) / JSON_NAME).read_text())
    assert metrics.tiny == {k: report[k] for k in KEYS} and report["instances"]["all"] == 10


@pytest.mark.slow
def test_training_writes_one_row_per_validation(data_yaml, tmp_path, monkeypatch):
    """One training epoch gives a row for the epoch's validation and one for the final validation of best.pt."""
    from ultralytics import YOLO

    register()
    monkeypatch.setenv(hooks.ENV_VAR, "1")
    model = YOLO("yolov8n.yaml")
    model.train(
        data=str(data_yaml),
        epochs=1,
        imgsz=64,
        batch=4,
        device="cpu",
        plots=False,
        workers=0,
        amp=False,
        project=str(tmp_path),
        name="t",
        val=True,
        warmup_epochs=0,
    )
    run = Path(model.trainer.save_dir)
    assert [r["mode"] for r in _read_csv(run / CSV_NAME)] == ["train", "val"]
    assert set(model.metrics.tiny) == set(KEYS)


def test_yolo_val_command_prints_size_line(data_yaml, tmp_path):
    """The stock `yolo val` executable (the package registers itself at start-up) prints the size-range line."""
    args = ["val", "model=yolov8n.yaml", f"data={data_yaml}", "imgsz=64", "batch=2", "device=cpu", "plots=False"]
    args += [f"project={tmp_path}", "name=cli"]
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "cfg"), "HSFPN_TINY_METRICS": "1", "YOLO_OFFLINE": "1"}
    out = subprocess.run([str(BIN / "yolo"), *args], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    report = json.loads((tmp_path / "cli" / JSON_NAME).read_text())
    assert format_line(report, report["instances"]) in log, log[-3000:]  # the line printed is the one saved
    assert report["instances"] == {"all": 10, "vt": 3, "t": 3, "s": 3, "m": 1, "other": 0}
    assert [r["mode"] for r in _read_csv(tmp_path / "cli" / CSV_NAME)] == ["val"]


# Dense frames -----------------------------------------------------------------------------------------------------


def test_cap_detections_keeps_the_best_per_image():
    """Each image keeps its max_det highest-scoring predictions, whatever the order they come in."""
    from hsfpn_yolo.metrics.tiny import cap_detections

    pred = np.array([[1, 0, c, 0, 0, 1, 1] for c in (0.2, 0.9, 0.5)] + [[0, 0, c, 0, 0, 1, 1] for c in (0.1, 0.3, 0.7)])
    kept = cap_detections(pred, 2)
    assert kept[:, [0, 2]].tolist() == [[0, 0.7], [0, 0.3], [1, 0.9], [1, 0.5]]
    assert len(cap_detections(pred, 1500)) == 6


@pytest.mark.parametrize("max_det, warned", [(5, True), (1500, False)])
def test_validation_warns_on_frames_denser_than_max_det(tmp_path, monkeypatch, max_det, warned):
    """An image with more objects (8) than max_det: the warning gives the count of such images and AI-TOD's cap."""
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils import LOGGER

    monkeypatch.delenv(hooks.ENV_VAR, raising=False)
    messages = []
    monkeypatch.setattr(LOGGER, "warning", lambda msg, *a, **k: messages.append(str(msg)))
    validator = DetectionValidator(save_dir=tmp_path, args={"task": "detect", "max_det": max_det})
    hooks.on_val_start(validator)
    hooks._force_on(validator)
    hooks._start(validator, model=None)
    dense = _boxes(*((0, 10 * i, 10, 5) for i in range(8)))[:, 1:]
    sparse = _boxes((0, 10, 10, 5), (0, 30, 10, 5))[:, 1:]
    collector = getattr(validator, hooks._STATE)
    found = dense[:max_det]  # Ultralytics' NMS hands over at most max_det boxes per image
    collector.add(dense, np.c_[found[:, :1], np.full(len(found), 0.9), found[:, 1:]])
    collector.add(sparse, np.c_[sparse[:, :1], np.full(2, 0.9), sparse[:, 1:]])
    hooks.on_val_end(validator)
    # 7 of 10 objects found at precision 1: recall 0.7, AP50 about 0.7 on COCO's 101 recall points; all found: 1
    assert validator.metrics.tiny["AP50"] == pytest.approx(0.7 if warned else 1.0, abs=0.015)
    warning = (
        "1 of 2 images hold more ground-truth objects than max_det=5, so their recall and tiny-object AP are capped"
    )
    assert [m for m in messages if warning in m and "max_det=1500" in m] == ([messages[0]] if warned else [])
    assert len(messages) == int(warned)
