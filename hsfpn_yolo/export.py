"""Guard Ultralytics' exporter for HS-FPN models: exact export formulation on, and no export that silently breaks.

The wrapper around `Exporter.__call__` (installed by `hsfpn_yolo.register`, nothing in Ultralytics is edited) does three
things for a model with HFP or SDP blocks and leaves every other model alone:

1. refuses, before converting, a format listed in `UNSUPPORTED` with an error naming the format and the reason;
2. exports inside `exporting()`, so the blocks trace to the operations every converter carries (see `nn/pooling.py`),
   also for torch.export-based converters (LiteRT) that run the forward like eager code;
3. runs the exported file once through Ultralytics' `AutoBackend` on a fixed random input of the export size and
   compares its raw output with the PyTorch model's; a mismatch beyond the tolerance of the export's precision fails
   the export with the format, the difference and the tolerance. Formats whose runtime cannot run on this machine
   (or int8 exports, which are not meant to match) are reported as exported without that check.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch

from .nn import HFP, SDP
from .nn.pooling import exporting
from .transfer import has_blocks

# Formats known not to carry the blocks, with the reason; the export fails before converting. Every format whose
# converter installs on Linux x86 from PyPI was exported and checked (docs/deploy.md): none is listed today.
UNSUPPORTED: dict[str, str] = {}
# Tolerance of the check, element-wise |exported - PyTorch| <= atol + rtol * |PyTorch| (as numpy.allclose), by the
# precision the export keeps (`quantize`: 32 or unset, 16, or an int8 scheme, which is not compared). The raw output
# holds box coordinates in pixels and class scores in [0, 1].
TOLERANCE = {32: (1e-3, 1e-3), 16: (2e-2, 2e-2)}


OUTLIERS = 1e-4  # share of elements allowed beyond the tolerance (fp32 rounding amplified in a few), at most 10x it


def outputs_match(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    """Return True when all but a share `OUTLIERS` of the elements are within atol + rtol * |expected| and none is
    beyond ten times that: the runtimes round differently, a broken conversion moves many elements."""
    tol = atol + rtol * np.abs(expected)
    diff = np.abs(got - expected)
    return bool(np.all(diff <= 10 * tol) and np.mean(diff > tol) <= OUTLIERS)  # NaN fails both


class ExportParityError(RuntimeError):
    """An exported HS-FPN model does not reproduce the PyTorch model's output."""


def check_format(fmt: str) -> None:
    """Raise a ValueError naming `fmt` and the reason if that export format cannot carry the HS-FPN blocks."""
    if fmt in UNSUPPORTED:
        raise ValueError(f"format='{fmt}' cannot export an HS-FPN model: {UNSUPPORTED[fmt]}.")


def first_tensor(y) -> np.ndarray:
    """Return the first output of a model or backend call as a float32 numpy array."""
    while isinstance(y, (list, tuple)):
        y = y[0]
    return (y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)).astype(np.float32)


def reference_output(model: torch.nn.Module, im: torch.Tensor, end_to_end: bool = False) -> np.ndarray:
    """Return the raw output of an fp32 eval-mode copy of `model` on `im` (the caller's model is left as it was),
    from the end-to-end branch with `end_to_end`, as the exporter chose it."""
    reference = copy.deepcopy(model).float().eval()
    if hasattr(reference, "end2end"):
        reference.end2end = end_to_end
    with torch.inference_mode():
        return first_tensor(reference(im.float()))


def verify_export(
    path: str, fmt: str, args, im: torch.Tensor, expected: np.ndarray, device, end_to_end: bool = False
) -> str:
    """Run the exported `path` through AutoBackend on `im`; raise ExportParityError when it departs from `expected`.

    With `end_to_end` (YOLO26's NMS-free output, rows ordered by score) the sorted scores are compared.

    Returns a one-line summary of what was checked (or why it could not be).
    """
    bits = 16 if args.quantize == 16 or getattr(args, "half", False) else 32 if args.quantize in (None, 32) else 8
    if bits == 8:
        return f"{fmt}: int8 export (quantize={args.quantize}), outputs not compared with PyTorch"
    from ultralytics.nn.autobackend import AutoBackend

    try:
        backend = AutoBackend(path, device=device, fp16=bits == 16, verbose=False)
        got = first_tensor(backend(im.to(device)))
    except Exception as e:  # the runtime is missing or cannot run on this machine (Edge TPU, TensorRT without GPU...)
        return f"{fmt}: exported, outputs not compared with PyTorch here ({type(e).__name__}: {e})"
    if got.shape != expected.shape:
        return f"{fmt}: exported, output shape {got.shape} differs from PyTorch's {expected.shape} (not compared)"
    rtol, atol = TOLERANCE[bits]
    if end_to_end:  # top-k rows (boxes, score, class): near ties may come out in either order, so compare the scores
        got, expected = (-np.sort(-y[..., 4], axis=-1) for y in (got, expected))
    diff = float(np.abs(got - expected).max())
    if not outputs_match(got, expected, rtol, atol):
        raise ExportParityError(
            f"format='{fmt}' produced a broken HS-FPN model: on a {tuple(im.shape)} input its output differs from "
            f"PyTorch's by up to {diff:.3g}, beyond atol={atol:g} + rtol={rtol:g} x |PyTorch output| (allowed: "
            f"{OUTLIERS:g} of the elements up to 10x that). Do not deploy {path}."
        )
    return f"{fmt}: outputs match PyTorch (max |difference| {diff:.2g}; atol={atol:g}, rtol={rtol:g})"


def wrap_exporter_call(stock):
    """Return an `Exporter.__call__` that guards exports of HS-FPN models (see the module docstring).

    Args:
        stock (Callable): Ultralytics' own `Exporter.__call__`.
    """

    @functools.wraps(stock)
    def __call__(self, model=None, *args, **kwargs):
        if not has_blocks(model, (HFP, SDP)):  # Sum and the block-free designs export as stock layers do
            return stock(self, model, *args, **kwargs)
        from ultralytics.utils import LOGGER

        fmt = str(self.args.format).lower()
        check_format({"tflite": "litert", "tensorrt": "engine", "trt": "engine"}.get(fmt, fmt))
        with exporting():
            path = stock(self, model, *args, **kwargs)
        fmt = self.args.format  # as normalised by the exporter
        if path is None or getattr(self.args, "nms", False):
            return path  # nothing to check, or NMS in the graph (different outputs)
        im = torch.rand((1, *self.im.shape[1:]), generator=torch.Generator().manual_seed(0))
        # The exporter takes the NMS-free branch of an end-to-end head (YOLO26) exactly when nms=False
        e2e = self.args.nms is False and getattr(model.model[-1], "one2one_cv2", None) is not None
        expected = reference_output(model, im, e2e)
        summary = verify_export(str(path), fmt, self.args, im, expected, torch.device("cpu"), e2e)
        LOGGER.info(f"hsfpn-yolo: {summary}")
        return path

    __call__.hsfpn_stock = stock
    return __call__
