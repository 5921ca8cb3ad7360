"""Bare model and dataset YAML names (`yolov8n-hsfpn.yaml`, `tiny-synth.yaml`) resolve to the packaged cfg/ folder
from any working directory.

Ultralytics' `yaml_model_load` looks a name up with `check_yaml` twice: as given (`yolov8n-hsfpn.yaml`, allowed to
miss) and without its scale letter (`yolov8-hsfpn.yaml`), each time in the working directory, then in Ultralytics' own
cfg. The wrapper keeps that order and only adds the package's YAMLs after it, so a local file of the same name still
wins. A name that looks like one of ours but matches none gets an error listing the packaged model YAMLs; a missing
path whose file is one of ours (`cfg/yolov8n-hsfpn.yaml` outside the checkout) gets one naming the bare name.
Dataset YAMLs follow the same rule in `check_det_dataset`: Ultralytics' own search first (the working directory, then
its cfg, so a bare `VisDrone.yaml` stays Ultralytics' own), then cfg/datasets/ of the package.
"""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path

OUR_WORDS = ("hsfpn", "finepath")  # a missing YAML whose name has one of these is meant to be ours
CLOSE = 0.8  # so is one whose closest YAML name (difflib ratio >= CLOSE), ours or Ultralytics', is ours
SCALE = re.compile(r"(\d+)([nslmx])(.+)?$")  # Ultralytics' rule (yaml_model_load): the scale letter follows the version
SCALE_HINT = "add a scale letter n/s/m/l/x after the version, e.g. yolov8n-hsfpn.yaml"


def unscaled(name: str) -> str:
    """Return a model name or path without its scale letter, as Ultralytics looks it up (yolov8n-hsfpn.yaml ->
    yolov8-hsfpn.yaml); a name without one is returned as is."""
    return SCALE.sub(r"\1\3", name)


def packaged_models() -> dict[str, Path]:
    """Return the packaged model YAMLs by file name (the unscaled names, e.g. 'yolov8-hsfpn.yaml')."""
    from hsfpn_yolo import CFG_DIR

    return {p.name: p for p in sorted(CFG_DIR.glob("*.yaml"))}


def packaged_yaml(name: str) -> Path | None:
    """Return the packaged YAML that builds model `name`, or None when it is none of ours.

    Args:
        name (str): Model or file name, with or without scale letter and suffix: 'yolov8n-hsfpn', 'yolov8-hsfpn.yaml'.
    """
    file = unscaled(name)
    return packaged_models().get(file if file.endswith((".yaml", ".yml")) else f"{file}.yaml")


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
        f"model YAML '{name}' is not a file and not one of the hsfpn-yolo models.{hint} Packaged models "
        f"({SCALE_HINT}): {names}."
    )


def missing_path_message(path: str) -> str:
    """Return the error for a model YAML path that does not exist but whose file name is a packaged model.

    Args:
        path (str): The path as given, with its scale letter where the caller's had one, e.g. 'cfg/yolov8n-hsfpn.yaml'.
    """
    name = Path(path).name
    scale = "" if unscaled(name) != name else f" ({SCALE_HINT})"
    return (
        f"model YAML '{path}' does not exist. It is packaged with hsfpn-yolo: the bare name '{name}'{scale} works "
        "from any folder."
    )


def wrap_check_yaml(stock):
    """Return a `check_yaml` that falls back to the packaged model YAMLs for bare names and names them for paths.

    Args:
        stock (Callable): Ultralytics' own `check_yaml`.
    """

    # The path last missed without `hard`, by its unscaled form: yaml_model_load asks for 'cfg/yolov8n-hsfpn.yaml'
    # (may miss), then `hard` for 'cfg/yolov8-hsfpn.yaml', so only the first call still shows the scale letter given
    missed: dict[str, str] = {}

    @functools.wraps(stock)
    def check_yaml(file, suffix=(".yaml", ".yml"), hard=True):
        found = stock(file, suffix, hard=False)
        path = str(file).strip()
        if found or not hard:  # the packaged YAMLs come after Ultralytics' whole search, its last call `hard`
            if not found:
                missed.clear()
                missed[unscaled(path)] = path
            return found
        given = missed.pop(path, path)
        missed.clear()
        name = Path(path).name
        ours = packaged_yaml(name)
        if name == path:  # a bare name, not a path the user spelled out
            if ours:
                return str(ours)
            message = not_found_message(name, packaged_models())
            if message:
                raise FileNotFoundError(message)
        elif ours:
            raise FileNotFoundError(missing_path_message(given))
        return stock(file, suffix, hard=True)  # Ultralytics' own error for every other name

    return check_yaml


def packaged_dataset(name: str) -> Path | None:
    """Return the packaged dataset YAML of file name `name` ('tiny-synth.yaml' or 'tiny-synth'), or None."""
    from hsfpn_yolo import CFG_DIR

    path = CFG_DIR / "datasets" / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    return path if path.is_file() else None


def wrap_check_det_dataset(stock, check_file):
    """Return a `check_det_dataset` that falls back to the packaged dataset YAMLs for bare names and names them for
    missing paths.

    Args:
        stock (Callable): Ultralytics' own `check_det_dataset`.
        check_file (Callable): Ultralytics' `check_file`, whose search (working directory, then its cfg) comes first.
    """

    @functools.wraps(stock)
    def check_det_dataset(dataset, *args, **kwargs):
        text = str(dataset).strip()
        name = Path(text).name
        ours = packaged_dataset(name) if "://" not in text and not Path(text).exists() else None
        if ours is not None:
            stem = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
            if name != text:  # a path spelled out that does not exist
                bare = f"the bare name '{stem}' works from any folder"
                if check_file(stem, hard=False):  # a bare name that Ultralytics resolves to its own YAML first
                    bare = f"give its path, {ours} (the bare name '{stem}' is Ultralytics' own)"
                raise FileNotFoundError(
                    f"dataset YAML '{text}' does not exist. It is packaged with hsfpn-yolo: {bare}."
                )
            if not check_file(stem, hard=False):
                dataset = str(ours)
        return stock(dataset, *args, **kwargs)

    return check_det_dataset


def patch_data_utils(utils) -> None:
    """Wrap `check_det_dataset` of the loaded `ultralytics.data.utils` (idempotent; imports no Ultralytics module).

    Args:
        utils (module): `ultralytics.data.utils`, fully executed.
    """
    from ._autoload import wrap_once

    wrap_once(utils, "check_det_dataset", lambda stock: wrap_check_det_dataset(stock, utils.check_file))


def install(tasks) -> None:
    """Wrap the `check_yaml` that `ultralytics.nn.tasks.yaml_model_load` calls (idempotent).

    Args:
        tasks (module): `ultralytics.nn.tasks`.
    """
    from ._autoload import wrap_once

    wrap_once(tasks, "check_yaml", wrap_check_yaml)
