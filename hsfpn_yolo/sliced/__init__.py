"""Sliced inference on large frames through SAHI: prediction with saved results, and tiny-object validation.

Names are imported on first access, so that the command line can read the option lists without importing Ultralytics.
"""

from importlib import import_module

_WHERE = {
    "POSTPROCESS": "model",
    "load_model": "model",
    "predict_frame": "model",
    "draw_boxes": "predict",
    "predict_sliced": "predict",
    "val_sliced": "val",
}
__all__ = tuple(_WHERE)


def __getattr__(name: str):
    """Import NAME from its module on first access."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
