"""`hsfpn-yolo doctor`: object sizes at the training size, candidate anchors under the installed assigner, tiling,
NWD's constant, the advice rule and its evidence, the command line as a user runs it, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from ultralytics.utils.tal import RotatedTaskAlignedAssigner, TaskAlignedAssigner, make_anchors

import hsfpn_yolo
from hsfpn_yolo.cli import main
from hsfpn_yolo.data.aitod import convert_aitod
from hsfpn_yolo.data.visdrone import convert_visdrone
from hsfpn_yolo.diagnosis import advice, doctor, evidence
from hsfpn_yolo.diagnosis.anchors import candidate_counts, enlargement, model_strides
from hsfpn_yolo.diagnosis.geometry import box_size, canvas_boxes
from hsfpn_yolo.diagnosis.report import table
from tests.fresh_user import fresh_user, output, run
from tests.helpers import run_python
from tests.test_convert import make_aitod, make_visdrone

ROOT = Path(__file__).resolve().parents[1]
P3, P2 = (8, 16, 32), (4, 8, 16, 32)

# Six square boxes on a 128 px frame trained at 128 (scale 1, no padding): (centre, side) in pixels, one per size
# bucket. Anchor centres per axis: stride 4 at 2+4k, stride 8 at 4+8k, stride 16 at 8+16k, stride 32 at 16+32k; no box
# edge falls on an anchor. A count is (anchors inside per axis)² summed over the levels, e.g. the 10 px box at 75.5
# spans 70.5-80.5: stride 4 {74, 78} -> 4, stride 8 {76} -> 1, stride 16 {72} -> 1, stride 32 {80} -> 1.
HAND = [((13, 13), 1), ((45, 45), 4), ((75.5, 75.5), 10), ((100.5, 20.5), 20), ((40.5, 100.5), 40), ((64.5, 64.5), 70)]
PLAIN = {P3: [0, 1, 3, 10, 35, 84], P2: [0, 2, 7, 35, 135, 408]}
# With the installed enlargement (sides under 16 px widened to 16 at P3-P5, under 8 px to 8 at P2): the 1 px box spans
# 5-21 at P3 (stride 8 {12, 20} -> 4, 16 {8} -> 1, 32 {16} -> 1) and 9-17 at P2 (4 {10, 14} -> 4, 8 {12}, 32 {16})
ENLARGED = {P3: [6, 6, 6, 10, 35, 84], P2: [6, 6, 7, 35, 135, 408]}


def write_image(path: Path, w: int, h: int) -> None:
    """Write a grey W x H PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), 100, np.uint8))


