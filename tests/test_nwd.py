"""NWD label assignment and box loss: the metric by hand, the assigner on a tiny ground truth, the blended box loss,
the model YAML key (checked when the model is built, bit-identical stock behaviour without it), and `yolo train` with
the key from a fresh process, resumed with the same options."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from hsfpn_yolo import nwd
from tests.conftest import CFG
from tests.fresh_user import fresh_user, output, run
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import BboxLoss
from ultralytics.utils.tal import TaskAlignedAssigner, make_anchors


@pytest.mark.parametrize(
    "box1, box2, constant, w2",
    [
        ((0, 0, 6, 6), (0, 0, 6, 6), 12.8, 0.0),  # identical
        ((0, 0, 6, 6), (1, 0, 7, 6), 12.8, 1.0),  # a 6-px box one pixel off (IoU 5/7)
        ((0, 0, 2, 2), (3, 4, 5, 6), 2.0, 25.0),  # 2-px boxes, apart: centre distance 5, same size
        ((0, 0, 2, 2), (0, 0, 6, 4), 4.0, 4 + 1 + 4 + 1),  # centres (1, 1) / (3, 2), half sides (1, 1) / (3, 2)
        ((0.2, 0.2, 0.7, 0.5), (0.2, 0.2, 1.2, 0.5), 1.0, 0.0625 + 0.0625),  # sub-pixel: half a pixel wider
    ],
)
def test_nwd_matches_a_hand_computation(box1, box2, constant, w2):
    """NWD = exp(-sqrt(|Δcentre|² + |Δ(w/2, h/2)|²) / C), symmetric, batched over leading dims."""
    a, b = torch.tensor(box1, dtype=torch.float64), torch.tensor(box2, dtype=torch.float64)
    expected = math.exp(-math.sqrt(w2 + nwd.EPS) / constant)
    assert float(nwd.nwd(a, b, constant)) == pytest.approx(expected, rel=1e-6)
    assert float(nwd.nwd(b, a, constant)) == pytest.approx(expected, rel=1e-6)
    batch = nwd.nwd(torch.stack([a, b])[None], torch.stack([b, a])[None], constant)
    assert batch.shape == (1, 2) and torch.allclose(batch.double(), torch.full((1, 2), expected, dtype=torch.float64))


def test_nwd_gradient_is_finite_for_identical_boxes_in_fp16():
    """Identical boxes (W2 = 0) and fp16 inputs, as under AMP, still give a finite gradient."""
    box = torch.tensor([[4.0, 4.0, 6.0, 7.0]], dtype=torch.float16, requires_grad=True)
    nwd.nwd(box, box.detach(), 2.0).sum().backward()
    assert torch.isfinite(box.grad).all()


def _tiny_case(shift: float) -> tuple:
    """Anchors of a 64-px image at strides 8/16/32, a 3-px ground truth, and 3-px predictions `shift` px off each anchor."""
    strides = [8, 16, 32]
    feats = [torch.zeros(1, 1, 64 // s, 64 // s) for s in strides]
    anchors, stride = make_anchors(feats, torch.tensor(strides, dtype=torch.float), 0.5)
    points = anchors * stride
    pred = torch.cat([points + shift - 1.5, points + shift + 1.5], 1)[None]
    gt, labels, mask = torch.tensor([[[20.0, 20.0, 23.0, 23.0]]]), torch.zeros(1, 1, 1), torch.ones(1, 1, 1)
    return strides, torch.full((1, len(points), 2), 0.5), pred, points, labels, gt, mask


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_nwd_assigner_gives_a_tiny_ground_truth_more_positives(shift):
    """A 3-px ground truth whose predictions miss it by a pixel or more: CIoU leaves it one positive with a small
    target, NWD every candidate (the STAL-enlarged box's anchors) with a larger one."""
    strides, scores, pred, points, labels, gt, mask = _tiny_case(shift)
    counts, targets = {}, {}
    for cls in (TaskAlignedAssigner, nwd.nwd_assigner(TaskAlignedAssigner)):
        assigner = cls(topk=10, num_classes=2, alpha=0.5, beta=6.0, stride=strides)
        assigner.nwd_constant = 4.0
        _, _, target_scores, fg_mask, _ = assigner(scores, pred, points, labels, gt, mask)
        counts[cls is TaskAlignedAssigner], targets[cls is TaskAlignedAssigner] = int(fg_mask.sum()), target_scores
    assert counts[True] == 1 and counts[False] == 6  # 4 anchors at stride 8, one each at 16 and 32
    assert targets[False].sum() > targets[True].sum()


def test_max_assigner_scores_each_pair_by_the_larger_of_nwd_and_ciou():
    """`assign: max` takes CIoU where it is larger (far-off predictions: CIoU falls polynomially, NWD exponentially)
    and NWD where that is larger (a tiny box a pixel off)."""
    from ultralytics.utils.metrics import bbox_iou

    gt = torch.tensor([[0.0, 0.0, 6.0, 6.0], [0.0, 0.0, 3.0, 3.0]])
    pred = torch.tensor([[-100.0, -100.0, 106.0, 106.0], [1.0, 1.0, 4.0, 4.0]])  # huge box around; 1 px off
    assigner = nwd.nwd_assigner(TaskAlignedAssigner)(topk=10, num_classes=2)
    assigner.nwd_constant, assigner.nwd_max = 4.0, True
    ciou = bbox_iou(gt, pred, xywh=False, CIoU=True).squeeze(-1).clamp(0)
    similarity = nwd.nwd(gt, pred, 4.0)
    assert ciou[0] > similarity[0] and similarity[1] > ciou[1]
    torch.testing.assert_close(assigner.iou_calculation(gt, pred), torch.maximum(ciou, similarity))


def test_nwd_box_loss_blends_with_the_stock_term():
    """w = 0 is the stock loss; w = 1 is the score-weighted mean of 1 - NWD over positives in pixels; DFL unchanged."""
    torch.manual_seed(0)
    b, a, reg_max = 2, 6, 16
    stride = torch.tensor([[8.0]] * 4 + [[16.0]] * 2)
    anchors = torch.rand(a, 2) * 4 + 2
    pred_bboxes = torch.cat([anchors - torch.rand(b, a, 2), anchors + torch.rand(b, a, 2)], -1)
    target_bboxes = torch.cat([anchors - torch.rand(b, a, 2), anchors + torch.rand(b, a, 2)], -1)
    args = (
        torch.randn(b, a, 4 * reg_max),
        pred_bboxes,
        anchors,
        target_bboxes,
        torch.rand(b, a, 3),
        torch.tensor(5.0),
        torch.tensor([[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 0, 1]], dtype=torch.bool),
        torch.tensor([64.0, 64.0]),
        stride,
    )
    stock = BboxLoss(reg_max)
    iou, dfl = stock(*args)
    zero, dfl0 = nwd.NWDBoxLoss(stock, 0.0, 3.0)(*args)
    one, dfl1 = nwd.NWDBoxLoss(stock, 1.0, 3.0)(*args)
    assert torch.equal(zero, iou) and torch.equal(dfl0, dfl) and torch.equal(dfl1, dfl)
    fg, scores = args[6], args[4].sum(-1)
    total = 0.0
    for i, j in fg.nonzero().tolist():
        s = float(stride[j])
        total += (1 - float(nwd.nwd(pred_bboxes[i, j] * s, target_bboxes[i, j] * s, 3.0))) * float(scores[i, j])
    assert float(one) == pytest.approx(total / 5.0, rel=1e-5)


def _yaml_with(tmp_path, key, base: str = "yolov8n.yaml"):
    """Write a copy of a stock or packaged model YAML with a top-level `nwd` key; return its path."""
    from ultralytics.nn.tasks import yaml_model_load

    d = {k: v for k, v in yaml_model_load(base).items() if k != "yaml_file"}  # with its scale, e.g. 'n'
    d["nwd"] = key
    path = tmp_path / f"{base.removesuffix('.yaml')}-nwd.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def _loss(model: DetectionModel, batch: dict) -> torch.Tensor:
    """Return the model's detection loss items on `batch` (criterion built afresh)."""
    model.args, model.criterion = get_cfg(), None
    return model.loss(batch)[0]


def _batch(nc: int) -> dict:
    """A two-image 64-px batch with tiny boxes."""
    from hsfpn_yolo.bench.workloads import synthetic_batch

    return synthetic_batch(2, 64, nc, "cpu", boxes=6)


def test_without_the_key_the_stock_criterion_is_untouched():
    """No key: the wrapped `init_criterion` returns what Ultralytics' own returns, with bit-identical losses."""
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False).train()
    batch = _batch(3)
    model.args = get_cfg()
    wrapped = model.init_criterion()
    stock = DetectionModel.init_criterion.hsfpn_stock(model)
    assert type(wrapped.assigner) is TaskAlignedAssigner and type(wrapped.bbox_loss) is BboxLoss
    model.criterion = stock
    expected = model.loss(batch)[0]
    assert torch.equal(_loss(model, batch), expected)


