"""Whether the blocks run as eager code or are being traced, compiled or exported, and whether sizes may change.

Traced (TorchScript, ONNX, PNNX, OpenVINO), compiled or exported (torch.compile, torch.export) forwards may see
symbolic sizes, so the blocks build size-dependent constants in the graph there. An export at a fixed input size
(`dynamic=False`, Ultralytics' default) does not need that: inside `exporting(static=True)` the sizes are read as
numbers and the blocks trace to what eager mode runs (plain pooling windows, constant DCT bases).
"""

from __future__ import annotations

import contextlib
import warnings

import torch

_STATE = {"exporting": False, "static": False}  # set by `exporting()`


def traced_or_compiled() -> bool:
    """Return True while tracing (TorchScript, ONNX, PNNX, OpenVINO) or compiling (torch.compile, torch.export)."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


@contextlib.contextmanager
def exporting(static: bool = False):
    """Trace the blocks for an export inside the block, also where the forward runs like eager code (torch.export in
    non-strict mode); with `static` the input size is fixed and sizes are read as numbers."""
    previous = dict(_STATE)
    _STATE.update(exporting=True, static=bool(static))
    try:
        yield
    finally:
        _STATE.update(previous)


def in_export() -> bool:
    """Return True inside `exporting()` or while traced or compiled: where the export formulation is needed."""
    return _STATE["exporting"] or traced_or_compiled()


def static_sizes(*sizes):
    """Return `sizes` as Python ints inside `exporting(static=True)` (where traced sizes are constants anyway), else as
    given (ints in eager mode, possibly symbolic while tracing)."""
    if not _STATE["static"] or all(isinstance(s, int) for s in sizes):
        return sizes
    with warnings.catch_warnings():  # the tracer warns that the value becomes a constant: intended for a fixed size
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return tuple(int(s) for s in sizes)