def write_set(root: Path, frames: dict[str, tuple[int, int, list[str] | None]]) -> Path:
    """Write a dataset: per frame name its width, height and label rows (None: no label file); return its YAML."""
    for name, (w, h, rows) in frames.items():
        write_image(root / "images" / "train" / f"{name}.png", w, h)
        if rows is not None:
            (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
            (root / "labels" / "train" / f"{name}.txt").write_text("".join(r + "\n" for r in rows))
    data = root / "data.yaml"
    data.write_text(
        yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/train", "names": {0: "a"}})
    )
    return data


def row(cls: int, x1: float, y1: float, x2: float, y2: float, w: int, h: int) -> str:
    """Return a YOLO row for a pixel box (exact for the binary fractions used here)."""
    return f"{cls} {(x1 + x2) / 2 / w:.10f} {(y1 + y2) / 2 / h:.10f} {(x2 - x1) / w:.10f} {(y2 - y1) / h:.10f}"


def hand_rows() -> list[str]:
    """Return the label rows of HAND on a 128 px frame."""
    return [row(0, x - s / 2, y - s / 2, x + s / 2, y + s / 2, 128, 128) for (x, y), s in HAND]


@pytest.fixture(scope="module")
def hand_set(tmp_path_factory) -> Path:
    """Return the YAML of the hand-made set: HAND on one 128 px frame, plus one frame without boxes."""
    root = tmp_path_factory.mktemp("hand")
    return write_set(root, {"a": (128, 128, hand_rows()), "b": (96, 64, [])})


@pytest.fixture(scope="module")
def hand_report(hand_set) -> dict:
    """Return the doctor's report on the hand-made set at 128 px."""
    return doctor(hand_set, imgsz=128, models=["yolov8n", "yolov8n-p2"], progress=False)


def pixel_boxes() -> np.ndarray:
    """Return HAND as x1 y1 x2 y2 pixel boxes."""
    return np.array([[x - s / 2, y - s / 2, x + s / 2, y + s / 2] for (x, y), s in HAND], np.float64)


# --------------------------------------------------------------------------------------------- anchors, by hand
def test_strides_come_from_the_built_models():
    """The strides are those Ultralytics builds for each model YAML, packaged or stock."""
    assert model_strides("yolov8n") == P3
    assert model_strides("yolov8n-p2") == model_strides("yolov8n-finepath-p2") == P2
    assert model_strides("yolo26n-obb") == P3


@pytest.mark.parametrize("strides", [P3, P2])
def test_enlargement_probe_reads_the_installed_rule(strides):
    """The probe measures the rule the installed assigner applies; where it keeps it in `stride_val`, they agree."""
    found = enlargement(strides)
    stock = TaskAlignedAssigner(stride=list(strides))
    assert found["applies"]
    if hasattr(stock, "stride_val"):  # recent 8.4 releases: sides under stride_val grow to stride_val
        assert found["below"] == found["to"] == stock.stride_val == strides[1]


@pytest.mark.parametrize("strides", [P3, P2])
def test_candidate_counts_by_hand(strides):
    """Each box's candidates are the anchor centres counted by hand, plain and with the installed enlargement."""
    boxes = pixel_boxes()
    assert candidate_counts(boxes, strides, 128, enlarge=False).tolist() == PLAIN[strides]
    assert enlargement(strides) == {"applies": True, "below": float(strides[1]), "to": float(strides[1])}
    assert candidate_counts(boxes, strides, 128, enlarge=True).tolist() == ENLARGED[strides]


def installed_counts(boxes: np.ndarray, strides: tuple[int, ...], imgsz: int, enlarge: bool, obb: bool) -> np.ndarray:
    """Count candidates with one call of the installed select_candidates_in_gts over every anchor of the canvas."""
    feats = [torch.zeros(1, 1, imgsz // s, imgsz // s) for s in strides]
    points, stride = make_anchors(feats, torch.tensor(strides, dtype=torch.float32))
    cls = RotatedTaskAlignedAssigner if obb else TaskAlignedAssigner
    assigner = cls(topk=10, num_classes=1, stride=list(strides))
    gt = torch.from_numpy(boxes).float()[None]
    mask_gt = torch.full((1, len(boxes), 1), float(enlarge))
    return assigner.select_candidates_in_gts(points * stride, gt, mask_gt)[0].sum(-1).numpy()


@pytest.mark.parametrize("obb", [False, True], ids=["boxes", "oriented"])
@pytest.mark.parametrize("strides", [P3, P2])
def test_candidates_equal_the_installed_assigner_on_random_boxes(strides, obb):
    """On 1000 random boxes from 0.5 to 120 px anywhere on a 320 canvas, chunked counting equals one full call."""
    rng = np.random.default_rng(len(strides) + obb)
    centre = rng.uniform(0, 320, (1000, 2))
    side = np.exp(rng.uniform(math.log(0.5), math.log(120), (1000, 2)))
    boxes = np.c_[centre, side, rng.uniform(-1.6, 1.6, 1000)] if obb else np.c_[centre - side / 2, centre + side / 2]
    for enlarge in (False, True):
        ours = candidate_counts(boxes, strides, 320, enlarge)
        assert np.array_equal(ours, installed_counts(boxes, strides, 320, enlarge, obb))
    assert (ours > 0).all() and (candidate_counts(boxes, strides, 320, False) == 0).any()


# ------------------------------------------------------------------------------------------------ the report
def test_report_counts_by_hand(hand_report):
    """Sizes, shares and candidate histograms of the hand-made set, and NWD's constant (the mean size)."""
    r = hand_report
    assert r["frames"]["count"] == 2 and r["frames"]["background"] == 1 and r["boxes"]["count"] == 6
    assert {k: v["count"] for k, v in r["sizes"]["buckets"].items()} == {
        "<2": 1, "vt": 1, "t": 1, "s": 1, "m": 1, ">=64": 1
    }  # fmt: skip
    p3, p2 = r["models"]
    assert p3["no_candidate"] == {"plain": 1 / 6, "enlarged": 0.0}
    assert p3["below_finest_stride"] == 2 / 6 and p2["below_finest_stride"] == 1 / 6  # 1 and 4 px under 8; 1 under 4
    assert p3["candidates"]["plain"] == [1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 3]  # 0, 1, 3, then 10, 35, 84 in "10+"
    assert p3["candidates"]["enlarged"] == [0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 3]
    assert p2["candidates"]["plain"] == [1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 3]
    assert p3["buckets"]["vt"] == {
        "boxes": 1, "below_finest_stride": 1.0, "no_candidate_plain": 0.0, "no_candidate_enlarged": 0.0,
        "median_candidates": 6.0,
    }  # fmt: skip
    assert r["weighed"]["lacking_p3"] == r["weighed"]["lacking_p2"] == 1 / 6
    assert r["nwd"]["constant"] == pytest.approx(sum(s for _, s in HAND) / 6)
    assert r["tiling"] == {**r["tiling"], "applies": False, "large": 0}


def test_sizes_follow_the_letterbox_scale():
    """The long side goes to the training size, the frame is centred: a 20x10 box of a 200x100 frame at 100 is 10x5."""
    coords = np.array([[0.5, 0.5, 0.1, 0.1]])
    boxes = canvas_boxes(coords, np.array([[200, 100]]), 100)
    assert boxes.tolist() == [[45.0, 47.5, 55.0, 52.5]]  # 25 px of padding above, centre at 50
    assert box_size(boxes)[0] == pytest.approx(math.sqrt(50))


def test_tiling_by_hand(tmp_path):
    """A 1000x700 frame at 320: four 640 px tiles; the boxes whole, split and their sizes on tiles and resized."""
    w, h = 1000, 700  # windows x 0-640 and 360-1000, y 0-640 and 60-700
    rows = [
        row(0, 630, 100, 650, 120, w, h),  # half in the left tiles (cut), whole in the right ones
        row(0, 100, 200, 140, 240, w, h),  # whole in the two left tiles
        row(0, 300, 300, 700, 340, w, h),  # 85 % in each tile: four cut pieces, whole in none
    ]
    report = doctor(write_set(tmp_path, {"f": (w, h, rows)}), imgsz=320, progress=False)
    t = report["tiling"]
    assert (t["tiles"], t["pieces"], t["pieces_cut"]) == (4, 10, 6)
    assert (t["boxes"], t["whole"], t["split"], t["lost"]) == (3, 2, 1, 0)
    # at 320 the tiles are halved: cut 10x20 -> 7.1 px, 20 -> 10, 40 -> 20, 340x40 -> 58.3; resized x0.32: 6.4, 12.8,
    # 40.5
    assert {k: v["count"] for k, v in t["sizes_tiles"]["buckets"].items()} == {
        "<2": 0, "vt": 2, "t": 2, "s": 2, "m": 4, ">=64": 0
    }  # fmt: skip
    assert {k: v["count"] for k, v in t["sizes_resized"]["buckets"].items()} == {
        "<2": 0, "vt": 1, "t": 1, "s": 0, "m": 1, ">=64": 0
    }  # fmt: skip


def test_visdrone_fixture_through_the_converter(tmp_path):
    """The converted VisDrone fixture: a 100x50 frame with three boxes, a 64 px frame with one, an empty frame."""
    convert_visdrone(make_visdrone(tmp_path / "raw"), tmp_path / "out", progress=False)
    data = tmp_path / "out" / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(tmp_path / "out"), "train": "images", "val": "images", "nc": 10}))
    r = doctor(data, imgsz=128, progress=False)
    # x1.28: car 20x10 -> 18.1 px, pedestrian 10x10 -> 12.8, motor 5x5 -> 6.4; x2: bus 32x32 -> 64
    assert {k: v["count"] for k, v in r["sizes"]["buckets"].items()} == {
        "<2": 0, "vt": 1, "t": 1, "s": 1, "m": 0, ">=64": 1
    }  # fmt: skip
    assert (r["frames"]["count"], r["frames"]["background"], r["boxes"]["classes"]) == (3, 1, 4)
    assert (r["frames"]["scale_min"], r["frames"]["scale_median"], r["frames"]["scale_max"]) == (1.28, 2.0, 4.0)


