"""Helpers shared by the test modules: a fresh interpreter, ONNX Runtime outputs, stock checkpoints with the checks
that an HS-FPN model keeps a stock model's layers and tensors, and the gradients that reach the HS-FPN blocks."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

from hsfpn_yolo.bench.common import open_gates
from hsfpn_yolo.nn import HFP, SDP
from hsfpn_yolo.transfer import layer_map
from ultralytics import YOLO

BIN = Path(sys.executable).parent  # the environment's executables: yolo, hsfpn-yolo


def run_python(code: str, cwd: Path, **env) -> str:
    """Run `code` in a fresh interpreter (which imports only what `code` imports); return stdout, fail on error."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    assert out.returncode == 0, f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-3000:]}"
    return out.stdout


def onnx_outputs(path: str, x: np.ndarray) -> np.ndarray:
    """Raw detection output of an exported ONNX file under onnxruntime."""
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def tensors(out) -> list[torch.Tensor]:
    """Flatten a model output (a tensor, or nested lists, tuples and dicts of them; dicts in key order) to tensors."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in tensors(out[k])]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in tensors(o)]
    return []


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


def block_gradients(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor | None]:
    """Return the gradient of every HFP and SDP parameter (None where none arrived) after a train-mode backward pass
    of the mean squared raw outputs."""
    model.train().zero_grad(set_to_none=True)
    sum(t.float().square().mean() for t in tensors(model(x))).backward()
    blocks = [m for m in model.modules() if isinstance(m, (HFP, SDP))]
    grads = {f"{i}.{n}": p.grad for i, m in enumerate(blocks) for n, p in m.named_parameters()}
    model.zero_grad(set_to_none=True)
    return grads


def assert_backward_reaches_every_block(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Assert that in train mode every HS-FPN block parameter gets a finite, non-zero gradient once the residual gates
    are open, and that shut (zero-initialised) gates get one themselves, so that training opens them."""
    shut = block_gradients(model, x)
    stuck = [n for n, g in shut.items() if n.endswith("scale.gamma") and (g is None or not g.any())]
    assert not stuck, f"shut gates without a gradient: {stuck}"
    open_gates(model, torch.Generator().manual_seed(0))
    grads = block_gradients(model, x)
    missing = [n for n, g in grads.items() if g is None or not g.any() or not torch.isfinite(g).all()]
    assert grads and not missing, f"block parameters without a finite non-zero gradient: {missing}"
