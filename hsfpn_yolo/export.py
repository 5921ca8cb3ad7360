"""Guard Ultralytics' exporter for HS-FPN models: exact export formulation on, and no export that silently breaks.

The wrapper around `Exporter.__call__` (installed when `ultralytics.engine.exporter` loads, nothing in Ultralytics is
edited) does three things for a model with HFP or SDP blocks and leaves every other model alone:

1. refuses, before converting, a format listed in `UNSUPPORTED` with an error naming the format and the reason;
2. exports inside `exporting()`, so the blocks trace to the operations every converter carries (see `nn/pooling.py`),
   also for torch.export-based converters (LiteRT) that run the forward like eager code; at a fixed input size
   (`dynamic=False`) they trace to eager mode's operations (pooling windows, constant DCT bases: `nn/tracing.py`);
3. runs the exported file once through Ultralytics' `AutoBackend` on a fixed random input of the export size and
   compares its raw output with the PyTorch model's by `outputs_match`. The check fails closed: a mismatch, an output
   of another shape, or an exported file that does not load or run fails the export with the format and the cause.
   Left uncompared, and said so: int8 exports (not meant to match) and formats in `RUNS_ELSEWHERE` on a machine
   without their hardware. `HSFPN_EXPORT_CHECK=0` skips the comparison (the export is then unchecked).
   OpenVINO's CPU plugin runs fp32 models in bf16 on CPUs with bf16 units (Intel AMX, AVX512-BF16), for every model
   alike: the check compiles at fp32 (`openvino_compiling`), which tests the conversion, and reports the difference at
   the CPU's own default precision beside it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os

import numpy as np
import torch

from .nn import HFP, SDP
from .nn.tracing import exporting
from .transfer import has_blocks

# Formats known not to carry the blocks, with the reason; the export fails before converting. Every format whose
# converter installs on Linux x86 from PyPI was exported and checked (docs/deploy.md): none is listed today.
UNSUPPORTED: dict[str, str] = {}
# Tolerance of the check, element-wise |exported - PyTorch| <= atol + rtol * |PyTorch| (as numpy.allclose), by the
# precision the export keeps (`quantize`: 32 or unset, 16, or an int8 scheme, which is not compared). The raw output
# holds box coordinates in pixels and class scores in [0, 1].
TOLERANCE = {32: (1e-3, 1e-3), 16: (2e-2, 2e-2)}
OUTLIERS = 1e-4  # share of elements allowed beyond the tolerance (fp32 rounding amplified in a few), at most 10x it
ENV_VAR = "HSFPN_EXPORT_CHECK"  # "0": export without the comparison


# Formats whose exported files run only on their own hardware or runtime, never through AutoBackend on a plain machine
RUNS_ELSEWHERE = {
    "edgetpu": "Edge TPU models run on an Edge TPU only",
    "tfjs": "TF.js models run in JavaScript, not through Ultralytics' AutoBackend",
    "imx": "IMX models run on a Sony IMX500 sensor only",
    "rknn": "RKNN models run on a Rockchip NPU only",
    "axelera": "Axelera models run on an Axelera accelerator only",
}


def runs_elsewhere(fmt: str) -> str | None:
    """Return why an export of `fmt` cannot run on this machine (so it is not compared), or None if it can."""
    import platform

    if fmt == "coreml" and platform.system() != "Darwin":
        return "Core ML models run on macOS only"
    if fmt == "engine" and not torch.cuda.is_available():
        return "TensorRT engines run on an NVIDIA GPU only"
    return RUNS_ELSEWHERE.get(fmt)


def outputs_match(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    """Return True when all but a share `OUTLIERS` of the elements are within atol + rtol * |expected| and none is
    beyond ten times that: the runtimes round differently, a broken conversion moves many elements."""
    tol = atol + rtol * np.abs(expected)
    diff = np.abs(got - expected)
    return bool(np.all(diff <= 10 * tol) and np.mean(diff > tol) <= OUTLIERS)  # NaN fails both


def match_rule(rtol: float, atol: float) -> str:
    """Return `outputs_match`'s rule in words, as the check's messages state it."""
    return (
        f"every element within 10 x (atol {atol:g} + rtol {rtol:g} x |PyTorch output|) and all but {OUTLIERS:.2%} "
        "within 1 x that"
    )


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
        with contextlib.suppress(AttributeError):  # read-only in early 8.4 releases: the head then always takes it
            reference.end2end = end_to_end
    with torch.inference_mode():
        return first_tensor(reference(im.float()))


def export_bits(args) -> int:
    """Return the precision an export keeps: 32, 16 or 8 (any int8 scheme), from `quantize` (later 8.4 releases) or
    the `half` / `int8` flags (earlier ones)."""
    quantize = getattr(args, "quantize", None)
    if getattr(args, "int8", False) or quantize not in (None, 16, 32):
        return 8
    return 16 if quantize == 16 or getattr(args, "half", False) else 32


@contextlib.contextmanager
def openvino_compiling(precision: str | None = "f32"):
    """Compile OpenVINO models for the CPU at inference `precision` inside the block, unless the caller sets one (None:
    OpenVINO's default for the CPU, bf16 where it has bf16 units); yield the list of the precisions that the models
    compiled in the block run at, in order."""
    import openvino as ov

    stock, used = ov.Core.compile_model, []

    @functools.wraps(stock)
    def compile_model(self, model, device_name=None, config=None, **kwargs):
        if precision is not None and device_name == "CPU":
            config = {"INFERENCE_PRECISION_HINT": precision, **(config or {})}
        compiled = stock(self, model, device_name, config, **kwargs)
        with contextlib.suppress(Exception):  # a device without the property
            used.append(compiled.get_property("INFERENCE_PRECISION_HINT").to_string())
        return compiled

    ov.Core.compile_model = compile_model
    try:
        yield used
    finally:
        ov.Core.compile_model = stock


def openvino_cpu_precision() -> str | None:
    """Return the inference precision OpenVINO's CPU plugin defaults to on this machine (f32, bf16 or f16), or None
    where it does not say."""
    import openvino as ov

    try:
        return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    except Exception:
        return None


def run_export(path: str, im: torch.Tensor, device, fp16: bool = False) -> np.ndarray:
    """Return the raw output of the exported `path` on `im`, run by its runtime through Ultralytics' AutoBackend."""
    from ultralytics.nn.autobackend import AutoBackend

    return first_tensor(AutoBackend(path, device=device, fp16=fp16, verbose=False)(im.to(device)))


def compared_part(y: np.ndarray, end_to_end: bool) -> np.ndarray:
    """Return what the check compares of a raw output: all of it, or of an end-to-end one (top-k rows of boxes, score,
    class, where near ties may come out in either order) the scores in falling order."""
    return -np.sort(-y[..., 4], axis=-1) if end_to_end else y


def openvino_default_note(path: str, im: torch.Tensor, expected: np.ndarray, device, end_to_end: bool) -> str:
    """Return what the check adds for an OpenVINO export that AutoBackend runs at another precision than fp32 on this
    CPU: that precision and the difference there (informative: it is the same for a stock model); '' at fp32."""
    try:
        with openvino_compiling(None) as used:
            got = compared_part(run_export(path, im, device), end_to_end)
    except Exception as e:
        return f" (compiled at f32; at this CPU's default precision it did not run: {type(e).__name__}: {e})"
    if not used or used[-1] == "f32":
        return ""
    diff = float(np.abs(got - expected).max())
    return (
        f" (compiled at f32; this CPU runs OpenVINO at {used[-1]} by default, as for every model: largest difference "
        f"{diff:.2g} there)"
    )


def verify_export(
    path: str, fmt: str, args, im: torch.Tensor, expected: np.ndarray, device, end_to_end: bool = False
) -> str:
    """Run the exported `path` through AutoBackend on `im`; raise ExportParityError unless it reproduces `expected`.

    With `end_to_end` (YOLO26's NMS-free output, rows ordered by score) the sorted scores are compared.

    Returns a one-line summary of what was checked (or why it was not).
    """
    bits = export_bits(args)
    if bits == 8:
        return f"{fmt}: int8 export, outputs not compared with PyTorch"
    if reason := runs_elsewhere(fmt):
        return f"{fmt}: exported, outputs not compared with PyTorch ({reason})"
    fail = f"format='{fmt}' export of an HS-FPN model failed its check against PyTorch"
    skip = f"Do not deploy {path}; {ENV_VAR}=0 exports without the check."
    is_openvino = fmt == "openvino"  # fp32 and fp16 exports alike: fp16 weights run at the compiled precision
    try:
        with openvino_compiling("f32") if is_openvino else contextlib.nullcontext():
            got = run_export(path, im, device, fp16=bits == 16)
    except Exception as e:
        raise ExportParityError(f"{fail}: the exported file did not run ({type(e).__name__}: {e}). {skip}") from e
    if got.shape != expected.shape:
        raise ExportParityError(f"{fail}: output shape {got.shape}, PyTorch's is {expected.shape}. {skip}")
    rtol, atol = TOLERANCE[bits]
    got, expected = compared_part(got, end_to_end), compared_part(expected, end_to_end)
    diff = float(np.abs(got - expected).max())
    rule = match_rule(rtol, atol)
    if not outputs_match(got, expected, rtol, atol):
        raise ExportParityError(
            f"{fail}: on a {tuple(im.shape)} input its output differs by up to {diff:.3g}, which breaks the rule "
            f"({rule}). {skip}"
        )
    summary = f"{fmt}: outputs match PyTorch by the rule ({rule}); largest difference {diff:.2g}"
    if is_openvino and openvino_cpu_precision() not in (None, "f32"):  # AutoBackend may still set f32 itself
        summary += openvino_default_note(path, im, expected, device, end_to_end)
    return summary


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
        with exporting(static=not self.args.dynamic):  # a fixed size traces to eager mode's operations
            path = stock(self, model, *args, **kwargs)
        fmt = self.args.format  # as normalised by the exporter
        if path is None:
            return path
        if getattr(self.args, "nms", False):  # NMS in the graph: its output is not the PyTorch model's raw output
            LOGGER.info(f"hsfpn-yolo: {fmt} export with nms=True, outputs not compared with PyTorch")
            return path
        if os.getenv(ENV_VAR, "").strip().lower() in {"0", "false", "off", "no"}:
            LOGGER.warning(f"hsfpn-yolo: {fmt} export not compared with PyTorch ({ENV_VAR}=0)")
            return path
        im = torch.rand((1, *self.im.shape[1:]), generator=torch.Generator().manual_seed(0))
        # The exporter takes the NMS-free branch of an end-to-end head (YOLO26) exactly when nms=False
        e2e = self.args.nms is False and getattr(model.model[-1], "one2one_cv2", None) is not None
        expected = reference_output(model, im, e2e)
        summary = verify_export(str(path), fmt, self.args, im, expected, torch.device("cpu"), e2e)
        LOGGER.info(f"hsfpn-yolo: {summary}")
        return path

    return __call__


def patch_exporter(exporter) -> None:
    """Guard `Exporter.__call__` of the loaded `ultralytics.engine.exporter` module (idempotent).

    Args:
        exporter (module): `ultralytics.engine.exporter`, fully executed.
    """
    from ._autoload import wrap_once

    wrap_once(exporter.Exporter, "__call__", wrap_exporter_call)
