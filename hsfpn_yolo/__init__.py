"""HS-FPN (High Frequency and Spatial Perception FPN) for Ultralytics YOLO tiny-object detection.

Importing this package installs a light hook that registers the blocks with Ultralytics as soon as its model code is
imported (or at once, if it already is); the installed `.pth` file does the same at every interpreter start.
"""

from . import _autoload  # noqa: F401  (installs the registration hook; imports neither torch nor ultralytics)

__version__ = "0.2.0"
__all__ = ("HFP", "SDP", "Sum", "CFG_DIR", "doctor")


def __getattr__(name: str):
    """Resolve the blocks, `doctor` and `CFG_DIR` lazily so that `import hsfpn_yolo` stays light."""
    if name in {"HFP", "SDP", "Sum"}:
        from . import nn

        return getattr(nn, name)
    if name == "doctor":  # hsfpn_yolo.doctor(data, imgsz=..., models=...): the `hsfpn-yolo doctor` report as a dict
        from .diagnosis import doctor

        return doctor
    if name == "CFG_DIR":  # model and dataset YAMLs: inside an installed wheel, or the checkout's cfg/ (editable)
        from pathlib import Path

        here = Path(__file__).resolve().parent
        return here / "cfg" if (here / "cfg").is_dir() else here.parent / "cfg"
    raise AttributeError(f"module 'hsfpn_yolo' has no attribute {name!r}")
