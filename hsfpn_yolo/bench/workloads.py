"""The timed work: models built by name, a synthetic detection batch, inference and one full training step."""

from __future__ import annotations

import copy
from typing import Callable

import torch

from .common import model_yaml


def build(name: str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """Return a freshly initialised DetectionModel in train mode, with Ultralytics' default loss gains attached.

    Args:
        name (str): Model name or YAML (see `model_yaml`).
        device (torch.device | str): Device to put it on.
    """
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import DEFAULT_CFG

    torch.manual_seed(0)
    model = DetectionModel(model_yaml(name), verbose=False).to(device)
    model.args = get_cfg(DEFAULT_CFG)  # the detection loss reads its box/cls/dfl gains from here, as in training
    return model


def deployed(model: torch.nn.Module) -> torch.nn.Module:
    """Return an eval-mode copy with Conv+BN fused, the form `predict`/`val` run."""
    return copy.deepcopy(model).eval().fuse(verbose=False)


def synthetic_batch(n: int, imgsz: int, nc: int, device: torch.device | str, boxes: int = 20) -> dict:
    """Return a training batch dict of random images with `boxes` tiny to small random boxes per image.

    Args:
        n (int): Images.
        imgsz (int): Square image side.
        nc (int): Number of classes.
        device (torch.device | str): Device of the tensors.
        boxes (int): Boxes per image.
    """
    g = torch.Generator().manual_seed(0)
    m = n * boxes
    wh = 0.01 + 0.06 * torch.rand(m, 2, generator=g)  # normalised width/height: about 6-45 px at 640
    xy = wh / 2 + (1 - wh) * torch.rand(m, 2, generator=g)
    batch = {
        "img": torch.rand(n, 3, imgsz, imgsz, generator=g),
        "batch_idx": torch.arange(n).repeat_interleave(boxes).float(),
        "cls": torch.randint(0, nc, (m, 1), generator=g).float(),
        "bboxes": torch.cat((xy, wh), 1),
    }
    return {k: v.to(device) for k, v in batch.items()}


def inference(model: torch.nn.Module, img: torch.Tensor, amp: bool = False) -> Callable[[], object]:
    """Return a call that runs one eval-mode forward of `img` (fp16 autocast when `amp`, CUDA only)."""

    def run():
        with torch.inference_mode(), torch.autocast(img.device.type, torch.float16, enabled=amp):
            return model(img)

    return run


def train_step(model: torch.nn.Module, batch: dict, amp: bool = False) -> Callable[[], None]:
    """Return a call that runs one training step: forward, the model's own detection loss, backward, SGD step.

    Args:
        model (torch.nn.Module): Model from `build` (it is switched to train mode).
        batch (dict): Batch from `synthetic_batch`.
        amp (bool): fp16 autocast with gradient scaling (CUDA only).
    """
    model.train()
    model.criterion = model.init_criterion()
    opt = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)  # small steps: the weights stay realistic
    scaler = torch.amp.GradScaler(batch["img"].device.type, enabled=amp)

    def run():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(batch["img"].device.type, torch.float16, enabled=amp):
            loss, _ = model.loss(batch)
        scaler.scale(loss.sum()).backward()
        scaler.step(opt)
        scaler.update()

    return run
