"""Teach Ultralytics' YAML model parser the HS-FPN blocks by wrapping it (never copying or editing it).

The stock parser gives an unknown block `c2 = ch[f]`, unscaled args and no input channels, and fails on a list
`from`. The wrapper (1) runs the stock parser once on the meta device with each HS-FPN row replaced by an identity
to learn every layer's channel count, (2) checks each HS-FPN row and rewrites it to explicit arguments with the input
channels first, and (3) runs the stock parser for real. A multi-input `from` is passed as `LayerInputs`, a list that
also indexes like its first entry, so the stock `c2 = ch[f]` yields the (preserved) channel count of the first input.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import inspect
import sys

import torch

from . import lookup, nwd
from ._autoload import wrap_once
from .nn import BLOCKS, HFP, SDP, ConvBNAct, ConvReLU, DCTHighPass, LayerScale, Sum, fuse_blocks
from .transfer import wrap_load

INPUTS = {  # `from` entries each block takes: fewest, most (None: no limit), and how to write them ({} an earlier layer)
    HFP: (1, 1, "a single layer index, e.g. -1"),
    SDP: (2, 2, "[finer level, coarser level (same size or half)], e.g. [-1, {}]"),
    Sum: (2, None, "a list of layer indices, e.g. [-1, {}]"),
}
MIXED_WIDTHS = {SDP}  # blocks whose inputs may differ in channels: they get the list of input channels


class LayerInputs(list):
    """A multi-input `from` list that also indexes like its first entry (`ch[f]` -> channels of input 0)."""

    def __index__(self) -> int:
        """Return the first input index."""
        return self[0]


def _block_args(i: int, f, n: int, name: str, args: list, channels: list[int]) -> list:
    """Check one HS-FPN YAML row and return its explicit positional args (input channels first).

    Args:
        i (int): Layer index.
        f (int | list[int]): The row's `from`.
        n (int): The row's repeats.
        name (str): Block name.
        args (list): The row's args: positional values, optionally ending with a dict of named options.
        channels (list[int]): Output channels of every layer of the model.
    """
    cls, where = BLOCKS[name], f"model YAML layer {i} ({name})"
    inputs = [f] if isinstance(f, int) else list(f)
    fewest, most, how = INPUTS[cls]
    if not fewest <= len(inputs) <= (most or len(inputs)):
        count = f"exactly {fewest}" if fewest == most else f"{fewest} or more"
        raise ValueError(
            f"{where} takes {count} input(s) but `from` is {f}: write `from` as {how.format(max(i - 2, 0))}."
        )
    if not all(-i <= j < i for j in inputs):
        raise ValueError(f"{where}: `from` {f} must name earlier layers (0..{i - 1}, or -1..-{i}).")
    if n != 1:
        raise ValueError(f"{where} cannot be repeated (n={n}): set its repeats to 1.")
    c_in = [channels[j if j >= 0 else i + j] for j in inputs]
    if len(set(c_in)) > 1 and cls not in MIXED_WIDTHS:
        raise ValueError(
            f"{where} needs inputs with equal channels, but `from` {f} has channels {c_in}: give the layers it reads "
            "the same width (e.g. the same lateral Conv width)."
        )
    kwargs = args[-1] if args and isinstance(args[-1], dict) else {}
    positional = list(args[:-1] if kwargs else args)
    options = list(inspect.signature(cls).parameters)[1:]
    try:
        c1 = c_in if cls in MIXED_WIDTHS and len(set(c_in)) > 1 else c_in[0]
        bound = inspect.signature(cls).bind(c1, *positional, **kwargs)
        with torch.device("meta"):
            cls(*bound.args, **bound.kwargs)  # the block's own checks, on the meta device (no memory, no init)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}. Its options, in order, are {options}.") from None
    if kwargs:
        bound.apply_defaults()
    return list(bound.args)


def _layer_channels(d: dict, ch: int, stock) -> list[int]:
    """Return the output channels of every layer up to the last HS-FPN row.

    The stock parser runs on the meta device (no memory, no weight init) with HS-FPN rows replaced by identities.
    """
    probe = copy.deepcopy(d)
    rows = probe["backbone"] + probe["head"]
    last = max(i for i, row in enumerate(rows) if row[2] in BLOCKS)
    probe["backbone"], probe["head"] = rows[: last + 1], []  # later layers cannot change earlier channel counts
    captured = None
    for i, row in enumerate(rows[: last + 1]):
        if row[2] in BLOCKS:
            if i == 0:
                raise ValueError(f"model YAML layer 0 ({row[2]}) cannot be the first layer: it reads earlier layers.")
            # The parser replaces an arg naming one of its locals by that local: "ch" is its live channel list.
            captured = row[3] = ["ch"]
            row[0] = LayerInputs(row[0]) if isinstance(row[0], list) else row[0]
            row[1], row[2] = 1, "nn.Identity"
    with torch.device("meta"):
        stock(probe, ch, verbose=False)
    return list(captured[0])


class UnknownModuleError(KeyError):
    """A model YAML row names a module the parser cannot find (a KeyError, as the stock parser raises, that says so)."""

    def __str__(self) -> str:
        """Return the message itself (KeyError would quote it)."""
        return str(self.args[0])


def check_module_names(rows: list, namespace: dict) -> None:
    """Raise UnknownModuleError for the first row whose module the stock parser would not resolve.

    Args:
        rows (list): The model YAML's backbone and head rows.
        namespace (dict): Globals the stock parser resolves bare names from (`ultralytics.nn.tasks`).
    """
    for i, (_, _, name, _) in enumerate(rows):
        if not isinstance(name, str) or name.startswith(("nn.", "torchvision.ops.")) or name in namespace:
            continue
        layers = [k for k, v in namespace.items() if isinstance(v, type) and issubclass(v, torch.nn.Module)]
        close = difflib.get_close_matches(name, layers, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModuleError(
            f"model YAML layer {i}: unknown module '{name}'.{hint} Use an HS-FPN block ({', '.join(BLOCKS)}), an "
            "Ultralytics layer (ultralytics.nn.modules), nn.<torch.nn module> or torchvision.ops.<module>."
        )


def wrap_parse_model(stock):
    """Return a `parse_model` that builds HS-FPN rows and defers everything else to `stock`.

    Args:
        stock (Callable): Ultralytics' own `parse_model`.
    """

    @functools.wraps(stock)
    def parse_model(d, ch, verbose=True):
        rows = d["backbone"] + d["head"]
        check_module_names(rows, stock.__globals__)
        nwd.options(d)  # a bad `nwd` key fails when the model is built, not at the first training step
        if not any(row[2] in BLOCKS for row in rows):
            return stock(d, ch, verbose=verbose)
        channels = _layer_channels(d, ch, stock)
        explicit = dict(d)
        for part in ("backbone", "head"):
            explicit[part] = []
            for row in d[part]:
                i = len(explicit["backbone"]) + (len(explicit["head"]) if part == "head" else 0)
                f, n, name, args = row
                if name in BLOCKS:
                    row = [
                        LayerInputs(f) if isinstance(f, list) else f,
                        n,
                        name,
                        _block_args(i, f, n, name, args, channels),
                    ]
                explicit[part].append(row)
        model, save = stock(explicit, ch, verbose=verbose)
        for m in model:
            if isinstance(m.f, LayerInputs):
                m.f = list(m.f)  # checkpoints keep plain lists
        return model, save

    return parse_model


def wrap_fuse(stock):
    """Return a `BaseModel.fuse` that also folds the BatchNorm of the HS-FPN blocks (`norm: bn`).

    Args:
        stock (Callable): Ultralytics' own `BaseModel.fuse`.
    """

    @functools.wraps(stock)
    def fuse(self, *args, **kwargs):
        fuse_blocks(self)  # first: the stock fuse decides from the BatchNorm count whether a model is fused already
        return stock(self, *args, **kwargs)

    return fuse


def patch_tasks(tasks) -> None:
    """Teach `ultralytics.nn.tasks` the blocks: names for the YAML parser, the parser wrapper, stock-checkpoint transfer,
    bare model names and safe loading (idempotent; imports no Ultralytics module, see `hsfpn_yolo._autoload`).

    Args:
        tasks (module): `ultralytics.nn.tasks`, fully executed.
    """
    if hasattr(tasks.parse_model, "hsfpn_stock"):
        return
    modules = sys.modules["ultralytics.nn.modules"]  # `tasks` imports from it, so it has finished loading
    for name, cls in BLOCKS.items():
        setattr(tasks, name, cls)  # the parser resolves YAML names from these globals at call time
        setattr(modules, name, cls)
    wrap_once(tasks, "parse_model", wrap_parse_model)
    wrap_once(tasks.BaseModel, "load", wrap_load)  # stock checkpoints transfer into HS-FPN necks too
    wrap_once(tasks.BaseModel, "fuse", wrap_fuse)  # the blocks' BatchNorm folds with the stock layers'
    lookup.install(tasks)  # bare names such as 'yolov8n-hsfpn.yaml' find the packaged YAMLs
    package = sys.modules.get("ultralytics.nn")
    if package is not None and hasattr(package, "parse_model"):  # re-exported copy, once `ultralytics.nn` is loaded
        package.parse_model = tasks.parse_model
    torch.serialization.add_safe_globals([*BLOCKS.values(), ConvBNAct, ConvReLU, DCTHighPass, LayerScale])


def register() -> None:
    """Apply every patch of `hsfpn_yolo._autoload.PATCHES` now, importing those Ultralytics modules (idempotent).

    Installing the package does this by itself, module by module as Ultralytics loads them; call it only where the
    start-up hook cannot run (e.g. `python -S`).
    """
    from ._autoload import PATCHES, apply_patch

    for name in PATCHES:
        apply_patch(name, importlib.import_module(name))
