"""Tiny-object AP of oriented boxes (OBB): rotated IoU and AP with known answers, and `yolo obb val` reporting it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hsfpn_yolo.data import synth
from hsfpn_yolo.metrics import KEYS, enable_tiny_metrics, hooks, rotated_iou, size_counts_obb, tiny_ap, tiny_ap_obb
from hsfpn_yolo.metrics.obb import hull_xyxy
from hsfpn_yolo.metrics.report import JSON_NAME, format_line
from hsfpn_yolo.register import register
from hsfpn_yolo.sizes import BUCKETS, OTHER
from tests.fresh_user import fresh_user, output, run

DEG = math.pi / 180
BUCKET_KEYS = tuple(f"AP_{k}" for k in BUCKETS)


def _preds(conf: float, *boxes: list[float]) -> np.ndarray:
    """Return prediction rows [image 0, class 0, conf, cx, cy, w, h, angle] of xywhr BOXES, all with CONF."""
    return np.array([[0, 0, conf, *b] for b in boxes], dtype=float).reshape(-1, 8)


def _gts(*boxes: list[float]) -> np.ndarray:
    """Return ground truth rows [image 0, class 0, cx, cy, w, h, angle] of xywhr BOXES."""
    return np.array([[0, 0, *b] for b in boxes], dtype=float).reshape(-1, 7)


def _xyxy(rows: np.ndarray, box: int) -> np.ndarray:
    """Return ROWS with their xywhr box (from column BOX on) replaced by its axis-aligned hull in xyxy."""
    return np.c_[rows[:, :box], hull_xyxy(rows[:, box:])]


# Rotated IoU ------------------------------------------------------------------------------------------------------


def test_rotated_iou_known_values():
    """Identical boxes 1; a square against itself turned 45° 1/√2; disjoint 0; shifted half a width 1/3."""
    a = 10.0
    square = [50, 50, a, a, 0.3]
    # Side a and its 45° copy: the intersection is the regular octagon of area 2(√2-1)a², so
    # IoU = 2(√2-1)a² / (2a² - 2(√2-1)a²) = (√2-1)/(2-√2) = 1/√2 = 0.70711
    octagon = 2 * (math.sqrt(2) - 1) * a**2
    assert octagon / (2 * a**2 - octagon) == pytest.approx(1 / math.sqrt(2))
    # A 10x4 box at 30° shifted by half its width along its own axis: overlap 5x4 = 20, union 60, IoU 1/3
    thin = [0, 0, 10, 4, 30 * DEG]
    shifted = [5 * math.cos(30 * DEG), 5 * math.sin(30 * DEG), 10, 4, 30 * DEG]
    iou = rotated_iou([square, thin], [square, [50, 50, a, a, 0.3 + 45 * DEG], [200, 200, a, a, 0.3], shifted])
    np.testing.assert_allclose(iou[0, :3], [1, 1 / math.sqrt(2), 0], atol=1e-9)
    assert iou[1, 3] == pytest.approx(1 / 3, abs=1e-9)
    assert iou.shape == (2, 4) and rotated_iou(np.zeros((0, 5)), [square]).shape == (0, 1)


def test_rotated_box_against_its_hull_is_not_one():
    """A 10x2 box at 45° lies inside its hull, a (12/√2)² = 72 px² square: IoU = 20 / 72 = 5/18, not 1."""
    box = np.array([[30, 40, 10, 2, 45 * DEG]])
    hull = hull_xyxy(box)
    np.testing.assert_allclose(
        hull, [[30 - 6 / math.sqrt(2), 40 - 6 / math.sqrt(2), 30 + 6 / math.sqrt(2), 40 + 6 / math.sqrt(2)]]
    )
    hull_xywhr = np.c_[(hull[:, :2] + hull[:, 2:]) / 2, hull[:, 2:] - hull[:, :2], [0]]
    assert rotated_iou(box, hull_xywhr)[0, 0] == pytest.approx(5 / 18, abs=1e-9)


# AP -----------------------------------------------------------------------------------------------------------------

# One image, one class, a ground truth in each size bucket (by sqrt(w*h)), each rotated:
G_VT = [20, 20, 12, 3, 30 * DEG]  # area 36, sqrt 6: very tiny
G_T = [60, 20, 20, 5, 60 * DEG]  # area 100, sqrt 10: tiny
G_S = [20, 80, 20, 20, 45 * DEG]  # area 400, sqrt 20: small
G_M = [100, 100, 40, 40, 10 * DEG]  # area 1600, sqrt 40: medium
# The same thin box turned the other way (-30°): its hull is G_VT's hull, but the two strips cross at 60°, overlapping
# in a parallelogram of 3·3/sin 60° = 6√3 px², so IoU = 6√3 / (72 - 6√3) = 0.169
CROSSED = [20, 20, 12, 3, -30 * DEG]


def _hand_case() -> tuple[np.ndarray, np.ndarray]:
    """Return the ground truth above and five predictions by descending score."""
    pred = np.r_[
        _preds(0.99, [150, 20, 12, 3, 30 * DEG]),  # false positive, far from everything; area 36 (very tiny)
        _preds(0.9, G_M),  # exact: IoU 1
        _preds(0.8, [20, 80, 20, 20, 0]),  # G_S turned back to 0°: IoU 1/√2 = 0.707, a match up to threshold 0.70
        _preds(0.7, G_T),  # exact: IoU 1
        _preds(0.6, CROSSED),  # IoU 0.169 with G_VT: a false positive; area 36 (very tiny)
    ]
    return _gts(G_VT, G_T, G_S, G_M), pred


def test_hand_computed_ap():
    """AP, AP50, AP75 and AP per bucket against hand computation (COCO: 101 recall points, precision envelope).

    "all", IoU 0.50-0.70 (5 thresholds): FP TP TP TP FP; recall .25 .5 .75 at precision 1/2, 2/3, 3/4; the envelope
    is 3/4 up to recall .75: 76 of 101 points at 3/4, AP = 57/101 = 0.5644 (= AP50).
    "all", IoU 0.75-0.95 (5 thresholds): the 0.707 match fails: FP TP FP TP FP; recall .25 .5 at precision 1/2, 1/2;
    51 points at 1/2, AP = 25.5/101 = 0.2525 (= AP75). AP = mean of the ten = 41.25/101 = 0.4084.
    Per bucket (ground truth of other sizes ignored, with the detections they match, and unmatched detections whose
    own area lies outside the bucket): very tiny: two false positives of area 36 and G_VT missed: AP_vt = 0; tiny:
    one exact match: AP_t = 1; small: a match at 0.50-0.70, a false positive (area 400) from 0.75: AP_s = 5/10 = 0.5;
    medium: one exact match: AP_m = 1.
    """
    gt, pred = _hand_case()
    r = tiny_ap_obb(gt, pred)
    assert r["AP50"] == pytest.approx(57 / 101)
    assert r["AP75"] == pytest.approx(25.5 / 101)
    assert r["AP"] == pytest.approx(41.25 / 101)
    assert tuple(r[k] for k in BUCKET_KEYS) == pytest.approx((0.0, 1.0, 0.5, 1.0))
    assert size_counts_obb(gt) == {"all": 4, "vt": 1, "t": 1, "s": 1, "m": 1, "other": 0}


def test_rotation_decides_the_match():
    """The crossed thin box shares G_VT's hull: axis-aligned evaluation of the hulls matches it exactly (AP 1), the
    rotated one does not (IoU 0.169 < 0.5: AP 0)."""
    gt, pred = _gts(G_VT), _preds(0.9, CROSSED)
    assert rotated_iou(G_VT, CROSSED)[0, 0] == pytest.approx(6 * math.sqrt(3) / (72 - 6 * math.sqrt(3)))
    assert tiny_ap(_xyxy(gt, 2), _xyxy(pred, 3))["AP50"] == 1.0
    r = tiny_ap_obb(gt, pred)
    assert (r["AP"], r["AP50"], r["AP_vt"]) == (0.0, 0.0, 0.0)


def test_empty_inputs():
    """No predictions: 0 where objects exist, -1 elsewhere; no ground truth: -1 everywhere."""
    r = tiny_ap_obb(_gts(G_VT, G_S), np.zeros((0, 8)))
    assert (r["AP"], r["AP_vt"], r["AP_t"], r["AP_s"], r["AP_m"]) == (0.0, 0.0, -1.0, 0.0, -1.0)
    assert tiny_ap_obb(np.zeros((0, 7)), _preds(0.9, G_VT)) == dict.fromkeys(KEYS, -1.0)
    assert tiny_ap_obb(np.zeros((0, 7)), np.zeros((0, 8)), num_images=3) == dict.fromkeys(KEYS, -1.0)


def test_unrotated_boxes_give_the_axis_aligned_answer():
    """With every angle 0, `tiny_ap_obb` equals `tiny_ap` on the same boxes as xyxy (3 images, 2 classes, jittered
    matches at every IoU, false positives, all four buckets)."""
    rng = np.random.default_rng(0)
    n = 40
    sides = rng.uniform(3, 60, (n, 2))
    gt = np.c_[rng.integers(0, 3, n), rng.integers(0, 2, n), rng.uniform(0, 400, (n, 2)), sides, np.zeros(n)]
    found = gt[rng.random(n) < 0.8]
    jitter = found[:, 4:6] * rng.uniform(-0.3, 0.3, (len(found), 2))
    moved = np.c_[
        found[:, :2], found[:, 2:4] + jitter, found[:, 4:6] * rng.uniform(0.8, 1.2, (len(found), 2)), 0 * jitter[:, 0]
    ]
    false = np.c_[
        rng.integers(0, 3, 10),
        rng.integers(0, 2, 10),
        rng.uniform(0, 400, (10, 2)),
        rng.uniform(3, 60, (10, 2)),
        np.zeros(10),
    ]
    boxes = np.r_[moved, false]
    pred = np.c_[boxes[:, :2], rng.random(len(boxes)), boxes[:, 2:]]
    rotated, aligned = tiny_ap_obb(gt, pred, 3), tiny_ap(_xyxy(gt, 2), _xyxy(pred, 3), 3)
    assert min(aligned.values()) > 0 and max(aligned.values()) < 1  # a case that tests something
    assert rotated == pytest.approx(aligned, abs=1e-9)


def test_detection_area_is_the_rotated_area():
    """COCO ignores an unmatched detection outside a bucket's area range: a large false positive does not lower AP_vt
    (as for `tiny_ap`); a thin 16x2 one at 45° is very tiny by its own area (32 px²), though its hull (162 px²) is
    tiny, so it counts against AP_vt."""
    gt = _gts([20, 20, 6, 4, 20 * DEG])  # area 24: very tiny
    exact, large = _preds(0.5, gt[0, 2:]), _preds(0.9, [100, 100, 40, 30, 30 * DEG])  # area 1200: medium
    r = tiny_ap_obb(gt, np.r_[large, exact])
    # very tiny: the large FP is ignored, AP_vt 1; all: FP then TP, precision 1/2 at every recall point
    assert (r["AP_vt"], r["AP"]) == (1.0, pytest.approx(0.5))
    assert (r["AP_t"], r["AP_s"], r["AP_m"]) == (-1.0, -1.0, -1.0)  # no ground truth of these sizes
    flat = tiny_ap(
        _xyxy(_gts([20, 20, 6, 4, 0]), 2),
        _xyxy(np.r_[_preds(0.9, [100, 100, 40, 30, 0]), _preds(0.5, [20, 20, 6, 4, 0])], 3),
    )
    assert (flat["AP_vt"], flat["AP"]) == (1.0, pytest.approx(0.5))
    thin = _preds(0.8, [60, 60, 16, 2, 45 * DEG])
    r = tiny_ap_obb(gt, np.r_[large, thin, exact])
    # very tiny: the thin FP (area 32) then the TP: AP_vt 1/2; all: FP FP TP: 1/3
    assert (r["AP_vt"], r["AP"]) == (pytest.approx(0.5), pytest.approx(1 / 3))


def test_sizes_use_the_rotated_area():
    """A 16x2 box at 45° (sqrt area 5.7 px) is very tiny although its hull is 12.7 px a side."""
    gt = _gts([40, 40, 16, 2, 45 * DEG])
    assert size_counts_obb(gt) == {"all": 1, "vt": 1, "t": 0, "s": 0, "m": 0, "other": 0}
    r = tiny_ap_obb(gt, _preds(0.9, gt[0, 2:]))
    assert tuple(r[k] for k in BUCKET_KEYS) == (1.0, -1.0, -1.0, -1.0)


# Validator hook -----------------------------------------------------------------------------------------------------


def test_obb_boxes_are_collected_in_original_pixels(tmp_path, monkeypatch):
    """A 20x6 box at 0.5 rad in a 100x200 image letterboxed to 64x64 (3.5 px there, very tiny) is collected as xywhr
    in original pixels (sqrt area 11: tiny); segmentation validators stay unhooked."""
    from ultralytics.models.yolo.obb import OBBValidator
    from ultralytics.models.yolo.segment import SegmentationValidator

    monkeypatch.delenv(hooks.ENV_VAR, raising=False)
    validator = OBBValidator(save_dir=tmp_path, args={"task": "obb"})
    hooks.on_val_start(validator)
    hooks._force_on(validator)
    hooks._start(validator, model=None)
    gain, pad_top = 0.32, 16  # 200 px wide -> 64; 100 px high -> 32, padded by 16 above and below
    box = [80.0, 50.0, 20.0, 6.0, 0.5]  # original pixels
    net = [box[0] * gain, box[1] * gain + pad_top, box[2] * gain, box[3] * gain, box[4]]
    batch = {
        "img": torch.zeros(1, 3, 64, 64),
        "batch_idx": torch.zeros(1),
        "cls": torch.ones(1, 1),
        "bboxes": torch.tensor([[net[0] / 64, net[1] / 64, net[2] / 64, net[3] / 64, net[4]]]),
        "ori_shape": [(100, 200)],
        "ratio_pad": [((gain, gain), (0, pad_top))],
        "im_file": ["a.jpg"],
    }
    pred = {"bboxes": torch.tensor([net]), "conf": torch.tensor([0.8]), "cls": torch.ones(1)}
    hooks._on_update(validator, [pred], batch)
    gt, preds, images = getattr(validator, hooks._STATE).arrays()
    np.testing.assert_allclose(gt, [[0, 1, *box]], atol=1e-4)
    np.testing.assert_allclose(preds, [[0, 1, 0.8, *box]], atol=1e-4)
    assert size_counts_obb(gt)["t"] == 1 and tiny_ap_obb(gt, preds, images)["AP_t"] == 1.0

    segment = SegmentationValidator(save_dir=tmp_path, args={"task": "segment"})
    hooks.on_val_start(segment)
    assert not getattr(segment, "_hsfpn_tiny_hooked", False)


# End to end -------------------------------------------------------------------------------------------------------


def _expected_counts(root: Path) -> dict[str, int]:
    """Return the oriented val boxes of a synthetic set by AI-TOD size (the generator's own count) and "all"."""
    hist = synth.size_histogram(root, "val")
    counts = {k: hist[name] for k, name in zip(BUCKETS, synth.SIZE_BUCKETS)}
    lines = sum(len(f.read_text().splitlines()) for f in (root / "labels" / "val").glob("*.txt"))
    return {"all": lines, **counts, OTHER: hist[OTHER]}


@pytest.fixture(scope="module")
def obb_set(tmp_path_factory) -> Path:
    """Generate 4 oriented-box val images at 256 px (about 26 boxes, very tiny to small) and return the set's root."""
    root = tmp_path_factory.mktemp("obb") / "set"
    synth.generate(root, train=1, val=4, imgsz=256, obb=True, progress=False)
    return root


def test_model_val_reports_obb_tiny_metrics(obb_set, tmp_path, monkeypatch):
    """`model.val()` of a stock OBB model opted in with `enable_tiny_metrics`: the values and the counts per size of
    the oriented val boxes (256 px images validated at 256 px: no rescaling) match the label files."""
    from ultralytics import YOLO

    register()
    monkeypatch.delenv(hooks.ENV_VAR, raising=False)
    root = obb_set
    args = {"data": str(root / "data.yaml"), "imgsz": 256, "batch": 2, "device": "cpu", "plots": False}
    metrics = enable_tiny_metrics(YOLO("yolov8n-obb.yaml")).val(**args, project=str(tmp_path), name="v")
    report = json.loads((Path(metrics.save_dir) / JSON_NAME).read_text())
    assert set(metrics.tiny) == set(KEYS) and all(-1 <= v <= 1 for v in metrics.tiny.values())
    assert metrics.tiny == {k: report[k] for k in KEYS} and report["images"] == 4
    expected = _expected_counts(root)
    assert expected["all"] > 10 and metrics.tiny_counts == report["instances"] == expected


def test_ground_truth_as_predictions_scores_one_through_the_validator(obb_set, tmp_path, monkeypatch):
    """Through a real OBB validation letterboxed to half size (256 -> 128 px), predictions equal to the batch's own
    oriented ground truth give AP 1 in every bucket holding objects (-1 in the others): ground truth and predictions
    come back to the same original pixels, and the rotated IoU of Ultralytics' own xywhr boxes is 1."""
    from ultralytics import YOLO
    from ultralytics.models.yolo.obb import OBBValidator

    stock = OBBValidator.update_metrics

    def oracle(self, preds: list[dict], batch: dict) -> None:
        """Replace the model's predictions by the batch's ground truth, in network-input pixels (in place: the hook
        reads the list it handed over)."""
        scale = torch.tensor(batch["img"].shape[2:])[[1, 0, 1, 0]]
        for si in range(len(preds)):
            idx = batch["batch_idx"] == si
            boxes = batch["bboxes"][idx].clone()
            boxes[:, :4] *= scale
            preds[si] = {"bboxes": boxes, "conf": torch.ones(len(boxes)), "cls": batch["cls"][idx].view(-1)}
        stock(self, preds, batch)

    register()
    monkeypatch.setattr(OBBValidator, "update_metrics", oracle)
    monkeypatch.setenv(hooks.ENV_VAR, "1")
    args = {"data": str(obb_set / "data.yaml"), "imgsz": 128, "batch": 2, "device": "cpu", "plots": False}
    metrics = YOLO("yolov8n-obb.yaml").val(**args, project=str(tmp_path), name="oracle")
    expected = _expected_counts(obb_set)
    assert metrics.tiny_counts == expected
    assert metrics.tiny == {
        "AP": 1.0,
        "AP50": 1.0,
        "AP75": 1.0,
        **{f"AP_{k}": 1.0 if expected[k] else -1.0 for k in BUCKETS},
    }


def test_yolo_obb_val_command_prints_the_size_line(tmp_path):
    """`yolo obb val` of a finepath OBB model (on by default: `hsfpn_yolo: true`) on the built-in oriented set, by its
    bare name, as a new user in an empty folder: the printed line is the saved one, the counts are the labels'."""
    cwd, env = fresh_user(tmp_path)
    env.pop(hooks.ENV_VAR, None)
    env.update(HSFPN_SYNTH_TRAIN="1", HSFPN_SYNTH_VAL="2", HSFPN_SYNTH_IMGSZ="128")
    argv = ["yolo", "obb", "val", "model=yolo26n-finepath-obb.yaml", "data=tiny-synth-obb.yaml", "imgsz=128"]
    argv += ["batch=2", "device=cpu", "plots=False", f"project={tmp_path / 'runs'}", "name=cli"]
    proc = run(argv, cwd, env)
    log = output(proc)
    assert proc.returncode == 0, log[-3000:]
    report = json.loads((tmp_path / "runs" / "cli" / JSON_NAME).read_text())
    assert format_line(report, report["instances"]) in log, log[-3000:]
    assert report["instances"] == _expected_counts(tmp_path / "datasets" / "tiny-synth-obb")
