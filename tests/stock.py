"""Test helpers for models that keep a stock model's layers: a stock checkpoint with real BN statistics, and the check
that every stock layer has its counterpart."""

from pathlib import Path

import torch

from hsfpn_yolo.transfer import layer_map
from ultralytics import YOLO


def stock_checkpoint(name: str, path: Path) -> YOLO:
    """Save a stock model with non-trivial BatchNorm statistics as an Ultralytics checkpoint; return it as loaded."""
    torch.manual_seed(0)
    model = YOLO(name)
    for m in model.model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # away from the identity defaults, so equal outputs mean something
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    model.save(path)
    return YOLO(path)  # checkpoints hold fp16 weights: compare with what the file holds


def assert_stock_layers_kept(stock: torch.nn.Module, model: torch.nn.Module) -> tuple[dict[int, int], set[int]]:
    """Assert every stock layer with weights maps to a layer of `model` of its type and tensor shapes, where only a
    conv reading an appended Concat input may read more channels; return the mapping and the widened layers."""
    mapping = layer_map(stock, model)
    weighted = [i for i, m in enumerate(stock.model) if next(m.parameters(), None) is not None]
    assert set(weighted) <= set(mapping) and len(mapping) >= len(stock.model) - 1  # the widened Concat alone unmapped
    widened = set()
    for i, j in mapping.items():
        assert type(stock.model[i]) is type(model.model[j])
        ours = model.model[j].state_dict()
        for k, v in stock.model[i].state_dict().items():
            t = ours[k]
            assert t.shape == v.shape or (t.ndim == 4 and t.shape[::2] == v.shape[::2] and t.shape[1] > v.shape[1])
            if t.shape != v.shape:
                widened.add(j)
    return mapping, widened


def assert_stock_tensors_transferred(stock: YOLO, model: YOLO) -> None:
    """Assert every tensor of `stock` sits in its counterpart layer of `model` after `model.load` (a conv reading an
    appended Concat input holds it as its leading input channels)."""
    ours, theirs = model.model.state_dict(), stock.model.state_dict()
    mapping = layer_map(stock.model, model.model)
    for k, v in theirs.items():
        t = ours[f"model.{mapping[int(k.split('.')[1])]}.{k.split('.', 2)[2]}"]
        assert torch.equal(v, t[:, : v.shape[1]] if t.shape != v.shape else t), k