def test_aitod_fixture_through_the_converter(tmp_path):
    """The converted AI-TOD fixture: a vehicle, a clipped ship and an airplane, all tiny at 96 px."""
    ann, images, _ = make_aitod(tmp_path / "raw")
    convert_aitod(ann, images, tmp_path / "out", progress=False)
    data = tmp_path / "out" / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(tmp_path / "out"), "train": "images", "val": "images", "nc": 8}))
    r = doctor(data, imgsz=96, progress=False)
    # x1.2: vehicle 16x8 -> 13.6 px, ship clipped to 10x10 -> 12; x3: airplane 3x4 -> 10.4
    assert r["sizes"]["buckets"]["t"]["count"] == r["boxes"]["count"] == 3
    assert r["frames"]["background"] == 1


def test_oriented_boxes(tmp_path):
    """Oriented labels: the rotated box's own area is its size, candidates come from the rotated assigner."""
    c, half = 64.0, 8.0  # a 16 x 4 px box at 45 degrees: size 8 px although its hull is about 14 px
    d = np.array([[half, 2], [-half, 2], [-half, -2], [half, -2]]) @ np.array([[1, 1], [-1, 1]]) / math.sqrt(2)
    corners = ((d + c) / 128).ravel()
    data = write_set(tmp_path, {"o": (128, 128, ["0 " + " ".join(f"{v:.8f}" for v in corners)])})
    r = doctor(data, imgsz=128, progress=False)
    assert r["task"] == "obb" and r["models"][0]["model"] == "yolo26n-obb"
    assert r["sizes"]["median"] == pytest.approx(8.0, abs=1e-3)
    assert r["assigner"]["function"] == "RotatedTaskAlignedAssigner.select_candidates_in_gts"
    assert not r["tiling"]["applies"] and r["nwd"]["constant"] is None


