"""The export check fails closed: an exported HS-FPN model that does not run, has another output shape or departs from
PyTorch fails its export, naming the format and the cause; `HSFPN_EXPORT_CHECK=0` opts out; README and code state
one rule."""

import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hsfpn_yolo import export
from hsfpn_yolo.export import ENV_VAR, TOLERANCE, ExportParityError, match_rule, verify_export
from tests.conftest import REPO
from ultralytics import YOLO

ARGS = SimpleNamespace(quantize=None, half=False)  # an fp32 export


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An ONNX export of yolov8n-hsfpn at 64 px, its input and PyTorch's output for it."""
    model = YOLO("yolov8n-hsfpn.yaml")
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("export-check"))  # a YAML-built model exports into the working folder
    try:
        path = str(Path(model.export(format="onnx", imgsz=64, simplify=False)).resolve())
    finally:
        os.chdir(cwd)
    im = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    return path, im, export.reference_output(model.model, im)


def test_a_matching_export_passes_and_states_the_rule(exported):
    path, im, expected = exported
    summary = verify_export(path, "onnx", ARGS, im, expected, torch.device("cpu"))
    assert summary.startswith("onnx: outputs match PyTorch") and match_rule(*TOLERANCE[32]) in summary


def test_a_departing_output_fails(exported):
    path, im, expected = exported
    with pytest.raises(ExportParityError, match=r"format='onnx'.*differs by up to .*breaks the rule"):
        verify_export(path, "onnx", ARGS, im, expected + 1.0, torch.device("cpu"))


def test_another_output_shape_fails(exported):
    path, im, expected = exported
    with pytest.raises(ExportParityError, match=r"format='onnx'.*output shape \(1, 84, \d+\), PyTorch's is"):
        verify_export(path, "onnx", ARGS, im, expected[..., :-1], torch.device("cpu"))


def test_a_file_that_does_not_run_fails(exported, tmp_path):
    _, im, expected = exported
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(ExportParityError, match=rf"(?s)format='onnx'.*did not run .*{ENV_VAR}=0"):
        verify_export(str(broken), "onnx", ARGS, im, expected, torch.device("cpu"))


def test_formats_for_other_hardware_are_reported_not_compared(exported):
    _, im, expected = exported
    summary = verify_export("model.mlpackage", "coreml", ARGS, im, expected, torch.device("cpu"))
    assert "not compared" in summary and "macOS" in summary
    assert "not compared" in verify_export("m", "onnx", SimpleNamespace(quantize="int8"), im, expected, "cpu")


def test_model_export_fails_closed_and_the_switch_opts_out(tmp_path, monkeypatch):
    """Through `model.export`: a reference that departs fails the export; with the switch off the same export passes."""
    monkeypatch.chdir(tmp_path)
    real = export.reference_output
    monkeypatch.setattr(export, "reference_output", lambda *a, **k: real(*a, **k) + 1.0)
    model = YOLO("yolov8n-hsfpn.yaml")
    with pytest.raises(ExportParityError, match="format='onnx'"):
        model.export(format="onnx", imgsz=64, simplify=False)
    monkeypatch.setenv(ENV_VAR, "0")
    assert Path(model.export(format="onnx", imgsz=64, simplify=False)).is_file()


def test_usage_guide_states_the_rule_of_the_code():
    """docs/usage.md states the export check's tolerances and switch as the code has them."""
    text = " ".join((REPO / "docs" / "usage.md").read_text().split())
    rtol, atol = TOLERANCE[32]
    assert f"10 × (atol {atol:g} + rtol {rtol:g} × |PyTorch output|)" in text
    assert f"all but {export.OUTLIERS:.2%}".replace("%", " %") in text
    half_rtol, half_atol = TOLERANCE[16]
    assert f"fp16: atol {half_atol:g}, rtol {half_rtol:g}" in text
    assert re.search(rf"{ENV_VAR}=0\S* exports without the check", text)


def test_outputs_match_rule():
    expected = np.linspace(-100, 100, 20_000, dtype=np.float32)
    tol = 1e-3 + 1e-3 * np.abs(expected)
    assert export.outputs_match(expected + 0.9 * tol, expected, 1e-3, 1e-3)
    one_far = expected.copy()
    one_far[7] += 11 * tol[7]  # a single element beyond 10x fails
    assert not export.outputs_match(one_far, expected, 1e-3, 1e-3)
    many = expected + 2 * tol * (np.arange(expected.size) % 100 == 0)  # 1 % of the elements beyond 1x fails
    assert not export.outputs_match(many, expected, 1e-3, 1e-3)
    assert not export.outputs_match(np.full_like(expected, np.nan), expected, 1e-3, 1e-3)
