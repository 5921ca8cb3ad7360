"""Every `hsfpn-yolo` subcommand through the installed entry point, in a fresh interpreter from an empty folder as a
new offline user runs it: its --help, a run on tiny generated data with the outputs it promises, and a missing input."""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from hsfpn_yolo.cli import build_parser
from hsfpn_yolo.data.aitod import AITOD_NAMES
from hsfpn_yolo.data.synth import CLASS_NAMES, generate
from hsfpn_yolo.metrics.tiny import KEYS
from tests.fresh_user import assert_clean_failure, fresh_user, output, run

TINY_LINE = "Tiny-object AP (AI-TOD sizes): AP "


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Return the path of every subcommand under PARSER, groups (`bench`) and their commands (`bench speed`) alike."""
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += [(*path, name), *subcommands(sub, (*path, name))]
    return paths


def leaves(parser: argparse.ArgumentParser) -> set[tuple[str, ...]]:
    """Return the subcommands that run something (those without subcommands of their own)."""
    paths = subcommands(parser)
    return {p for p in paths if not any(q[: len(p)] == p and q != p for q in paths)}


def run_hsfpn_yolo(args: list, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `hsfpn-yolo ARGS` and return the finished process after asserting it exited 0."""
    argv = ["hsfpn-yolo", *map(str, args)]
    proc = run(argv, cwd, env)
    assert proc.returncode == 0, f"{' '.join(argv)}\n{output(proc)[-4000:]}"
    return proc


def label_rows(folder: Path) -> list[list[float]]:
    """Return the rows of every YOLO label file under FOLDER."""
    return [list(map(float, r.split())) for p in sorted(folder.rglob("*.txt")) for r in p.read_text().splitlines()]


def write_image(path: Path, w: int, h: int) -> None:
    """Write a grey W x H image (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), 127, np.uint8))


@pytest.fixture
def user(tmp_path) -> tuple[Path, dict[str, str]]:
    """Return an empty working folder and a new offline user's environment."""
    return fresh_user(tmp_path / "user")


