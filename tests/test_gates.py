"""Gate values of gated HS-FPN blocks: read from a model, written per epoch to gates.csv and summed up after training."""

import csv
from pathlib import Path

import pytest
import torch

from hsfpn_yolo.data.synth import generate
from hsfpn_yolo.gates import CSV_NAME, gate_values, summary_line
from ultralytics import YOLO


def test_gate_values_read_every_gated_block():
    model = YOLO("yolov8n-hsfpn.yaml").model
    gated = [i for i, m in enumerate(model.model) if getattr(m, "scale", None) is not None]
    assert gated and [r["layer"] for r in gate_values(model)] == gated
    model.model[gated[0]].scale.gamma.data[:, :2] = torch.tensor([-0.4, 0.2]).view(1, 2, 1, 1)
    first = gate_values(model)[0]
    c = model.model[gated[0]].scale.gamma.numel()
    assert first["max_abs_gamma"] == pytest.approx(0.4) and first["mean_abs_gamma"] == pytest.approx(0.6 / c)
    assert gate_values(YOLO("yolov8n.yaml").model) == []  # stock models have none


def test_summary_line_says_which_gates_stay_shut():
    rows = [{"layer": 13, "block": "HFP", "mean_abs_gamma": 0.2}, {"layer": 14, "block": "SDP", "mean_abs_gamma": 0.01}]
    line = summary_line(rows, 7)
    assert "after 7 epochs" in line and "HFP (layer 13) 0.2" in line and "1 of 2 still below 0.05" in line
    assert "all opened" in summary_line(rows[:1], 7)


def test_training_writes_gates_csv_per_epoch(tmp_path):
    """Two epochs with an optimizer step each (nbs = batch): two rows per gated block, the EMA's values, which moved."""
    generate(tmp_path / "data", train=4, val=2, imgsz=64, seed=3, progress=False)
    model = YOLO("yolov8n-hsfpn.yaml")
    model.train(
        data=str(tmp_path / "data" / "data.yaml"),
        epochs=2,
        imgsz=64,
        batch=4,
        nbs=4,
        warmup_epochs=0,
        workers=0,
        device="cpu",
        project=str(tmp_path / "runs"),
        name="g",
        plots=False,
        val=False,
        seed=0,
    )
    trainer = model.trainer
    with open(Path(trainer.save_dir) / CSV_NAME) as f:
        rows = list(csv.DictReader(f))
    final = gate_values(trainer.ema.ema)
    assert [int(r["epoch"]) for r in rows] == [1] * len(final) + [2] * len(final)
    last = rows[-len(final) :]
    for r, g in zip(last, final):
        assert int(r["layer"]) == g["layer"] and float(r["mean_abs_gamma"]) == pytest.approx(g["mean_abs_gamma"])
        assert g["mean_abs_gamma"] > 0  # the gates moved off zero


@pytest.mark.parametrize("name", ["AdamW", "SGD", "MuSGD"])
def test_gates_train_without_decay_and_outside_muon(name):
    """Every gate sits in the BatchNorm weights' group (weight decay 0, not Muon); no parameter is lost or doubled."""
    from types import SimpleNamespace

    from ultralytics.engine.trainer import BaseTrainer

    model = YOLO("yolov8n-hsfpn.yaml").model
    fake = SimpleNamespace(args=SimpleNamespace(warmup_bias_lr=0.1, nbs=64, batch=16, epochs=1))
    optimizer = BaseTrainer.build_optimizer(fake, model, name=name, lr=0.01, momentum=0.9, decay=5e-4)
    gates = {id(m.scale.gamma) for m in model.model if getattr(m, "scale", None) is not None}
    norm = next(m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    holding = [g for g in optimizer.param_groups if gates & {id(p) for p in g["params"]}]
    assert len(holding) == 1 and any(p is norm for p in holding[0]["params"])
    assert holding[0].get("weight_decay", 0.0) == 0.0 and not holding[0].get("use_muon", False)
    ids = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
