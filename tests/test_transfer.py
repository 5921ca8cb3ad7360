"""Stock checkpoints (e.g. COCO-pretrained yolov8n.pt) load into the HS-FPN models, neck layers included."""

import pytest
import torch

from hsfpn_yolo.transfer import layer_map
from tests.conftest import CFG
from tests.helpers import assert_stock_tensors_transferred, stock_checkpoint
from ultralytics import YOLO


@pytest.mark.parametrize(
    "family", ["yolov8n-hsfpn.yaml", "yolov8n-hsfpn-p2.yaml", "yolov8n-finepath.yaml", "yolov8n-finepath-p2.yaml"]
)
def test_every_stock_tensor_transfers_and_the_model_starts_as_the_stock_one(family, tmp_path):
    stock_name = "yolov8n-p2.yaml" if "p2" in family else "yolov8n.yaml"
    stock = stock_checkpoint(stock_name, tmp_path / "stock.pt")
    model = YOLO(str(CFG / family))
    model.load(tmp_path / "stock.pt")
    assert_stock_tensors_transferred(stock, model)
    # Zero-initialised gates and zero weights for added inputs: with the stock weights the model computes exactly the
    # stock model's function
    x = torch.rand(2, 3, 128, 96)
    with torch.inference_mode():
        a, b = stock.model.eval()(x)[0], model.model.eval()(x)[0]
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-3)


def test_a_node_with_an_added_concat_input_keeps_the_stock_weights_and_zeros(tmp_path):
    """The stride-4 path widens the P3 node's first 1x1 conv by the added input."""
    stock = stock_checkpoint("yolov8n.yaml", tmp_path / "stock.pt")
    model = YOLO(str(CFG / "yolov8n-hsfpn.yaml"))
    model.load(tmp_path / "stock.pt")
    mapping = layer_map(stock.model, model.model)
    src, dst = stock.model.model[15].cv1.conv.weight, model.model.model[mapping[15]].cv1.conv.weight
    assert dst.shape[1] > src.shape[1]  # reads the added input too
    assert torch.equal(dst[:, : src.shape[1]], src.float()) and not dst[:, src.shape[1] :].any()
    x = torch.rand(1, 3, 96, 128)
    with torch.inference_mode():
        torch.testing.assert_close(model.model.eval()(x)[0], stock.model.eval()(x)[0], rtol=1e-4, atol=1e-3)


def test_paper_neck_gets_the_backbone_and_the_matching_pan_layers(tmp_path):
    stock = stock_checkpoint("yolov8n.yaml", tmp_path / "stock.pt")
    model = YOLO(str(CFG / "yolov8n-hsfpn-paper.yaml"))
    model.load(tmp_path / "stock.pt")
    ours, theirs = model.model.state_dict(), stock.model.state_dict()
    backbone = [k for k in theirs if int(k.split(".")[1]) <= 9]
    assert all(torch.equal(theirs[k], ours[k]) for k in backbone)
    mapping = layer_map(stock.model, model.model)
    for i, j in mapping.items():  # only layers of one type correspond, never a layer of another kind
        assert type(stock.model.model[i]) is type(model.model.model[j])
    assert mapping[22] == len(model.model.model) - 1  # Detect -> Detect
    moved = [k for k in theirs if int(k.split(".")[1]) in mapping]
    moved = [
        k for k in moved if torch.equal(theirs[k], ours[f"model.{mapping[int(k.split('.')[1])]}.{k.split('.', 2)[2]}"])
    ]
    assert len(moved) == 305  # the backbone, PAN and Detect (the README's table says so)


def test_load_into_a_stock_model_is_unchanged(tmp_path):
    stock = stock_checkpoint("yolov8n.yaml", tmp_path / "stock.pt")
    model = YOLO("yolov8n.yaml")
    model.load(tmp_path / "stock.pt")
    assert all(torch.equal(v, model.model.state_dict()[k]) for k, v in stock.model.state_dict().items())