@pytest.fixture(scope="module")
def module_user(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Return a working folder and environment shared by the commands that build on each other (the benchmarks)."""
    return fresh_user(tmp_path_factory.mktemp("user"))


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory) -> Path:
    """Return a synthetic dataset of 4 + 2 frames of 128 px (the stand-in for large frames and their labels)."""
    return Path(generate(tmp_path_factory.mktemp("synth") / "set", 4, 2, 128, progress=False)["path"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """Return an untrained yolov8n-hsfpn checkpoint saved by a fresh interpreter."""
    root = tmp_path_factory.mktemp("checkpoint")
    cwd, env = fresh_user(root)
    path = root / "m.pt"
    save = f"YOLO('yolov8n-hsfpn.yaml').save({str(path)!r})"
    code = f"import torch\nfrom ultralytics import YOLO\ntorch.manual_seed(0)\n{save}"
    proc = run(["python", "-c", code], cwd, env)
    assert proc.returncode == 0, output(proc)[-3000:]
    return path


# ------------------------------------------------------------------------------------------------------- --help
@pytest.mark.parametrize("path", subcommands(build_parser()) + [()], ids=lambda p: " ".join(p) or "hsfpn-yolo")
def test_help(path, user):
    """`--help` of every (sub)command exits 0 with its usage, without importing torch or Ultralytics: it is quick."""
    cwd, env = user
    env["PYTHONPROFILEIMPORTTIME"] = "1"  # every import the interpreter makes, listed on stderr
    proc = run_hsfpn_yolo([*path, "--help"], cwd, env)
    assert proc.stdout.startswith(" ".join(["usage: hsfpn-yolo", *path]))
    imported = re.findall(r"^import time:.*\|\s+(\S+)$", proc.stderr, re.M)
    assert "hsfpn_yolo.cli" in imported and not {"torch", "ultralytics"} & set(imported)
    assert not any(cwd.iterdir())


# ---------------------------------------------------------------------------------------------------- datasets
def test_convert_visdrone(user, tmp_path):
    """A VisDrone2019-DET split becomes YOLO images and labels: class 4 (car) -> 3, normalised, ignored rows dropped."""
    cwd, env = user
    raw = tmp_path / "VisDrone2019-DET-train"
    write_image(raw / "images" / "a.jpg", 100, 50)
    write_image(raw / "images" / "b.jpg", 64, 64)
    (raw / "annotations").mkdir()
    (raw / "annotations" / "a.txt").write_text("10,5,20,10,1,4,0,0\n0,0,30,30,0,1,0,0\n")  # a car; an ignored region
    (raw / "annotations" / "b.txt").write_text("")
    proc = run_hsfpn_yolo(["convert", "visdrone", raw, "datasets/VisDrone/train"], cwd, env)
    out = cwd / "datasets" / "VisDrone" / "train"
    assert (out / "labels" / "a.txt").read_text() == "3 0.200000 0.200000 0.200000 0.200000\n"
    assert (out / "labels" / "b.txt").read_text() == ""
    assert (out / "images" / "a.jpg").read_bytes() == (raw / "images" / "a.jpg").read_bytes()
    assert "2 images, 1 boxes" in output(proc) and "(ignored 1)" in output(proc)


def test_convert_aitod(user, tmp_path):
    """An AI-TOD split (COCO JSON + images) becomes YOLO labels; classes follow AI-TOD's order, not the JSON's ids."""
    cwd, env = user
    write_image(tmp_path / "images" / "p1.png", 80, 40)
    write_image(tmp_path / "images" / "p2.png", 16, 16)
    data = {
        "images": [
            {"id": 1, "file_name": "p1.png", "width": 80, "height": 40},
            {"id": 2, "file_name": "p2.png", "width": 16, "height": 16},
        ],
        "categories": [{"id": 7, "name": "vehicle"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [8, 4, 16, 8], "iscrowd": 0}],
    }
    (tmp_path / "train.json").write_text(json.dumps(data))
    proc = run_hsfpn_yolo(["convert", "aitod", tmp_path / "train.json", tmp_path / "images", "AI-TOD/train"], cwd, env)
    labels = cwd / "AI-TOD" / "train" / "labels"
    assert (labels / "p1.txt").read_text() == f"{AITOD_NAMES.index('vehicle')} 0.200000 0.200000 0.200000 0.200000\n"
    assert (labels / "p2.txt").read_text() == ""  # kept as background
    assert "2 images, 1 boxes" in output(proc)


@pytest.mark.parametrize("obb", [False, True], ids=["boxes", "obb"])
def test_synth(obb, user):
    """`synth` renders the asked number of frames and sizes, labels in range, and prints each split's box sizes."""
    cwd, env = user
    proc = run_hsfpn_yolo(["synth", "data", "--train", 4, "--val", 2, "--imgsz", 128] + ["--obb"] * obb, cwd, env)
    root = cwd / "data"
    for split, n in (("train", 4), ("val", 2)):
        images = sorted((root / "images" / split).iterdir())
        assert len(images) == n and all(cv2.imread(str(p)).shape == (128, 128, 3) for p in images)
        rows = label_rows(root / "labels" / split)
        assert all(len(r) == (9 if obb else 5) and 0 <= min(r[1:]) and max(r[1:]) <= 1 for r in rows)
        printed = re.search(rf"^{split} box sizes: (.+)$", proc.stdout, re.M)[1]
        assert sum(int(v) for v in re.findall(r"px: (\d+)", printed)) == len(rows)
    assert list(yaml.safe_load((root / "data.yaml").read_text())["names"].values()) == list(CLASS_NAMES)


def test_tile(user, synth_set):
    """`tile` cuts every frame into 64-px tiles named after their windows that cover the frame, with labels."""
    cwd, env = user
    proc = run_hsfpn_yolo(["tile", synth_set, "tiles", "--size", 64, "--overlap", 0.2, "--empty", 1], cwd, env)
    frames = {p.stem: p for p in (synth_set / "images").rglob("*.jpg")}
    tiles = sorted((cwd / "tiles" / "images").rglob("*.jpg"))
    windows = {}
    for tile in tiles:
        frame, *xyxy = tile.stem.rsplit("_", 4)
        x0, y0, x1, y1 = map(int, xyxy)
        assert frame in frames and x1 - x0 == y1 - y0 == 64 and cv2.imread(str(tile)).shape == (64, 64, 3)
        windows.setdefault(frame, []).append((x0, y0, x1, y1))
    for frame, boxes in windows.items():  # the windows of each frame reach all four edges
        assert min(b[0] for b in boxes) == min(b[1] for b in boxes) == 0
        assert max(b[2] for b in boxes) == max(b[3] for b in boxes) == 128
    assert sorted(windows) == sorted(frames)
    rows = label_rows(cwd / "tiles" / "labels")
    assert rows and all(len(r) == 5 and 0 <= min(r[1:]) and max(r[1:]) <= 1 for r in rows)
    assert yaml.safe_load((cwd / "tiles" / "data.yaml").read_text())["names"]
    assert f"Tiled {len(frames)} frames" in output(proc)


# ------------------------------------------------------------------------------------------- sliced evaluation
def test_val_slice(user, synth_set, checkpoint):
    """`val --slice` evaluates the full frames slice by slice: the AP line, and tiny_metrics.json / .csv in its run."""
    cwd, env = user
    proc = run_hsfpn_yolo(["val", checkpoint, synth_set / "data.yaml", "--slice", 64, "--device", "cpu"], cwd, env)
    run_dir = cwd / "runs" / "detect" / "val-sliced"
    saved = json.loads((run_dir / "tiny_metrics.json").read_text())
    assert set(KEYS) <= set(saved) and saved["images"] == 2 and saved["sliced"]["slice"] == 64
    assert saved["instances"]["all"] == len(label_rows(synth_set / "labels" / "val"))
    with open(run_dir / "tiny_metrics.csv") as f:
        assert [row["mode"] for row in csv.DictReader(f)] == ["sliced"]
    assert TINY_LINE in proc.stdout and "Sliced val of 2 frames" in proc.stdout


# ---------------------------------------------------------------------------------------------------- benchmarks
@pytest.fixture(scope="module")
def speed_run(module_user):
    """Run `bench speed` for yolov8n at its smallest settings; return (process, JSON path)."""
    cwd, env = module_user
    args = ["bench", "speed", "--models", "yolov8n", "--imgsz", 64, "--batch", 2, "--iters", 1, "--no-blocks"]
    args += ["--no-memory", "--device", "cpu", "--threads", 1, "--json", "speed.json"]  # 1 thread: cores are shared
    return run_hsfpn_yolo(args, cwd, env), cwd / "speed.json"


@pytest.fixture(scope="module")
def accuracy_run(module_user):
    """Run `bench accuracy --nwd` for yolov8n from both starts (the default), one seed, one epoch on 4 + 2 synthetic
    images, pretraining for one epoch; return (process, JSON path)."""
    cwd, env = module_user
    args = ["bench", "accuracy", "--models", "yolov8n", "--seeds", 0, "--epochs", 1, "--imgsz", 64, "--batch", 2]
    args += ["--nwd", "loss=0.3,assign=false", "--pretrain-epochs", 1]
    args += ["--train-images", 4, "--val-images", 2, "--jobs", 1, "--workers", 0, "--json", "accuracy.json"]
    return run_hsfpn_yolo(args, cwd, env), cwd / "accuracy.json"


def test_bench_speed(speed_run):
    """`bench speed` prints the models table and saves positive timings and sizes."""
    proc, path = speed_run
    assert re.search(r"^\| yolov8n \| 3\.\d\d \|", proc.stdout, re.M)
    row = json.loads(path.read_text())["models"]["cpu"]["yolov8n"]
    assert row["params"] > 3e6 and all(row[k]["median_ms"] > 0 for k in ("infer_b1", "infer_b2", "train_b2"))


def test_bench_accuracy(accuracy_run):
    """`bench accuracy` trains each start's run, prints its AP and budget, and saves it as JSON (with the learning
    curve and the optimizer steps) and CSV rows."""
    proc, path = accuracy_run
    result = json.loads(path.read_text())
    scratch, pretrained = result["runs"]
    assert (scratch["start"], pretrained["start"]) == ("scratch", "pretrained")
    for row in (scratch, pretrained):
        assert (row["model"], row["seed"], row["epochs"]) == ("yolov8n", 0, 1) and 0 <= row["AP"] <= 1
        assert Path(row["save_dir"], "weights", "best.pt").is_file()
        assert row["optimizer_steps"] == 2  # 4 images in batches of 2: one optimizer step a batch by default
        assert len(row["curve"]["AP"]) == 1 and 0 <= row["curve"]["AP"][0] <= 1  # the epoch's validation
        assert f"bench accuracy: yolov8n ({row['start']}) seed 0: AP " in proc.stdout
        assert yaml.safe_load(Path(row["save_dir"], "args.yaml").read_text())["nbs"] == 2
        trained = torch.load(Path(row["save_dir"], "weights", "last.pt"), weights_only=False)["model"].yaml["nwd"]
        assert trained["loss"] == 0.3 and trained["assign"] is False and isinstance(trained["constant"], float)
    assert (
        pretrained["checkpoint"]
        == Path(yaml.safe_load(Path(pretrained["save_dir"], "args.yaml").read_text())["pretrained"]).name
    )
    with open(path.with_suffix(".csv")) as f:
        assert [(r["model"], r["start"]) for r in csv.DictReader(f)] == [
            ("yolov8n", "scratch"),
            ("yolov8n", "pretrained"),
        ]
    options = {"assign": False, "loss": 0.3, "constant": "auto"}
    assert result["settings"]["nwd"] == options and result["settings"]["nbs"] == 2
    assert f"- Label assignment and box loss: NWD {options}" in proc.stdout
    assert "- Budget: 1 epochs, batch 2, nominal batch 2: 2 optimizer steps per run, at 64 px" in proc.stdout


def test_bench_pretrain_then_accuracy_from_it(user):
    """`bench pretrain` builds the stock checkpoint for the benchmark's sizes; `bench accuracy --pretrained` with the
    same sizes starts every model from it (HS-FPN models included) without pretraining again."""
    cwd, env = user
    sizes = ["--epochs", 1, "--imgsz", 64, "--batch", 2, "--train-images", 4, "--val-images", 2, "--jobs", 1]
    sizes += ["--workers", 0, "--pretrain-epochs", 1]
    proc = run_hsfpn_yolo(["bench", "pretrain", "--models", "yolov8n,yolov8n-finepath", *sizes], cwd, env)
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("yolov8n: ")]
    checkpoint = Path(line.split(": ", 1)[1])
    assert checkpoint.is_file() and checkpoint.parent.name == "hsfpn-pretrain"
    assert "bench pretrain: 1/1 checkpoints ready" in proc.stdout
    args = ["bench", "accuracy", "--pretrained", "--models", "yolov8n-finepath", "--seeds", 0, *sizes]
    proc = run_hsfpn_yolo([*args, "--json", "acc.json"], cwd, env)
    assert "bench pretrain: training" not in proc.stdout  # the checkpoint is reused
    (row,) = json.loads((cwd / "acc.json").read_text())["runs"]
    assert (row["start"], row["checkpoint"], row["model"]) == ("pretrained", checkpoint.name, "yolov8n-finepath")
    assert yaml.safe_load(Path(row["save_dir"], "args.yaml").read_text())["pretrained"] == str(checkpoint)
    assert "- Start: the stock counterpart's checkpoint (pretrained), trained on 12 images" in proc.stdout
    (record,) = json.loads(checkpoint.with_suffix(".json").read_text())["runs"]  # the pretraining's learning curve
    assert record["model"] == "yolov8n" and len(record["curve"]["AP"]) == 1 and record["optimizer_steps"] == 6
    assert re.search(r"Transferred \d+/\d+ items from pretrained weights", output(proc))