# ------------------------------------------------------------------------------------------ advice and evidence
def test_shipped_evidence_is_built_from_the_study_files():
    """evidence.json is what `evidence.build` computes from docs/study with `bench.stats` (regenerate it when the
    table is re-measured: python -m hsfpn_yolo.diagnosis.evidence --date YYYY-MM-DD)."""
    shipped = evidence.load()
    built = evidence.build(ROOT / shipped["study"], shipped["date"])
    assert built["comparisons"] == shipped["comparisons"], "stale evidence.json: regenerate it (see the docstring)"
    p2 = shipped["comparisons"]["p2"]
    assert p2["AP"]["verdict"] == "gain" and p2["regime"]["nbs"] == 8 and p2["regime"]["start"] == "scratch"
    assert shipped["comparisons"]["nwd"]["AP"]["verdict"] == "within noise"


def test_doctor_docs_show_the_shipped_evidence():
    """docs/doctor.md's evidence table is `python -m hsfpn_yolo.diagnosis.evidence --table` of the shipped file."""
    assert evidence.table(evidence.load()) in (ROOT / "docs" / "doctor.md").read_text(encoding="utf-8")


def facts(lacking_p3: float, very_tiny: float = 0.0, under16: float = 0.0) -> dict:
    """Return advice facts of a dataset whose frames all fit the training size."""
    frames = {"count": 10, "large": 0, "scale_median": 1.0}
    return {"task": "detect", "imgsz": 640, "frames": frames, "tiling": {"applies": False, "reason": "none larger"},
            "lacking_p3": lacking_p3, "lacking_p2": 0.0, "very_tiny": very_tiny, "under16": under16,
            "nwd_constant": 9.0}  # fmt: skip


def verdicts(**verdict: str) -> dict:
    """Return evidence where each given comparison has that AP verdict (AP_vt: noise)."""
    cell = {"diff": 0.01, "se": 0.01}
    return {"date": "2026-12-07", "comparisons": {
        k.replace("_", "-"): {"model": k, "baseline": "b", "AP": {**cell, "verdict": v},
                              "AP_vt": {**cell, "verdict": "within noise"}}
        for k, v in verdict.items()}}  # fmt: skip


