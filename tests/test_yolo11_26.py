"""The YOLO11 and YOLO26 HS-FPN models (detect, P2, OBB) are the stock model with the HS-FPN rows inserted: every
scale builds, every stock layer has its counterpart, and a stock checkpoint makes the model compute the stock one."""

from pathlib import Path

import pytest
import torch
import yaml

import hsfpn_yolo  # noqa: F401  (registers the blocks)
from hsfpn_yolo.nn import HFP, SDP
from hsfpn_yolo.transfer import layer_map
from tests.conftest import CFG
from tests.stock import assert_stock_tensors_transferred, assert_stock_layers_kept, stock_checkpoint
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel, OBBModel, yaml_model_load

SCALES = [*"ns", *(pytest.param(s, marks=pytest.mark.slow) for s in "mlx")]  # m, l, x only in the slow run

# family -> (stock counterpart, HFP count, SDP count, index of the node whose Concat gets the appended path)
FAMILIES = {
    "yolo11{}-hsfpn.yaml": ("yolo11{}.yaml", 2, 1, 20),
    "yolo26{}-hsfpn.yaml": ("yolo26{}.yaml", 2, 1, 20),
    "yolo11{}-hsfpn-p2.yaml": ("yolo11{}-p2.yaml", 1, 1, 22),  # written by `yolo11_p2` (Ultralytics ships none)
    "yolo26{}-hsfpn-p2.yaml": ("yolo26{}-p2.yaml", 1, 1, 22),
    "yolo11{}-hsfpn-obb.yaml": ("yolo11{}-obb.yaml", 2, 1, 20),
    "yolo26{}-hsfpn-obb.yaml": ("yolo26{}-obb.yaml", 2, 1, 20),
}