def test_bench_profile(user):
    """`bench profile` prints the operator-family and layer-type tables and saves the step time."""
    cwd, env = user
    args = ["bench", "profile", "--models", "yolov8n", "--imgsz", 64, "--batch", 1, "--steps", 1, "--json", "p.json"]
    proc = run_hsfpn_yolo(args, cwd, env)
    assert re.search(r"^\| yolov8n \| \d+ \|", proc.stdout, re.M) and "| C2f |" in proc.stdout
    assert "yolov8n" in (cwd / "p.json").read_text()


def test_bench_plot(module_user, speed_run, accuracy_run):
    """`bench plot` draws the three PNGs from the speed and accuracy JSONs and prints their paths."""
    cwd, env = module_user
    args = ["bench", "plot", "--speed", speed_run[1], "--accuracy", accuracy_run[1], "--out", "plots"]
    proc = run_hsfpn_yolo(args, cwd, env)
    printed = [cwd / p for p in proc.stdout.split()]
    assert len(printed) == 4 and all(p.parent == cwd / "plots" and cv2.imread(str(p)).size > 0 for p in printed)
    assert cwd / "plots" / "bench_ap_by_epoch.png" in printed  # the runs recorded their learning curves


def test_bench_compare(module_user, accuracy_run):
    """`bench compare` prints each model of a results file with the starts side by side, under the file's regime."""
    cwd, env = module_user
    proc = run_hsfpn_yolo(["bench", "compare", accuracy_run[1], "--metrics", "AP"], cwd, env)
    runs = {r["start"]: r for r in json.loads(accuracy_run[1].read_text())["runs"]}
    assert proc.stdout.startswith("Regime: 1 ep · nbs 2 · 64 px · 2 steps\n")
    cells = [
        f"{runs[s]['AP']:.3f} ± 0.000 ({runs[s]['AP']:.3f}–{runs[s]['AP']:.3f})" for s in ("scratch", "pretrained")
    ]
    assert f"| yolov8n | – | {cells[0]} | – | 1 | {cells[1]} | – | 1 |" in proc.stdout.splitlines()