@pytest.mark.parametrize(
    "lacking, p2, pick, says",
    [
        (0.30, "gain", "yolov8n-p2", "measured: p2 vs b"),
        (0.30, "within noise", "yolov8n", "the geometry argues for P2, the measurement shows no gain"),
        (0.05, "gain", "yolov8n", "under the 10% that argues for P2"),
    ],
)
def test_p2_needs_both_geometry_and_a_measured_gain(lacking, p2, pick, says):
    """A P2 head is recommended only where boxes lack P3 anchors and its measured gain is beyond noise."""
    a = advice.advise(facts(lacking), verdicts(p2=p2, finepath="within noise", finepath_p2="within noise"))
    assert a["model"]["pick"] == pick and says in a["model"]["reason"]


def test_nwd_is_not_recommended_on_noise():
    """Many small boxes argue for NWD's box term, but a measurement within noise keeps it off; a gain turns it on."""
    small = facts(0.0, under16=0.8)
    skip = advice.advise(small, verdicts(nwd="within noise", finepath="within noise"))["nwd"]
    assert skip["pick"] == "skip" and "the sizes argue for it, the measurement shows no gain" in skip["reason"]
    assert advice.advise(small, verdicts(nwd="gain", finepath="within noise"))["nwd"]["pick"] == "try"


def test_a_gain_counts_only_where_every_start_shows_it():
    """A fine-path AP gain from scratch alone does not make the doctor recommend it: the pretrained start must gain
    too; the reason prints both starts."""
    ev = verdicts(finepath="gain", hsfpn="within noise")
    fine = ev["comparisons"]["finepath"]
    fine["regime"] = {"start": "scratch"}
    assert advice.advise(facts(0.0), ev)["model"]["pick"] == "yolov8n-finepath"
    fine["more_starts"] = {"pretrained": {"AP": {"diff": 0.0, "se": 0.01, "verdict": "within noise"}}}
    p3 = advice.advise(facts(0.0), ev)["model"]
    assert p3["pick"] == "yolov8n" and "ΔAP +1.0 ± 1.0 (gain) scratch, +0.0 ± 1.0 (noise) pretrained" in p3["reason"]
    fine["more_starts"]["pretrained"]["AP"]["verdict"] = "gain"
    assert advice.advise(facts(0.0), ev)["model"]["pick"] == "yolov8n-finepath"

def test_nwd_advice_cites_the_measurement_on_the_picked_head():
    """Where the model advice is a P2 model, the NWD advice rests on NWD measured on yolov8n-p2, not on yolov8n."""
    small = facts(0.30, under16=0.8)
    both = verdicts(p2="gain", finepath_p2="within noise", nwd="gain", nwd_p2="within noise")
    a = advice.advise(small, both)
    assert a["model"]["pick"] == "yolov8n-p2" and a["nwd"]["evidence"] == ["nwd-p2"] and a["nwd"]["pick"] == "skip"
    p3 = advice.advise(facts(0.0, under16=0.8), verdicts(finepath="within noise", nwd="gain", nwd_p2="within noise"))
    assert p3["model"]["pick"] == "yolov8n" and p3["nwd"]["evidence"] == ["nwd"] and p3["nwd"]["pick"] == "try"