@pytest.mark.parametrize("base", ["yolov8n.yaml", "yolo26n.yaml", "yolov8n-hsfpn.yaml"])
def test_the_key_switches_assigner_and_box_loss(tmp_path, base):
    """With the key, every detection head (YOLO26's one-to-many and one-to-one too) gets the NWD assigner and box
    loss with the YAML's options, and the loss differs from the stock one while the outputs do not."""
    path = _yaml_with(tmp_path, {"assign": True, "loss": 0.25, "constant": 6.0}, base)
    torch.manual_seed(0)
    model = DetectionModel(str(path), nc=3, verbose=False).train()
    model.args = get_cfg()
    criterion = model.init_criterion()
    for head in nwd._detection_losses(criterion):
        assert type(head.assigner).__name__ == "NWDTaskAlignedAssigner" and head.assigner.nwd_constant == 6.0
        assert isinstance(head.bbox_loss, nwd.NWDBoxLoss) and head.bbox_loss.weight == 0.25
    torch.manual_seed(0)
    stock = DetectionModel(base, nc=3, verbose=False).train()
    x = torch.rand(1, 3, 64, 64)
    assert all(torch.equal(a, b) for a, b in zip(stock.eval()(x)[0:1], model.eval()(x)[0:1]))
    model.train(), stock.train()
    batch = _batch(3)
    assert not torch.equal(_loss(model, batch), _loss(stock, batch))


