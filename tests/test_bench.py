"""The benchmark tooling: references equal our blocks, and `bench speed` and `bench plot` run end to end (the blocks
under torch.compile: test_compile.py)."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from hsfpn_yolo.bench import plots, workloads
from hsfpn_yolo.bench.stats import summarize
from hsfpn_yolo.bench.common import counterpart
from hsfpn_yolo.bench.profile import family
from hsfpn_yolo.bench.reference import HFPCore, ReferenceHFP, ReferenceSDP
from hsfpn_yolo.bench.report import targets
from hsfpn_yolo.cli import main
from hsfpn_yolo.nn import HFP, SDP


@pytest.mark.parametrize("dct,size", [(True, (24, 16)), (True, (80, 80)), (False, (20, 12))])
def test_reference_hfp_equals_ours(dct, size):
    torch.manual_seed(0)
    m = HFP(64, dct=dct, patch=8)
    x = torch.randn(2, 64, *size, requires_grad=True)
    ours, ref = m(x), ReferenceHFP(m)(x)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    g = torch.randn_like(ours)
    (gx,) = torch.autograd.grad(ours, x, g)
    (rx,) = torch.autograd.grad(ReferenceHFP(m)(x), x, g)
    torch.testing.assert_close(gx, rx, rtol=1e-3, atol=1e-4)  # the backward timed is the same function's too


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("shape,grid", [((2, 32, 16, 16), 4), ((1, 64, 12, 20), 2)])
def test_reference_sdp_equals_ours(shape, grid, batched):
    torch.manual_seed(0)
    m = SDP(shape[1], grid)
    low, high = torch.randn(shape), torch.randn(shape)
    torch.testing.assert_close(m([low, high]), ReferenceSDP(m, batched)([low, high]), rtol=1e-4, atol=1e-5)


def test_hfp_core_is_conv_relu_norm():
    m = HFP(32)
    x = torch.randn(1, 32, 8, 8)
    torch.testing.assert_close(HFPCore(m)(x), m.out[1](torch.relu(m.out[0].conv(x))))


@pytest.mark.slow
def test_bench_speed_end_to_end(tmp_path, capsys):
    out = tmp_path / "speed.json"
    args = ["bench", "speed", "--imgsz", "64", "--iters", "1", "--batch", "2", "--device", "cpu", "--no-memory"]
    assert main([*args, "--models", "yolov8n,yolov8n-hsfpn", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    expected = (
        "| model | params (M) | GFLOPs (UL) | GFLOPs (full) | infer_b1 ms | infer_b1 ×v8 |",
        "train_b2 ×v8",
        "| block | input | implementation | forward ms | fwd ÷ ours | fwd+bwd ms | fwd+bwd ÷ ours |",
        "conv3x3+ReLU+GN",
        "reference (loops)",
        "| target | measured | goal | met |",
        "- Command: `",
    )
    for column in expected:
        assert column in text
    result = json.loads(out.read_text())
    hsfpn = result["models"]["cpu"]["yolov8n-hsfpn"]
    assert hsfpn["params"] > 0 and hsfpn["train_b2"]["n"] == 1 and hsfpn["infer_b2"]["median_ms"] > 0
    blocks = [b["block"] for b in result["blocks"]["cpu"]]
    assert blocks == ["HFP dct=True p=8", "HFP dct=False", "SDP grid 4", "SDP grid 2"]
    assert {t["target"].split(":")[0] for t in result["targets"]} >= {"yolov8n-hsfpn train step b2"}


def test_memory_measures_each_phase():
    cmd = [sys.executable, "-m", "hsfpn_yolo.bench.memory", "yolov8n-hsfpn", "--imgsz", "64", "--batch", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # a fresh process, as the benchmark runs it
    assert out.returncode == 0, out.stderr[-2000:]
    mem = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(mem) == {"method", "infer_b1_mb", "infer_b2_mb", "train_b2_mb"}
    assert mem["method"] == "VmHWM reset"  # Linux: the peak is reset before each phase
    assert 0 <= mem["infer_b1_mb"] <= mem["infer_b2_mb"] + 1  # unclamped: below the idle process would be a fault
    # The first training step allocates a gradient and an SGD momentum buffer for every parameter (fp32): a floor
    params = sum(p.numel() for p in workloads.build("yolov8n-hsfpn").parameters())
    assert mem["train_b2_mb"] >= 2 * 4 * params / 2**20


def run_row(model: str, seed: int, **metrics) -> dict:
    """One `bench accuracy` run row with the given metrics (AP_m, AP75, AP50 default to -1/None)."""
    row = {"model": model, "seed": seed, "params": 1, "epoch_train_s": 10.0, "epoch_total_s": 12.0}
    return {**row, **{k: None for k in ("AP50", "AP75", "AP_m")}, **metrics}


def test_summary_spreads_and_verdicts():
    runs = [run_row("yolov8n", s, AP=ap, AP_t=0.3) for s, ap in enumerate((0.20, 0.22, 0.24))]
    runs += [
        run_row("yolov8n-hsfpn", s, AP=ap, AP_t=t) for s, (ap, t) in enumerate(((0.30, 0.3), (0.31, 0.3), (0.32, 0.3)))
    ]
    runs += [run_row("yolov8n-hsfpn-p2", 0, AP=0.5, AP_t=0.5)]  # its counterpart yolov8n-p2 was not run
    base, ours, p2 = summarize(runs)
    assert (
        base["AP"]["n"] == 3 and base["AP"]["mean"] == pytest.approx(0.22) and base["AP"]["std"] == pytest.approx(0.02)
    )
    assert (base["AP"]["min"], base["AP"]["max"]) == (0.20, 0.24) and base["seeds"] == [0, 1, 2]
    assert base["AP_m"]["n"] == 0 and base["AP_m"]["mean"] is None  # no objects in the bucket: no statistics
    d = ours["delta_AP"]
    se = (0.02**2 / 3 + 0.01**2 / 3) ** 0.5
    assert d["diff"] == pytest.approx(0.09) and d["se"] == pytest.approx(se) and d["verdict"] == "gain"
    assert ours["delta_AP_t"]["verdict"] == "within noise"  # equal means
    assert ours["baseline"] == "yolov8n" and "baseline" not in p2 and "baseline" not in base


def test_counterparts():
    assert counterpart("yolov8n-hsfpn") == "yolov8n" and counterpart("yolov8s-hsfpn-paper-p2") == "yolov8s-p2"
    assert counterpart("cfg/study/yolov8n-hsfpn-native-yolo-p2.yaml") == "yolov8n-p2"
    assert (
        counterpart("yolo26n-finepath-obb") == "yolo26n-obb"
        and counterpart("cfg/yolo26s-hsfpn-obb.yaml") == "yolo26s-obb"
    )


def test_targets_hold_each_hsfpn_model_to_its_own_baseline():
    def timed(infer_b1: float, infer_b2: float, train_b2: float) -> dict:
        ms = {"infer_b1": infer_b1, "infer_b2": infer_b2, "train_b2": train_b2}
        return {k: {"median_ms": v, "iqr_ms": 0.0} for k, v in ms.items()}

    models = {
        "yolo11n": timed(10.0, 20.0, 100.0),
        "yolo11n-hsfpn": timed(12.0, 30.0, 130.0),
        "yolo26s-p2": timed(10.0, 20.0, 100.0),
        "yolo26s-hsfpn-p2": timed(15.0, 30.0, 150.0),
        "yolo26m-hsfpn": timed(1.0, 1.0, 1.0),  # its baseline yolo26m was not measured: no target
    }
    result = {"settings": {"batch": 2}, "blocks": {}, "models": {"cpu": models}}
    rows = [(r["target"], round(r["measured"], 6), r["met"]) for r in targets(result, counterpart)]
    assert rows == [
        ("yolo11n-hsfpn train step b2: / yolo11n", 1.3, True),
        ("yolo11n-hsfpn infer_b1: / yolo11n", 1.2, True),
        ("yolo11n-hsfpn infer_b2: / yolo11n", 1.5, False),
        ("yolo26s-hsfpn-p2 train step b2: / yolo26s-p2", 1.5, False),
    ]


@pytest.mark.slow
def test_bench_accuracy_seeds_and_resume(tmp_path, capsys):
    data = tmp_path / "data.yaml"
    from hsfpn_yolo.data.synth import generate

    generate(tmp_path / "synth", train=4, val=2, imgsz=64, seed=0)
    data = str(tmp_path / "synth" / "data.yaml")
    out = tmp_path / "acc.json"
    args = ["bench", "accuracy", "--models", "yolov8n", "--seeds", "3,4", "--epochs", "1", "--imgsz", "64"]
    args += ["--starts", "scratch", "--batch", "2", "--jobs", "1", "--data", data]
    args += ["--project", str(tmp_path / "runs"), "--json", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert [(r["model"], r["seed"]) for r in result["runs"]] == [("yolov8n", 3), ("yolov8n", 4)]
    assert result["summary"][0]["AP"]["n"] == 2 and result["summary"][0]["seeds"] == [3, 4]
    assert out.with_suffix(".csv").read_text().count("\n") == 3  # header + one row per seed
    assert "Per seed:" in capsys.readouterr().out
    assert main([*args[:5], "3,4,5", *args[6:]]) == 0  # seeds 3 and 4 are kept, only 5 is trained
    printed = capsys.readouterr().out
    assert "2 run(s) with these settings kept, 1 to train" in printed
    assert [r["seed"] for r in json.loads(out.read_text())["runs"]] == [3, 4, 5]
    merged = tmp_path / "merged.json"  # runs of another results file with the same settings are reused too
    assert main([*args[:-1], str(merged), "--reuse", str(out)]) == 0
    assert "2 run(s) with these settings kept, 0 to train" in capsys.readouterr().out
    assert [r["seed"] for r in json.loads(merged.read_text())["runs"]] == [3, 4]


@pytest.mark.slow
def test_bench_accuracy_trains_runs_side_by_side(tmp_path):
    """The default path: each run in its own spawned process, two at a time."""
    from hsfpn_yolo.data.synth import generate

    generate(tmp_path / "synth", train=4, val=2, imgsz=64, seed=0)
    out = tmp_path / "acc.json"
    args = ["bench", "accuracy", "--models", "yolov8n", "--seeds", "0,1", "--epochs", "1", "--imgsz", "64"]
    args += ["--starts", "scratch", "--batch", "2", "--jobs", "2", "--data", str(tmp_path / "synth" / "data.yaml")]
    assert main([*args, "--project", str(tmp_path / "runs"), "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert sorted(r["seed"] for r in runs) == [0, 1] and len({r["save_dir"] for r in runs}) == 2


def test_bench_accuracy_refuses_mixed_tasks_and_a_step_below_the_batch(tmp_path, capsys, monkeypatch):
    """Detect and OBB models cannot share a data set, an nbs below the batch is refused, and so are pretrained starts
    for OBB models: all before any data is generated (the datasets folder stays empty) or a run starts."""
    from ultralytics.utils import SETTINGS

    monkeypatch.setitem(SETTINGS, "datasets_dir", str(tmp_path / "datasets"))
    args = ["bench", "accuracy", "--seeds", "0", "--epochs", "1", "--imgsz", "64", "--jobs", "1"]
    args += ["--project", str(tmp_path / "runs"), "--json", str(tmp_path / "acc.json")]
    assert main([*args, "--models", "yolov8n,yolo26n-finepath-obb"]) == 2
    assert "one task per run; got yolov8n: detect, yolo26n-finepath-obb: obb" in capsys.readouterr().err
    assert main([*args, "--models", "yolov8n", "--batch", "8", "--nbs", "4"]) == 2
    assert "nbs=4 is below batch=8" in capsys.readouterr().err
    assert main([*args, "--models", "yolo26n-obb", "--pretrained"]) == 2
    assert "the pretrained start is for detect models only" in capsys.readouterr().err
    assert main([*args, "--models", "yolov8n", "--starts", "scratch,imagenet"]) == 2
    assert "starts are scratch and pretrained; got scratch, imagenet" in capsys.readouterr().err
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "acc.json").exists()


def test_bench_synthetic_set_of_obb_models_has_oriented_labels(tmp_path):
    """OBB models get the same images with oriented labels (cls and four corners), in a folder of their own."""
    from hsfpn_yolo.bench.accuracy import task_of
    from hsfpn_yolo.bench.training import synth_data

    assert task_of(["yolo26n-obb", "yolo26n-hsfpn-obb"]) == "obb" and task_of(["yolo26n", "yolov8n-p2"]) == "detect"
    plain, oriented = (Path(synth_data(2, 1, 64, 0, tmp_path, obb=o)).parent for o in (False, True))
    assert plain != oriented and oriented.name.startswith("hsfpn-bench-synth-obb-")
    for split in ("train", "val"):
        a, b = (sorted(p.name for p in (d / "images" / split).iterdir()) for d in (plain, oriented))
        same = [
            (plain / "images" / split / n).read_bytes() == (oriented / "images" / split / n).read_bytes() for n in a
        ]
        assert a == b and all(same)
    rows = [ln.split() for f in (oriented / "labels").rglob("*.txt") for ln in f.read_text().splitlines()]
    assert rows and all(len(r) == 9 for r in rows)


def test_profile_families():
    assert family("aten::convolution_backward") == "conv" and family("aten::native_group_norm") == "norm"
    assert family("aten::_scaled_dot_product_flash_attention_for_cpu") == "attention"
    assert family("aten::addmm") == "matmul" and family("aten::adaptive_max_pool2d") == "pool"
    assert family("aten::add_") == "other"


def test_bench_plot_draws_the_data(tmp_path, capsys, monkeypatch):
    latency = {"yolov8n": {"infer_b1": {"median_ms": 10.0}}, "yolov8n-hsfpn": {"infer_b1": {"median_ms": 12.0}}}
    speed = {"settings": {"imgsz": 640}, "models": {"cpu": latency}}
    runs = [
        run_row("yolov8n", 0, AP=0.2, AP_vt=0.05, AP_t=0.2, AP_s=0.4, AP_m=-1.0),
        run_row("yolov8n", 1, AP=0.22, AP_vt=0.07, AP_t=0.21, AP_s=0.42, AP_m=-1.0),
        run_row("yolov8n-hsfpn", 0, AP=0.25, AP_vt=0.08, AP_t=0.25, AP_s=0.45, AP_m=-1.0),
    ]
    runs[0]["curve"] = {"AP": [0.05, 0.15, 0.195, 0.2]}  # within 95 % of its best from epoch 3
    runs[2]["curve"] = {"AP": [0.25, None, 0.2, 0.1]}  # its best is the first epoch; the second was not validated
    summary = summarize(runs)
    (tmp_path / "s.json").write_text(json.dumps(speed))
    accuracy = {"settings": {"epochs": 2, "imgsz": 320, "batch": 4, "nbs": 4}, "runs": runs, "summary": summary}
    (tmp_path / "a.json").write_text(json.dumps(accuracy))
    args = ["bench", "plot", "--speed", str(tmp_path / "s.json"), "--accuracy", str(tmp_path / "a.json")]
    figures, savefig = {}, Figure.savefig

    def keep(fig, path, **kwargs):  # each saved figure by file name, to read back what it plots
        figures[path.name] = fig
        return savefig(fig, path, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    assert main([*args, "--out", str(tmp_path / "docs")]) == 0
    printed = capsys.readouterr().out
    for name in (plots.AP_PNG, plots.LATENCY_PNG, plots.SEEDS_PNG, plots.CURVE_PNG):
        png = tmp_path / "docs" / name
        assert str(png) in printed
        image = cv2.imread(str(png))
        width, height = figures[name].get_size_inches() * figures[name].dpi
        assert image.shape == (round(height), round(width), 3)
        # Marks in the first two colours of matplotlib's cycle (blue, orange), not only black axes on white
        blue_minus_red = image[..., 0].astype(int) - image[..., 2]
        assert (blue_minus_red > 60).sum() >= 20 and (blue_minus_red < -60).sum() >= 20, name

    assert figures[plots.AP_PNG].axes[0].get_title() == "AP by object size (2 epochs, imgsz 320, batch 4, nbs 4)"
    bars = [c for c in figures[plots.AP_PNG].axes[0].containers if isinstance(c, BarContainer)]
    assert [[b.get_height() for b in group] for group in bars] == [  # per model, the seed means of AP, vt, t, s
        pytest.approx([0.21, 0.06, 0.205, 0.41]),
        pytest.approx([0.25, 0.08, 0.25, 0.45]),
    ]
    ap = figures[plots.SEEDS_PNG].axes[0].collections  # the AP panel: one dot per run, in model columns
    dots = np.concatenate([c.get_offsets() for c in ap if isinstance(c, PathCollection)])
    np.testing.assert_allclose(dots, [[0, 0.2], [0, 0.22], [1, 0.25]])
    curve, marker, *_ = figures[plots.CURVE_PNG].axes[0].lines  # per run that recorded its curve: line and mark
    np.testing.assert_allclose(curve.get_xydata(), [[1, 0.05], [2, 0.15], [3, 0.195], [4, 0.2]])
    np.testing.assert_allclose(marker.get_xydata(), [[3, 0.195]])
    assert curve.get_label() == "yolov8n seed 0: best 0.200, ≥95% of it from epoch 3"
    assert (
        figures[plots.CURVE_PNG].axes[0].lines[2].get_label()
        == "yolov8n-hsfpn seed 0: best 0.250, ≥95% of it from epoch 1"
    )
    points = [c.get_offsets() for c in figures[plots.LATENCY_PNG].axes[0].collections]
    np.testing.assert_allclose(np.concatenate(points), [[10.0, 0.21], [12.0, 0.25]])  # (latency ms, mean AP)


def test_pretrained_starts_follow_the_stock_counterpart(tmp_path, monkeypatch):
    """Each model starts from its stock counterpart's checkpoint, named by a digest of every pretraining setting;
    checkpoints already on disk are used as they are (nothing is trained)."""
    from ultralytics.utils import SETTINGS

    from hsfpn_yolo.bench import pretrain, training

    monkeypatch.setitem(SETTINGS, "weights_dir", str(tmp_path))
    settings = pretrain.pretrain_settings(200, 50, 256, training.train_settings())
    assert (settings["train"], settings["val"], settings["imgsz"]) == (600, 50, 256)
    assert settings["data_seed"] != training.SYNTH["seed"] and settings["look"] == "pretrain"
    other = pretrain.pretrain_settings(200, 50, 320, training.train_settings())
    assert pretrain.checkpoint_path("yolov8n", settings) != pretrain.checkpoint_path("yolov8n", other)
    for m in ("yolov8n", "yolov8n-p2"):
        path = pretrain.checkpoint_path(m, settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"stand-in")
    monkeypatch.setattr(pretrain, "pretrain_one", lambda *a: pytest.fail("a cached checkpoint was trained again"))
    models = ["yolov8n-hsfpn", "yolov8n-finepath-p2", "yolov8n", "cfg/study/yolov8n-hsfpn-open.yaml"]
    starts = pretrain.starting_points(models, settings, jobs=1)
    p3, p2 = (str(pretrain.checkpoint_path(m, settings)) for m in ("yolov8n", "yolov8n-p2"))
    assert starts == {"yolov8n-hsfpn": p3, "yolov8n-finepath-p2": p2, "yolov8n": p3, models[3]: p3}


def test_yolo26_budget_variant_is_the_stock_model_with_one_key_changed(tmp_path):
    """A model-YAML variant of the YOLO26 budget screen is yolo26n's YAML with that key alone changed, at scale n."""
    import importlib.util

    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("yolo26_budget", REPO / "scripts" / "yolo26_budget.py")
    budget = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(budget)
    assert budget.variant_yaml("yolo26n", {}, tmp_path) == "yolo26n"
    path = budget.variant_yaml("yolo26n", {"reg_max": 16}, tmp_path)
    changed, stock = yaml_model_load(path), yaml_model_load("yolo26n.yaml")
    assert changed.pop("reg_max") == 16 and stock.pop("reg_max") == 1 and changed.pop("scale") == stock.pop("scale")
    changed.pop("yaml_file"), stock.pop("yaml_file")
    assert changed == stock
    assert DetectionModel(path, nc=2, verbose=False).model[-1].reg_max == 16


