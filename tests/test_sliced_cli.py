"""Sliced prediction as installed: `hsfpn-yolo predict` writes only its run folder, and its drawn frames keep objects of
a few pixels visible; `predict` and `val` save where `yolo` saves and report a missing or damaged checkpoint in one
line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hsfpn_yolo.sliced import draw_boxes, load_model, predict_frame, predict_sliced
from tests.fresh_user import assert_clean_failure, fresh_user, output, run

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


# ------------------------------------------------------------------------- run folders and checkpoints, as installed
@pytest.fixture(scope="module")
def sliced_user(tmp_path_factory) -> tuple[Path, dict[str, str], Path, Path]:
    """Return a new user's empty working folder and environment, whose Ultralytics runs_dir lies outside it, with a
    saved yolov8n checkpoint and a 2-frame dataset of 128 px: (working folder, environment, checkpoint, data YAML)."""
    from ultralytics import YOLO
    from ultralytics.utils import SettingsManager

    from hsfpn_yolo.data.synth import generate

    root = tmp_path_factory.mktemp("sliced")
    work, env = fresh_user(root)
    SettingsManager(Path(env["YOLO_CONFIG_DIR"]) / "Ultralytics" / "settings.json").update(runs_dir=str(root / "runs"))
    torch.manual_seed(0)
    YOLO("yolov8n.yaml").save(root / "m.pt")
    data = Path(generate(root / "data", train=1, val=2, imgsz=128, progress=False)["path"]) / "data.yaml"
    return work, env, root / "m.pt", data


def sliced_args(command: str, checkpoint: Path, data: Path) -> list[str]:
    """Return `hsfpn-yolo COMMAND` arguments for the 2-frame dataset at 64 px slices on the CPU."""
    target = data.parent / "images" / "val" if command == "predict" else data
    return ["hsfpn-yolo", command, str(checkpoint), str(target), "--slice", "64", "--device", "cpu"]


@pytest.mark.parametrize("command", ["predict", "val"])
def test_installed_sliced_run_follows_runs_dir(command, sliced_user):
    """`predict` and `val` save under Ultralytics' runs_dir (detect/<name>) as `yolo` does, not in the working folder,
    and say where."""
    work, env, checkpoint, data = sliced_user
    proc = run(sliced_args(command, checkpoint, data), work, env)
    assert proc.returncode == 0, output(proc)[-3000:]
    saved = Path(env["YOLO_CONFIG_DIR"]).parent / "runs" / "detect" / f"{command}-sliced"
    assert (saved / ("predictions.json" if command == "predict" else "tiny_metrics.json")).is_file()
    assert re.search(rf"^Sliced \S+ of 2 frames.* saved to {re.escape(str(saved))}$", proc.stdout, re.M), proc.stdout
    assert not any(work.iterdir())


def test_run_dir_of_an_absolute_project(tmp_path):
    """An absolute project is the run's parent folder; an existing run folder is numbered unless reused."""
    from hsfpn_yolo.sliced.model import run_dir

    assert run_dir(tmp_path, "predict-sliced") == tmp_path / "predict-sliced"
    (tmp_path / "predict-sliced").mkdir(exist_ok=True)  # Ultralytics 8.4.0 has made it already
    numbered = run_dir(tmp_path, "predict-sliced")
    assert numbered.parent == tmp_path and numbered.name in {"predict-sliced-2", "predict-sliced2"}  # 8.4.190, 8.4.0
    assert run_dir(tmp_path, "predict-sliced", exist_ok=True) == tmp_path / "predict-sliced"


@pytest.mark.parametrize(
    "command, model, names",
    [
        ("predict", "missing.pt", r"'missing\.pt' does not exist"),
        ("predict", "sub/best.pt", r"'sub/best\.pt' does not exist.* yolov8n\.pt"),
        ("val", "missing.pt", r"'missing\.pt' does not exist"),
        ("predict", "yolov8n-hsfpn.pt", r"yolov8n-hsfpn\.yaml builds the model untrained"),
    ],
    ids=["predict", "predict-path", "val", "predict-ours"],
)
def test_installed_missing_checkpoint_fails_at_once(command, model, names, sliced_user):
    """A checkpoint that exists nowhere and is no Ultralytics download: one `error:` line, exit 2, without asking
    GitHub for it and before the data is read (the built-in set, which would otherwise be rendered first)."""
    work, env, checkpoint, data = sliced_user
    argv = sliced_args(command, checkpoint, data)
    argv[2:4] = [model, argv[3] if command == "predict" else "tiny-synth.yaml"]
    proc = run(argv, work, env)
    assert proc.returncode == 2
    assert_clean_failure(argv, proc, names)
    assert "GitHub" not in output(proc) and not any(work.iterdir())
    assert not (Path(env["YOLO_CONFIG_DIR"]).parent / "datasets" / "tiny-synth").exists()


@pytest.mark.parametrize("command", ["predict", "val"])
def test_installed_truncated_checkpoint_is_one_error_line(command, sliced_user, tmp_path):
    """The first 1000 bytes of a real checkpoint: one `error: PATH is not a loadable checkpoint (...)` line, exit 2."""
    work, env, checkpoint, data = sliced_user
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:1000])
    argv = sliced_args(command, truncated, data)
    proc = run(argv, work, env)
    assert proc.returncode == 2
    assert_clean_failure(
        argv, proc, rf"^error: {re.escape(str(truncated))} is not a loadable checkpoint \(RuntimeError: "
    )


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", 1000, -1], ids=["empty", "text", "head", "all-but-1"])
def test_unloadable_checkpoint_error(content, tmp_path):
    """Empty, foreign and truncated files raise CheckpointError (a ValueError) naming the file and torch's reason."""
    from ultralytics import YOLO

    from hsfpn_yolo.sliced.model import CheckpointError, load_model

    torch.manual_seed(0)
    YOLO("yolov8n.yaml").save(tmp_path / "m.pt")
    whole = (tmp_path / "m.pt").read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content if isinstance(content, bytes) else whole[:content])
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(bad))} is not a loadable checkpoint \(\w+Error: .+\)"):
        load_model(bad)
    assert issubclass(CheckpointError, ValueError)


def test_check_model_leaves_downloads_and_yamls_to_ultralytics(tmp_path, monkeypatch):
    """Ultralytics' own names, files in its weights_dir, URLs and model YAMLs pass; other missing files fail."""
    from ultralytics.utils import SETTINGS

    from hsfpn_yolo.sliced.model import check_model

    monkeypatch.chdir(tmp_path)
    (Path(SETTINGS["weights_dir"]) / "mine").mkdir(parents=True, exist_ok=True)
    (Path(SETTINGS["weights_dir"]) / "mine" / "best.pt").write_bytes(b"")
    for model in ("yolov8n.pt", "yolo11n", "yolov5n.pt", "mine/best.pt", "https://host/m.pt", "nothere/m.yaml"):
        check_model(model)
    for model in ("best.pt", "runs/detect/train/weights/best.pt", Path("best.onnx"), "mymodel"):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            check_model(model)
