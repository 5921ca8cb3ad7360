"""Load a stock YOLO checkpoint (e.g. COCO-pretrained yolov8n.pt) into an HS-FPN model, neck layers included.

Ultralytics transfers weights by state-dict key and shape, and a key names a layer by its index. Inserting HS-FPN rows
shifts the indices of every later layer, so by key alone only the backbone would transfer, and a later layer could
even receive the weights of an unrelated layer that happens to have the same key and shape. Here the source layers
are first aligned with the target's layers with the HS-FPN blocks left out, by module type in YAML order (longest
matching runs first, via difflib); each source layer is then presented under its target's index, and Ultralytics'
own `load` does the rest (shape check, Detect class-count handling, names). A 1x1 convolution that reads a Concat
with inputs appended gets the stock weights for the stock inputs and zeros for the new ones. In the YOLO-neck HS-FPN
models every stock layer has its counterpart, so all of a stock checkpoint of the same scale transfers.
"""

from __future__ import annotations

import copy
import difflib
import functools
from typing import Any

import torch
import torch.nn as nn

from .nn import BLOCKS as BLOCK_NAMES

BLOCKS = tuple(BLOCK_NAMES.values())


def _layers(model: nn.Module) -> list[nn.Module] | None:
    """Return the YAML layers of an Ultralytics model (its `model` Sequential), or None for anything else."""
    layers = getattr(model, "model", None)
    return list(layers) if isinstance(layers, (nn.Sequential, nn.ModuleList)) else None


def _signature(m: nn.Module) -> tuple:
    """Return what must agree for two layers to correspond: the module type and where its inputs come from."""
    return (type(m).__name__, len(m.f) if isinstance(m.f, list) else 1)


def layer_map(source: nn.Module, target: nn.Module) -> dict[int, int]:
    """Return {source layer index: target layer index} for layers that correspond, HS-FPN blocks left out.

    Args:
        source (nn.Module): Stock Ultralytics model (no HS-FPN blocks).
        target (nn.Module): Ultralytics model built from an HS-FPN YAML.
    """
    src, dst = _layers(source), _layers(target)
    keep = [i for i, m in enumerate(dst) if not isinstance(m, BLOCKS)]
    matcher = difflib.SequenceMatcher(
        None, [_signature(m) for m in src], [_signature(dst[i]) for i in keep], autojunk=False
    )
    return {a + k: keep[b + k] for a, b, size in matcher.get_matching_blocks() for k in range(size)}


def aligned_source(source: nn.Module, target: nn.Module) -> nn.Module:
    """Return a shallow copy of `source` whose layer i sits at the index of its counterpart in `target`.

    Positions without a counterpart hold parameter-free identities, so their keys do not exist in the copy.

    Args:
        source (nn.Module): Stock Ultralytics model.
        target (nn.Module): HS-FPN Ultralytics model.
    """
    mapping = layer_map(source, target)
    layers: list[nn.Module] = [nn.Identity() for _ in target.model]
    for i, j in mapping.items():
        layers[j] = source.model[i]
    out = copy.copy(source)  # shares the parameters: nothing is copied but the container
    out._modules = dict(source._modules)
    out.model = nn.Sequential(*layers)
    return out


def widened_inputs(source: nn.Module, target: nn.Module) -> dict[str, torch.Tensor]:
    """Return target tensors for stock 1x1-conv weights whose target reads more input channels (a Concat with inputs
    added).

    A 1x1 convolution after a Concat whose extra inputs are appended last keeps the stock weights for the stock inputs;
    the weights for the added inputs are zero, so the layer computes what the stock layer computed and learns from
    there how to use the added inputs.

    Args:
        source (nn.Module): Stock model aligned with `target` (see `aligned_source`).
        target (nn.Module): HS-FPN model.
    """
    src, dst = source.state_dict(), target.state_dict()
    out = {}
    for k, v in src.items():
        t = dst.get(k)
        if t is None or v.ndim != 4 or t.ndim != 4 or v.shape == t.shape or tuple(v.shape[2:]) != (1, 1):
            continue
        if v.shape[0] == t.shape[0] and t.shape[2:] == (1, 1) and v.shape[1] < t.shape[1]:
            w = torch.zeros_like(t)
            w[:, : v.shape[1]] = v.to(t.dtype)
            out[k] = w
    return out


def has_blocks(model: Any, blocks: tuple[type, ...] = BLOCKS) -> bool:
    """Return True if an Ultralytics model has one of `blocks` (default: every HS-FPN block) among its YAML layers."""
    layers = _layers(model)
    return layers is not None and any(isinstance(m, blocks) for m in layers)


def is_hsfpn(model: Any) -> bool:
    """Return True for a model built from an hsfpn-yolo YAML: HS-FPN blocks among its layers, or `hsfpn_yolo: true`
    in its YAML (the block-free designs, e.g. yolov8-finepath.yaml).
    """
    if _layers(model) is None:
        return False
    marked = isinstance(getattr(model, "yaml", None), dict) and bool(model.yaml.get("hsfpn_yolo"))
    return marked or has_blocks(model)


def wrap_load(stock):
    """Return a `BaseModel.load` that aligns stock checkpoints with HS-FPN models before Ultralytics' own load.

    Args:
        stock (Callable): Ultralytics' `BaseModel.load`.
    """

    @functools.wraps(stock)
    def load(self, weights, verbose=True):
        source = (weights.get("ema") or weights["model"]) if isinstance(weights, dict) else weights
        if not (is_hsfpn(self) and _layers(source) is not None and not is_hsfpn(source)):
            return stock(self, weights, verbose=verbose)
        source = aligned_source(source, self)
        widened = widened_inputs(source.float(), self)
        result = stock(self, source, verbose=verbose)  # a module: Ultralytics reads its state dict and Detect head
        if widened:
            self.load_state_dict(widened, strict=False)
            if verbose:
                from ultralytics.utils import LOGGER

                LOGGER.info(f"Transferred {len(widened)} more items into layers that read added inputs (zeros there)")
        return result

    return load