@pytest.mark.slow
def test_demo(user):
    """`demo --epochs 1` trains on the built-in set and prints its AP line and the prediction image it drew."""
    cwd, env = user
    proc = run_hsfpn_yolo(["demo", "--epochs", 1], cwd, env)
    image = re.search(r"^Prediction: (\S+)", proc.stdout, re.M)[1]
    assert Path(image) == cwd / "runs" / "demo" / "train" / "prediction.jpg" and cv2.imread(image).size > 0
    assert TINY_LINE in proc.stdout and (cwd / "runs" / "demo" / "train" / "weights" / "best.pt").is_file()


def test_bench_deploy(module_user):
    """`bench deploy` exports, loads and times each model and format; ratios are to the stock counterpart."""
    cwd, env = module_user
    args = ["bench", "deploy", "--models", "yolov8n,yolov8n-hsfpn", "--formats", "onnx,pytorch", "--imgsz", "64"]
    proc = run_hsfpn_yolo([*args, "--min-calls", 3, "--max-calls", 3, "--out", "exports", "--json", "d.json"], cwd, env)
    result = json.loads((cwd / "d.json").read_text())
    rows = {(r["model"], r["format"]): r for r in result["rows"]}
    assert set(rows) == {(m, f) for m in ("yolov8n", "yolov8n-hsfpn") for f in ("pytorch", "onnx")}
    assert all(r["n"] == 3 and r["median_ms"] > 0 for r in rows.values())
    assert result["settings"]["formats"][0] == "pytorch"  # the parity reference comes first
    ours = rows["yolov8n-hsfpn", "onnx"]
    assert ours["max_abs_diff"] < 1e-2 and rows["yolov8n", "onnx"]["ratio"] is None
    assert ours["ratio"] > 0 and ours["ratio_spread"] >= 0 and ours["counterpart"] == "yolov8n"  # paired by round
    assert f"| yolov8n-hsfpn | {rows['yolov8n-hsfpn', 'pytorch']['median_ms']:.1f} (" in proc.stdout
    proc = run_hsfpn_yolo(["bench", "deploy", "--report", "d.json", "--against", "d.json"], cwd, env)  # no timing
    r = f"{ours['ratio']:.2f}×"
    assert f"| 64 | yolov8n-hsfpn | {rows['yolov8n-hsfpn', 'pytorch']['ratio']:.2f}× → " in proc.stdout
    assert f"| {r} → {r} |" in proc.stdout and proc.stdout.count("| yolov8n |") == 1  # stock: no ratio to itself