def test_e2e_heads_validates_both_branches_of_an_end_to_end_run(tmp_path):
    """`scripts/e2e_heads.py` validates a trained YOLO26 run with its one-to-one head and with its one-to-many head
    (through NMS) and prints both with their difference; a model without an end-to-end head is skipped."""
    from ultralytics import YOLO

    from hsfpn_yolo.data.synth import generate
    from tests.conftest import REPO

    generate(tmp_path / "synth", train=4, val=2, imgsz=64, seed=0)
    data = str(tmp_path / "synth" / "data.yaml")
    runs = []
    for i, model in enumerate(("yolo26n.yaml", "yolov8n.yaml")):
        YOLO(model).train(data=data, epochs=1, imgsz=64, batch=2, workers=0, device="cpu", plots=False,
                          project=str(tmp_path / "runs"), name=f"r{i}", exist_ok=True)  # fmt: skip
        runs.append({"model": Path(model).stem, "seed": 0, "epochs": 1, "save_dir": str(tmp_path / "runs" / f"r{i}")})
    (tmp_path / "acc.json").write_text(json.dumps({"runs": runs}))
    argv = [sys.executable, str(REPO / "scripts" / "e2e_heads.py"), "--json", str(tmp_path / "acc.json")]
    out = subprocess.run([*argv, "--out", str(tmp_path / "heads.json")], capture_output=True, text=True, check=True)
    (row,) = json.loads((tmp_path / "heads.json").read_text())
    assert row["model"] == "yolo26n" and set(row) == {"model", "seed", "epochs", "one-to-one", "one-to-many + NMS"}
    assert all(-1 <= v <= 1 for head in ("one-to-one", "one-to-many + NMS") for v in row[head].values())
    lines = out.stdout.splitlines()
    assert any(ln.startswith("| yolo26n | 1 | one-to-one |") for ln in lines)
    assert any(ln.startswith("| yolo26n | | Δ many − one |") for ln in lines) and "yolov8n" not in out.stdout