# ---------------------------------------------------------------------------------- command line and Python API
def test_cli_from_an_empty_folder(tmp_path):
    """`hsfpn-yolo doctor tiny-synth.yaml` from an empty folder: the bare name resolves (the set renders on first use),
    the table names the measured best model, the JSON holds the same numbers and the PNG is an image."""
    cwd, env = fresh_user(tmp_path / "user")
    argv = ["hsfpn-yolo", "doctor", "tiny-synth.yaml", "--imgsz", "320", "--json", "out/r.json", "--plot", "out/r.png"]
    proc = run(argv, cwd, env)
    assert proc.returncode == 0, output(proc)[-3000:]
    assert "model  yolov8n-p2:" in proc.stdout and "Candidate anchor points per box" in proc.stdout
    assert sorted(p.name for p in (cwd / "out").iterdir()) == ["r.json", "r.png"] and [
        p.name for p in cwd.iterdir()
    ] == ["out"]
    report = json.loads((cwd / "out" / "r.json").read_text())
    assert report["advice"]["model"]["pick"] == "yolov8n-p2" and report["imgsz"] == 320
    assert table(report).splitlines()[-1] in proc.stdout
    assert (cwd / "out" / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_python_api_is_lazy_and_returns_the_report(hand_set, hand_report, tmp_path):
    """`hsfpn_yolo.doctor` is the report as a dict, and `import hsfpn_yolo` still imports no torch."""
    assert hsfpn_yolo.doctor is doctor
    out = run_python("import sys, hsfpn_yolo; print('torch' in sys.modules, callable(hsfpn_yolo.doctor))", tmp_path)
    assert out.split() == ["False", "True"]
    again = hsfpn_yolo.doctor(str(hand_set), imgsz=128, models=["yolov8n", "yolov8n-p2"], progress=False)
    assert again["models"] == hand_report["models"] and again["sizes"] == hand_report["sizes"]


@pytest.mark.parametrize(
    "frames, expected",
    [
        ({"a": (64, 64, None)}, "no label files for the 1 'train' images: expected one .txt per image in"),
        ({"a": (64, 64, [])}, "the 1 label files of the 'train' images hold no boxes"),
        ({"a": (64, 64, ["0 0.5 0.5 0.1 0.1", "0 0.5 0.5 0.1"])}, "a.txt:2: expected a detection row"),
        ({"a": (64, 64, ["0 0.5 0.5 0.1 0.1", "", "1 0.95 0.5 0.2 0.2"])}, "a.txt:3: box '1 0.95 0.5 0.2 0.2' reaches"),
        ({"a": (64, 64, ["0 x 0.5 0.1 0.1"])}, "a.txt:1: non-numeric value"),
    ],
    ids=["no label folder", "empty labels", "short row", "outside", "not a number"],
)
def test_bad_labels_fail_clearly_and_write_nothing(frames, expected, tmp_path, capsys):
    """Each bad label set exits 2 with one `error:` line naming the file and line, and writes no JSON or PNG."""
    data = write_set(tmp_path / "set", frames)
    out = tmp_path / "out"
    assert main(["doctor", str(data), "--json", str(out / "r.json"), "--plot", str(out / "r.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists()


def test_empty_label_folder_fails_clearly(tmp_path):
    """A label folder without files is as good as none: FileNotFoundError naming it."""
    data = write_set(tmp_path, {"a": (64, 64, None), "b": (32, 32, None)})
    (tmp_path / "labels" / "train").mkdir(parents=True)
    with pytest.raises(
        FileNotFoundError, match=f"no label files for the 2 'train' images: .* in {tmp_path}/labels/train"
    ):
        doctor(data, progress=False)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["no-such.yaml"], "'no-such.yaml' does not exist"),
        ([str(ROOT / "cfg" / "yolov8-hsfpn.yaml")], "is not a dataset YAML: "),
        (
            ["HAND", "--models", "yolov8n,yolov8n-finepth"],
            "unknown model 'yolov8n-finepth': not a model YAML file, an hsfpn-yolo or an Ultralytics model; did "
            + "you mean 'yolov8n-finepath'?",
        ),
        (["HAND", "--models", "yolo11n-ob"], "did you mean 'yolo11n-obb'?"),
        (["HAND", "--split", "test"], "has no 'test' split"),
        (["HAND", "--imgsz", "16"], "imgsz must be an integer of at least 32"),
    ],
    ids=["missing yaml", "model yaml", "misspelt model", "misspelt stock model", "missing split", "tiny imgsz"],
)
def test_bad_arguments_fail_clearly_and_write_nothing(args, expected, hand_set, tmp_path, capsys):
    """A missing or wrong dataset YAML, an unknown model (with the closest name), a missing split or a bad size."""
    args = [str(hand_set) if a == "HAND" else a for a in args]
    out = tmp_path / "out"
    assert main(["doctor", *args, "--json", str(out / "r.json"), "--plot", str(out / "r.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists()