@pytest.mark.parametrize(
    "key, message",
    [
        ({"los": 0.5}, r"unknown option\(s\) \['los'\]"),
        ({"loss": 1.5}, r"loss is the NWD weight w in \[0, 1\]"),
        ({"constant": 0}, r"constant is C in pixels \(> 0\) or 'auto'"),
        ({"assign": "yes"}, r"assign must be true, false or max"),
        ("on", r"must be true or a mapping"),
    ],
)
def test_a_bad_key_fails_when_the_model_is_built(tmp_path, key, message):
    """A wrong option is named when the model is built, not at the first training step."""
    with pytest.raises(ValueError, match=message):
        YOLO(_yaml_with(tmp_path, key))


def test_auto_constant_needs_training_and_other_tasks_are_refused(tmp_path):
    """Outside training `constant: auto` cannot be measured; a non-detect model with the key says to remove it."""
    model = DetectionModel(str(_yaml_with(tmp_path, True)), nc=3, verbose=False)
    model.args = get_cfg()
    with pytest.raises(ValueError, match="constant 'auto' is measured from the training set"):
        model.init_criterion()
    obb = YOLO(_yaml_with(tmp_path, {"constant": 4.0}, "yolov8n-obb.yaml"), task="obb").model
    obb.args = get_cfg()
    with pytest.raises(ValueError, match="works with detect models .* remove the key"):
        obb.init_criterion()