# YOLO11 extended to P2 the way yolov8-p2.yaml extends yolov8.yaml (as yolo26-p2.yaml does for YOLO26), YOLO11's C3k2
# args: the stock model yolo11-hsfpn-p2.yaml is built on. Rows after YOLO11's layer 16 (its P3 node).
YOLO11_P2_HEAD = [
    [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
    [[-1, 2], 1, "Concat", [1]],  # cat backbone P2
    [-1, 2, "C3k2", [128, False]],  # 19 (P2/4-xsmall)
    [-1, 1, "Conv", [128, 3, 2]],
    [[-1, 16], 1, "Concat", [1]],  # cat head P3
    [-1, 2, "C3k2", [256, False]],  # 22 (P3/8-small)
    [-1, 1, "Conv", [256, 3, 2]],
    [[-1, 13], 1, "Concat", [1]],  # cat head P4
    [-1, 2, "C3k2", [512, False]],  # 25 (P4/16-medium)
    [-1, 1, "Conv", [512, 3, 2]],
    [[-1, 10], 1, "Concat", [1]],  # cat head P5
    [-1, 2, "C3k2", [1024, True]],  # 28 (P5/32-large)
    [[19, 22, 25, 28], 1, "Detect", ["nc"]],  # Detect(P2, P3, P4, P5)
]


@pytest.fixture(scope="module")
def yolo11_p2(tmp_path_factory) -> Path:
    """Write yolo11-p2.yaml (YOLO11_P2_HEAD on yolo11.yaml) and return its folder."""
    d = yaml_model_load("yolo11.yaml")
    keep = {k: d[k] for k in ("nc", "scales", "backbone")}
    keep["head"] = d["head"][:6] + YOLO11_P2_HEAD  # YOLO11's top-down nodes (layers 11-16), then the P2 extension
    folder = tmp_path_factory.mktemp("yolo11-p2")
    (folder / "yolo11-p2.yaml").write_text(yaml.safe_dump(keep, sort_keys=False))
    return folder


def stock_yaml(family: str, scale: str, yolo11_p2: Path) -> str:
    """Return the YAML of the stock model a family extends, at `scale`."""
    name = FAMILIES[family][0].format(scale)
    return str(yolo11_p2 / name) if name.startswith("yolo11") and "p2" in name else name


def build(yaml_file: str) -> DetectionModel:
    """Build a detection or OBB model from a YAML, the model class `YOLO(...)` would use."""
    return (OBBModel if "obb" in Path(yaml_file).stem else DetectionModel)(yaml_file, verbose=False)


def tensors(out) -> list[torch.Tensor]:
    """Flatten an eval-mode output (decoded tensor, then the raw prediction dict: boxes, scores, angles, feats)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in tensors(out[k])]
    return [t for o in out for t in tensors(o)]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("family", FAMILIES)
def test_models_are_the_stock_model_with_blocks_inserted(family, scale, yolo11_p2):
    """Every stock layer with weights has a counterpart of its type and tensor shapes (the one node whose Concat gets
    the appended path reads more channels in its first conv, nothing else changes); the HS-FPN blocks are gated."""
    model = build(str(CFG / family.format(scale)))
    stock = build(stock_yaml(family, scale, yolo11_p2))
    _, hfp, sdp, node = FAMILIES[family]
    assert type(model.model[-1]) is type(stock.model[-1]) and model.yaml.get("end2end") == stock.yaml.get("end2end")
    one2one = [getattr(m.model[-1], "one2one_cv2", None) is not None for m in (model, stock)]
    assert model.model[-1].reg_max == stock.model[-1].reg_max and one2one == [family.startswith("yolo26")] * 2
    mapping, widened = assert_stock_layers_kept(stock, model)
    assert mapping[len(stock.model) - 1] == len(model.model) - 1  # head -> head
    assert widened == {node}
    blocks = [m for m in model.model if isinstance(m, (HFP, SDP))]
    assert sum(isinstance(m, HFP) for m in blocks) == hfp and sum(isinstance(m, SDP) for m in blocks) == sdp
    assert all(m.scale is not None and not m.scale.gamma.any() for m in blocks)  # gated, closed at the start
    assert model.stride.tolist() == ([4.0, 8.0, 16.0, 32.0] if "p2" in family else [8.0, 16.0, 32.0])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_stock_tensor_transfers_and_the_model_starts_as_the_stock_one(family, tmp_path, yolo11_p2):
    stock = stock_checkpoint(stock_yaml(family, "n", yolo11_p2), tmp_path / "stock.pt")
    model = YOLO(str(CFG / family.format("n")))
    assert model.task == stock.task == ("obb" if "obb" in family else "detect")
    model.load(tmp_path / "stock.pt")
    assert_stock_tensors_transferred(stock, model)
    # Zero-initialised gates and zero weights for the appended input: the model computes the stock model's function.
    # Compared: the decoded output, the raw head outputs and the features entering the head; for the end-to-end
    # (YOLO26) models also the one-to-one branch's NMS-free output (top max_det boxes, scores, classes).
    x = torch.rand(2, 3, 128, 96)
    a_model, b_model = stock.model.eval(), model.model.eval()
    with torch.inference_mode():
        a, b = tensors(a_model(x)), tensors(b_model(x))
        assert len(a) == len(b) > 2
        for u, v in zip(a, b):
            torch.testing.assert_close(v, u, rtol=1e-4, atol=1e-3)
        if family.startswith("yolo26"):
            a_model.end2end = b_model.end2end = True
            a, b = a_model(x)[0], b_model(x)[0]
            cells = sum((128 // s) * (96 // s) for s in a_model.stride.int().tolist())
            assert a.shape == (2, min(a_model.model[-1].max_det, cells), 7 if "obb" in family else 6)
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-3)


def test_yolo11_p2_takes_the_backbone_and_top_down_nodes_of_a_stock_yolo11(tmp_path):
    """Ultralytics ships no YOLO11-p2: a stock yolo11n checkpoint gives yolo11n-hsfpn-p2 its layers 0-16 (backbone,
    N4 node, P3 top-down node), each into its counterpart."""
    stock = stock_checkpoint("yolo11n.yaml", tmp_path / "stock.pt")
    model = YOLO(str(CFG / "yolo11n-hsfpn-p2.yaml"))
    model.load(tmp_path / "stock.pt")
    mapping = layer_map(stock.model, model.model)
    assert {i: mapping[i] for i in range(17)} == {**{i: i for i in range(14)}, 14: 16, 15: 17, 16: 18}
    ours = model.model.state_dict()
    for k, v in stock.model.state_dict().items():
        i = int(k.split(".")[1])
        if i <= 16:
            assert torch.equal(v, ours[f"model.{mapping[i]}.{k.split('.', 2)[2]}"])


@pytest.mark.parametrize("family", ["yolo11n-hsfpn.yaml", "yolo26n-hsfpn-p2.yaml", "yolo26n-hsfpn-obb.yaml"])
def test_train_mode_backward_reaches_every_block(family):
    model = build(str(CFG / family)).train()
    out = model(torch.randn(2, 3, 128, 96))
    sum(t.float().square().mean() for t in tensors(out)).backward()
    for m in model.model:
        if isinstance(m, (HFP, SDP)):
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
