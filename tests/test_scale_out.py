"""The scale-out paths of Ultralytics with an HS-FPN model, as far as a CPU allows: the DDP worker script (multi-GPU
training pickles the trainer and rebuilds it in each worker) and a hyperparameter-tuning trial (run as a `yolo train`
subprocess on a pickled base checkpoint)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hsfpn_yolo.data.synth import generate
from tests.conftest import CFG
from tests.helpers import run_python
from ultralytics import YOLO
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import YAML
from ultralytics.utils.dist import generate_ddp_file

IMGSZ = 64


@pytest.fixture(scope="module")
def data(work_dir) -> str:
    """A very small synthetic dataset."""
    generate(work_dir / "scale-out", train=8, val=4, imgsz=IMGSZ, seed=3, progress=False)
    return str(work_dir / "scale-out" / "data.yaml")


@pytest.fixture(scope="module")
def ddp_worker(data, work_dir) -> tuple[Path, DetectionTrainer]:
    """The worker script and pickled trainer state written by Ultralytics' own DDP helper for an HS-FPN trainer."""
    overrides = dict(model=str(CFG / "yolov8n-hsfpn.yaml"), data=data, epochs=1, imgsz=IMGSZ, batch=4, workers=0,
                     device="cpu", plots=False, project=str(work_dir / "runs"), name="ddp", exist_ok=True)  # fmt: skip
    trainer = DetectionTrainer(overrides=overrides)
    trainer.model = trainer.get_model(cfg=overrides["model"], weights=None, verbose=False)  # as Model.train() does
    return Path(generate_ddp_file(trainer)), trainer


def test_ddp_worker_state_rebuilds_the_hsfpn_model_in_a_fresh_interpreter(ddp_worker, work_dir):
    script, trainer = ddp_worker
    torch.manual_seed(0)
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    np.save(work_dir / "ddp_input.npy", x.numpy())
    with torch.inference_mode():
        np.save(work_dir / "ddp_expected.npy", trainer.model.float().eval()(x)[0].numpy())
    # What the worker script does before training (`torch_load` of the state, which imports only ultralytics).
    out = run_python(
        f"""
        import numpy as np, torch
        from ultralytics.utils.patches import torch_load
        state = torch_load({str(script.with_suffix(".pt"))!r}, map_location="cpu")
        model = state["model"].float().eval()
        with torch.inference_mode():
            y = model(torch.from_numpy(np.load({str(work_dir / "ddp_input.npy")!r})))[0].numpy()
        kinds = sorted({{type(m).__module__ + "." + type(m).__name__ for m in model.modules() if type(m).__name__ in ("HFP", "SDP")}})
        print("RESULT", kinds, np.abs(y - np.load({str(work_dir / "ddp_expected.npy")!r})).max())
        """,
        cwd=work_dir,
    )
    kinds, diff = out.split("RESULT ")[1].rsplit(" ", 1)
    assert kinds == "['hsfpn_yolo.nn.hfp.HFP', 'hsfpn_yolo.nn.sdp.SDP']" and float(diff) == 0.0


@pytest.mark.slow
def test_ddp_worker_script_trains_the_hsfpn_model(ddp_worker, work_dir):
    script, trainer = ddp_worker
    run_python(script.read_text(), cwd=work_dir)  # the script exactly as a DDP rank runs it, without the launcher
    last = trainer.save_dir / "weights" / "last.pt"
    assert last.is_file()
    assert {"HFP", "SDP"} <= {type(m).__name__ for m in YOLO(last).model.modules()}


@pytest.mark.slow
def test_tune_runs_a_trial_of_the_hsfpn_model_end_to_end(data, work_dir, monkeypatch):
    monkeypatch.chdir(work_dir)
    model = YOLO(str(CFG / "yolov8n-hsfpn.yaml"))
    model.tune(data=data, epochs=1, iterations=1, imgsz=IMGSZ, batch=4, workers=0, device="cpu", plots=False,
               project=str(work_dir / "runs"), name="tune", exist_ok=True)  # fmt: skip
    lines = (work_dir / "runs" / "tune" / "tune_results.ndjson").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    trial = Path(record["save_dirs"]["scale-out"])
    assert "val/cls_loss" in record["datasets"]["scale-out"]  # the trial trained and validated
    # ... as a `yolo train` subprocess on the pickled HS-FPN base checkpoint, with this package's hooks active in it
    assert len((trial / "results.csv").read_text().splitlines()) == 2  # a header and the one epoch
    assert json.loads((trial / "tiny_metrics.json").read_text())["images"] == 4  # the whole val split
    assert Path(YAML.load(trial / "args.yaml")["model"]).name == "yolov8n-hsfpn.pt"
