"""Every deployment format for the HS-FPN models: exported from a trained checkpoint, run by the format's own runtime
(through Ultralytics' AutoBackend, what `YOLO(exported)` uses) and compared with PyTorch at two input sizes; and the
exporter guard that fails an export which does not reproduce PyTorch."""

import contextlib
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hsfpn_yolo import export as hsfpn_export
from hsfpn_yolo.data.synth import generate
from hsfpn_yolo.export import ExportParityError, first_tensor, run_export
from hsfpn_yolo.bench.common import make_responsive
from hsfpn_yolo.nn import HFP, SDP
from tests.conftest import CFG, REPO
from ultralytics import YOLO

MODELS = ("yolov8n-hsfpn.yaml", "yolov8n-hsfpn-p2.yaml")
# Square and divisible by every pooling grid (plain pooling in the graph), then non-square with overlapping adaptive
# pooling bins (96/8 = 12 and 160/8 = 20 at stride 8 with an 8x8 grid, 24 and 40 at stride 4 with 16x16).
SIZES = ((128, 128), (96, 160))
# name: export arguments, and whether one export serves every input size
FORMATS = {
    "torchscript": ({"format": "torchscript"}, False),
    "onnx": ({"format": "onnx"}, False),
    "onnx-dynamic": ({"format": "onnx", "dynamic": True}, True),
    "openvino": ({"format": "openvino"}, False),
    "openvino-dynamic": ({"format": "openvino", "dynamic": True}, True),
    "ncnn": ({"format": "ncnn"}, False),
    "mnn": ({"format": "mnn"}, False),
    "litert": ({"format": "litert"}, False),
    "saved_model": ({"format": "saved_model"}, False),
}
# Element-wise tolerance on the raw output (box coordinates in pixels, class scores in [0, 1]); every format is fp32.
RTOL, ATOL = 1e-3, 1e-4


@pytest.fixture(scope="module")
def deploy_dir(work_dir) -> Path:
    """Scratch folder of this module's exports, holding the offline calibration sample the TensorFlow export expects."""
    path = work_dir / "deploy"
    path.mkdir(exist_ok=True)
    # Ultralytics' SavedModel export fetches onnx2tf's 20x128x128x3 calibration sample into the working directory
    # before converting (used for int8 only); an offline machine needs a local one.
    sample = np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32)
    np.save(path / "calibration_image_sample_data_20x128x128x3_float32.npy", sample)
    return path


@pytest.fixture(scope="module")
def trained(deploy_dir) -> dict[str, Path]:
    """Checkpoints of a 1-epoch training of each model, made responsive (`make_responsive`): their output depends on
    the input and on the blocks, which the fixture checks."""
    generate(deploy_dir / "tiny", train=16, val=8, imgsz=128, seed=2, progress=False)
    out = {}
    for name in MODELS:
        model = YOLO(str(CFG / name))
        model.train(
            data=str(deploy_dir / "tiny" / "data.yaml"),
            epochs=1,
            imgsz=128,
            batch=4,
            workers=0,
            device="cpu",
            project=str(deploy_dir / "runs"),
            name=name,
            exist_ok=True,
            plots=False,
            val=False,
        )
        model = YOLO(model.trainer.last)
        make_responsive(model.model)
        out[name] = deploy_dir / f"{Path(name).stem}.pt"
        model.save(out[name])
        x = np.random.default_rng(0).random((1, 3, 128, 128), dtype=np.float32)
        y, y_bypassed = pytorch_output(out[name], x), pytorch_output(out[name], x, bypass=True)
        assert (np.abs(y - y_bypassed) > ATOL + RTOL * np.abs(y)).mean() > 0.01  # a lost block fails the comparison
    return out


def pytorch_output(checkpoint: Path, x: np.ndarray, bypass: bool = False) -> np.ndarray:
    """Raw output of the checkpoint's model in fp32 eval mode; with `bypass`, every HFP and SDP passes its (finer)
    input through, to check that the blocks weigh in the output that the tests compare."""
    model = YOLO(checkpoint).model.float().eval()
    with torch.inference_mode(), pytest.MonkeyPatch.context() as m:
        if bypass:
            m.setattr(HFP, "forward", lambda self, t: t)
            m.setattr(SDP, "forward", lambda self, t: t[0])
        return first_tensor(model(torch.from_numpy(x)))