def test_bench_parts(module_user):
    """`bench parts` attributes each runtime's operators to the blocks' parts; the stock-like model has none."""
    cwd, env = module_user
    args = ["bench", "parts", "--models", "yolov8n-finepath,yolov8n-hsfpn", "--imgsz", 64, "--runs", 2]
    proc = run_hsfpn_yolo([*args, "--runtimes", "pytorch,onnx", "--out", "exports", "--json", "p.json"], cwd, env)
    table = json.loads((cwd / "p.json").read_text())["parts_ms"]
    for rt in ("pytorch", "onnx"):
        assert set(table["yolov8n-finepath"][rt]) <= {"rest of the model", "layout conversions, any layer"}
        found = {p for p, ms in table["yolov8n-hsfpn"][rt].items() if ms > 0}
        assert {"HFP high-pass", "HFP output conv", "SDP attention", "SDP q/k projections"} <= found, (rt, found)
    assert "**difference of the totals**" in proc.stdout


# Where each subcommand runs on real input (`predict --slice`, as installed: tests/test_sliced_cli.py)
RUN_BY = {
    ("convert", "visdrone"): test_convert_visdrone,
    ("convert", "aitod"): test_convert_aitod,
    ("synth",): test_synth,
    ("tile",): test_tile,
    ("predict",): "tests/test_sliced_cli.py::test_installed_predict_writes_only_its_run",
    ("val",): test_val_slice,
    ("demo",): test_demo,
    ("doctor",): "tests/test_doctor.py::test_cli_from_an_empty_folder",
    ("bench", "speed"): test_bench_speed,
    ("bench", "deploy"): test_bench_deploy,
    ("bench", "parts"): test_bench_parts,
    ("bench", "accuracy"): test_bench_accuracy,
    ("bench", "pretrain"): test_bench_pretrain_then_accuracy_from_it,
    ("bench", "profile"): test_bench_profile,
    ("bench", "plot"): test_bench_plot,
    ("bench", "compare"): test_bench_compare,
}


def test_every_subcommand_runs_somewhere():
    """Each subcommand of the parser has a test above that runs it (a new one needs its own)."""
    assert leaves(build_parser()) == set(RUN_BY)


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "visdrone", "no-such-split", "out"],
        ["convert", "aitod", "no-such.json", "no-such-images", "out"],
        ["tile", "no-such-frames", "out"],
        ["predict", "no-such.pt", "no-such-frames"],
        ["val", "no-such.pt", "no-such.yaml"],
        ["bench", "plot", "--accuracy", "no-such.json"],
        ["doctor", "no-such.yaml"],
        ["bench", "compare", "no-such.json"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_missing_input_is_one_error_line(args, user):
    """A missing input exits 2 with one `error: ...` line naming it, no traceback, nothing written."""
    cwd, env = user
    proc = run(["hsfpn-yolo", *args], cwd, env)
    assert proc.returncode == 2
    assert_clean_failure(["hsfpn-yolo", *args], proc, r"no-such")
    assert not any(cwd.iterdir())