def test_enable_sets_the_key_on_a_yolo_object_without_touching_its_yaml_dict():
    """`enable` gives a YOLO object's model the options and a callback that carries them to the trained model."""
    model = YOLO("yolov8n.yaml")
    before = model.model.yaml
    nwd.enable(model, loss=0.3)
    assert nwd.options(model.model.yaml) == {"assign": False, "loss": 0.3, "constant": "auto"} and "nwd" not in before
    nwd.enable(model, constant=5.0)
    assert nwd.options(model.model.yaml)["constant"] == 5.0 and nwd.options(model.model.yaml)["loss"] == 0.3
    carried = [c for c in model.callbacks["on_pretrain_routine_end"] if getattr(c, "func", None) is nwd.carry_options]
    assert len(carried) == 1  # the latest call replaces the earlier one
    with pytest.raises(ValueError, match="loss is the NWD weight"):
        nwd.enable(model, loss=-1)


PROBE = """
import sys
from ultralytics import YOLO

def report(trainer):
    c = trainer.model.criterion
    print("criterion:", type(c.assigner).__name__, type(c.bbox_loss).__name__, trainer.model.yaml["nwd"], flush=True)

def stop(trainer):
    raise KeyboardInterrupt  # right after the first epoch's checkpoint: a resumable run

model = YOLO(sys.argv[1])
model.add_callback("on_train_epoch_end", report)
if sys.argv[2] == "stop":
    model.add_callback("on_model_save", stop)
try:
    model.train(**eval(sys.argv[3]))
except KeyboardInterrupt:
    print("stopped")
"""


def _train(cwd, env, model, mode: str, args: str) -> list[str]:
    """Run PROBE in a fresh interpreter; return its output lines that describe the criterion, after a clean exit."""
    proc = run(["python", "-c", PROBE, str(model), mode, args], cwd, env)
    assert proc.returncode == 0, output(proc)[-3000:]
    return output(proc), [ln for ln in proc.stdout.splitlines() if ln.startswith("criterion:")]


def test_yolo_train_with_the_key_then_resume(tmp_path):
    """A YAML with `nwd: true` trained from a fresh process measures C on the training set, trains with NWD and saves
    the options in the checkpoint; resuming that checkpoint in another fresh process trains with the same options."""
    cwd, env = fresh_user(tmp_path)
    args = "dict(data='tiny-synth.yaml', epochs=2, imgsz=64, batch=4, workers=0, device='cpu', plots=False, name='n')"
    log, first = _train(cwd, env, _yaml_with(tmp_path, {"assign": "max"}), "stop", args)
    assert "stopped" in log and len(first) == 1, log[-3000:]
    head = "criterion: NWDTaskAlignedAssigner NWDBoxLoss {'assign': 'max', 'loss': 0.5, 'constant': "
    assert first[0].startswith(head) and "C = " in log and "px (mean box size of the train set)" in log
    constant = float(first[0].removeprefix(head).rstrip("}"))
    assert 1 < constant < 64
    last = cwd / "runs" / "detect" / "n" / "weights" / "last.pt"
    assert torch.load(last, weights_only=False)["ema"].yaml["nwd"]["constant"] == constant
    log, resumed = _train(cwd, env, last, "resume", "dict(resume=True)")
    assert "Resuming training" in log and resumed == [first[0]], log[-3000:]  # epoch 2, the same options
    assert "px (mean box size of the train set)" not in log  # nothing measured again: the checkpoint has C


def test_packaged_yamls_carry_no_key_by_default():
    """The shipped HS-FPN and finepath YAMLs train with Ultralytics' assignment unless a YAML says otherwise."""
    for path in sorted(CFG.glob("*.yaml")):
        if "nwd" not in path.stem:
            assert "nwd" not in yaml.safe_load(path.read_text()), path.name