def exported_output(path: str, fmt: str, x: np.ndarray) -> np.ndarray:
    """Raw output of an exported model run by its runtime through AutoBackend; OpenVINO at fp32, its CPU default on
    CPUs without bf16 units (with them it is bf16, which no fp32 tolerance admits, for any model)."""
    with hsfpn_export.openvino_compiling("f32") if fmt.startswith("openvino") else contextlib.nullcontext():
        return run_export(path, torch.from_numpy(x), torch.device("cpu"))


def export_copy(checkpoint: Path, folder: Path, imgsz, **kwargs) -> str:
    """Export a copy of `checkpoint` placed in `folder` (exports land next to the checkpoint); return the export."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(checkpoint, folder / checkpoint.name)
    with contextlib.chdir(folder.parent):  # the SavedModel export reads its calibration sample from here
        return YOLO(folder / checkpoint.name).export(imgsz=list(imgsz), batch=1, device="cpu", **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("name", MODELS)
def test_export_runs_and_matches_pytorch(trained, deploy_dir, name, fmt):
    args, dynamic = FORMATS[fmt]
    checkpoint = trained[name]
    path = export_copy(checkpoint, deploy_dir / f"{checkpoint.stem}-{fmt}-any", SIZES[0], **args) if dynamic else None
    for h, w in SIZES:
        if not dynamic:
            path = export_copy(checkpoint, deploy_dir / f"{checkpoint.stem}-{fmt}-{h}x{w}", (h, w), **args)
        x = np.random.default_rng(h * w).random((1, 3, h, w), dtype=np.float32)
        expected, got = pytorch_output(checkpoint, x), exported_output(path, fmt, x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=f"{fmt} at {h}x{w}")


@pytest.mark.slow
def test_openvino_check_compiles_at_f32_and_reports_the_cpu_default(trained, deploy_dir):
    """OpenVINO's CPU plugin defaults to bf16 on CPUs with bf16 units: the check compares at fp32 and, where the
    default is another precision, states it with the difference there."""
    import openvino as ov

    checkpoint = trained["yolov8n-hsfpn.yaml"]
    path = export_copy(checkpoint, deploy_dir / "openvino-precision", SIZES[0], format="openvino")
    stock, xml = ov.Core.compile_model, next(Path(path).glob("*.xml"))
    with hsfpn_export.openvino_compiling("f32") as used:
        compiled = ov.Core().compile_model(xml, "CPU")
        assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32 and used == ["f32"]
    assert ov.Core.compile_model is stock
    default = hsfpn_export.openvino_cpu_precision()
    with hsfpn_export.openvino_compiling(None) as used:
        ov.Core().compile_model(xml, "CPU")
    assert used == [default]
    x = torch.rand((1, 3, *SIZES[0]), generator=torch.Generator().manual_seed(0))
    expected = pytorch_output(checkpoint, x.numpy())
    summary = hsfpn_export.verify_export(path, "openvino", SimpleNamespace(), x, expected, torch.device("cpu"))
    assert summary.startswith("openvino: outputs match PyTorch")
    if default == "f32":
        assert "by default" not in summary
    else:
        assert f"compiled at f32; this CPU runs OpenVINO at {default} by default" in summary


@pytest.mark.slow
def test_openvino_precision_script_validates_each_run_at_the_default_and_at_fp32(tmp_path):
    """`scripts/openvino_precision.py` exports a trained run to OpenVINO, validates it at the CPU's default precision
    and at fp32, and prints both with their paired difference."""
    import json
    import subprocess
    import sys

    generate(tmp_path / "synth", train=4, val=2, imgsz=64, seed=0, progress=False)
    data = str(tmp_path / "synth" / "data.yaml")
    YOLO("yolov8n.yaml").train(data=data, epochs=1, imgsz=64, batch=2, workers=0, device="cpu", plots=False,
                               project=str(tmp_path / "runs"), name="r", exist_ok=True)  # fmt: skip
    runs = [{"model": "yolov8n", "seed": 0, "save_dir": str(tmp_path / "runs" / "r")}]
    (tmp_path / "acc.json").write_text(json.dumps({"runs": runs}))
    argv = [sys.executable, str(REPO / "scripts" / "openvino_precision.py"), "--json", str(tmp_path / "acc.json")]
    out = subprocess.run([*argv, "--out", str(tmp_path / "p.json")], capture_output=True, text=True, check=True)
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["environment"]["openvino_cpu_default"] == hsfpn_export.openvino_cpu_precision()
    (row,) = saved["runs"]
    assert set(row) == {"model", "seed", "default", "fp32"}
    for precision in ("default", "fp32"):
        values = row[precision]
        assert set(values) == {"AP", "AP50", "AP_vt", "AP_t", "AP_s", "ms", "box_max", "box_mean", "ran_at"}
        assert values["ms"] > 0 and all(-1 <= values[k] <= 1 for k in ("AP", "AP50", "AP_s"))
        assert 0 <= values["box_mean"] <= values["box_max"]
    assert row["fp32"]["box_max"] < 0.01  # compiled at fp32 the export is PyTorch's model: rounding only
    assert row["fp32"]["ran_at"] == "f32" and row["default"]["ran_at"] == hsfpn_export.openvino_cpu_precision()
    lines = out.stdout.splitlines()
    assert any(ln.startswith("| yolov8n | 1 | default |") for ln in lines)
    assert any(ln.startswith("| yolov8n | 1 | fp32 |") for ln in lines)
    assert any(ln.startswith("| yolov8n | | default − fp32 |") for ln in lines)
    assert any(ln.startswith("Largest single-run difference in an AP metric: ") for ln in lines)


@pytest.fixture
def gated_model(tmp_path, monkeypatch) -> YOLO:
    """An untrained, responsive (`make_responsive`) yolov8n-hsfpn exporting into a scratch folder."""
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)  # the initial weights, and so how much each block weighs in the output
    model = YOLO(str(CFG / "yolov8n-hsfpn.yaml"))
    make_responsive(model.model)
    return model


def test_export_that_loses_a_block_fails_naming_the_format(gated_model, monkeypatch):
    exporting = hsfpn_export.exporting

    @contextlib.contextmanager
    def lossy_converter(static=False):  # as if a converter dropped the blocks: the exported graph lacks them
        with exporting(static), monkeypatch.context() as m:
            m.setattr(HFP, "forward", lambda self, x: x)
            m.setattr(SDP, "forward", lambda self, x: x[0])
            yield

    monkeypatch.setattr(hsfpn_export, "exporting", lossy_converter)
    with pytest.raises(
        ExportParityError, match=r"(?s)format='onnx' export of an HS-FPN model failed its check.*breaks"
    ):
        gated_model.export(format="onnx", imgsz=64)


def test_export_of_a_format_that_cannot_carry_the_blocks_fails_before_converting(gated_model, monkeypatch):
    monkeypatch.setitem(hsfpn_export.UNSUPPORTED, "onnx", "no mapping for the attention")
    with pytest.raises(ValueError, match=r"format='onnx' cannot export an HS-FPN model: no mapping for the attention"):
        gated_model.export(format="onnx", imgsz=64)
    assert not list(Path.cwd().glob("*.onnx"))


@pytest.mark.parametrize("dynamic", [False, True])
def test_onnx_export_at_a_fixed_size_traces_to_eager_pooling_and_constant_bases(gated_model, dynamic):
    import onnx

    path = gated_model.export(format="onnx", imgsz=128, dynamic=dynamic)  # the export check compares it, too
    ops = {n.op_type for n in onnx.load(path).graph.node}
    if dynamic:  # sizes may change: bins and bases are built from the input's size in the graph
        assert {"ReduceMax", "Cos"} <= ops
    else:  # the windows of eager mode's pooling, and the DCT bases as constants
        assert {"MaxPool", "AveragePool"} <= ops and not ops & {"ReduceMax", "Cos", "Range"}
