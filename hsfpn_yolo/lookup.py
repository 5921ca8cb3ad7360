"""Bare model YAML names (`yolov8n-hsfpn.yaml`) resolve to the packaged cfg/ folder from any working directory.

Ultralytics' `yaml_model_load` looks a name up with `check_yaml` (the working directory, then Ultralytics' own cfg).
The wrapper keeps that order and only adds the package's YAMLs after it, so a local file of the same name still wins.
A name that looks like one of ours but matches none gets an error listing the packaged model YAMLs.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path

OUR_WORDS = ("hsfpn", "finepath")  # a missing YAML whose name has one of these is meant to be ours
CLOSE = 0.8  # so is one whose closest YAML name (difflib ratio >= CLOSE), ours or Ultralytics', is ours


def packaged_models() -> dict[str, Path]:
    """Return the packaged model YAMLs by file name (the unscaled names, e.g. 'yolov8-hsfpn.yaml')."""
    from hsfpn_yolo import CFG_DIR

    return {p.name: p for p in sorted(CFG_DIR.glob("*.yaml"))}


def stock_models() -> set[str]:
    """Return the file names of the model YAMLs Ultralytics ships."""
    from ultralytics.utils import ROOT

    return {p.name for p in (ROOT / "cfg" / "models").rglob("*.yaml")}


def not_found_message(name: str, models: dict[str, Path]) -> str | None:
    """Return the error for a missing model YAML name meant to be one of ours, or None for any other name.

    Args:
        name (str): The unscaled name Ultralytics searched for, e.g. 'yolov8-hsfnp.yaml'.
        models (dict[str, Path]): The packaged model YAMLs by file name.
    """
    close = difflib.get_close_matches(name, [*models, *stock_models()], n=1, cutoff=CLOSE)
    close = [c for c in close if c in models]
    if not close and not any(word in name.lower() for word in OUR_WORDS):
        return None
    hint = f" Did you mean '{close[0]}'?" if close else ""
    names = ", ".join(n.replace(".yaml", "") for n in models)
    return (
        f"model YAML '{name}' is not a file and not one of the hsfpn-yolo models.{hint} Packaged models (add a scale "
        f"letter n/s/m/l/x after the version, e.g. yolov8n-hsfpn.yaml): {names}."
    )


def wrap_check_yaml(stock):
    """Return a `check_yaml` that falls back to the packaged model YAMLs for bare names.

    Args:
        stock (Callable): Ultralytics' own `check_yaml`.
    """

    @functools.wraps(stock)
    def check_yaml(file, suffix=(".yaml", ".yml"), hard=True):
        found = stock(file, suffix, hard=False)
        if found:
            return found
        name = Path(str(file)).name
        if name == str(file).strip():  # a bare name, not a path the user spelled out
            models = packaged_models()
            if name in models:
                return str(models[name])
            message = not_found_message(name, models) if hard else None
            if message:
                raise FileNotFoundError(message)
        return stock(file, suffix, hard=True) if hard else found  # Ultralytics' own error for every other name

    check_yaml.hsfpn_stock = stock
    return check_yaml


def install(tasks) -> None:
    """Wrap the `check_yaml` that `ultralytics.nn.tasks.yaml_model_load` calls (idempotent).

    Args:
        tasks (module): `ultralytics.nn.tasks`.
    """
    if not hasattr(tasks.check_yaml, "hsfpn_stock"):
        tasks.check_yaml = wrap_check_yaml(tasks.check_yaml)
