"""Start-up hook: patch each Ultralytics module the moment it has finished loading, never before and never another one.

Runs from a `.pth` file at every interpreter start, so it imports nothing heavy (no torch, no Ultralytics, no
importlib.abc). A patch runs right after its own module has executed, with that module as its only argument, and
imports no Ultralytics module itself: importing one from there could re-enter a package that is still half-loaded (a
user's first `import ultralytics.data` would then fail). Every Ultralytics symbol the patches touch is listed in
docs/compatibility.md.
"""

import sys

# Ultralytics module -> the "our module:function"s that patch it once it has executed
PATCHES = {
    "ultralytics.nn.tasks": (
        "hsfpn_yolo.register:patch_tasks",  # YAML parser, weight transfer, bare names
        "hsfpn_yolo.nwd:patch_tasks",  # NWD assignment and box loss from the model YAML
    ),
    "ultralytics.engine.exporter": ("hsfpn_yolo.export:patch_exporter",),  # the export check
    "ultralytics.utils.callbacks.base": (
        "hsfpn_yolo.metrics.hooks:patch_callbacks",  # tiny-object AP
        "hsfpn_yolo.gates:patch_callbacks",  # gate values while training
        "hsfpn_yolo.nwd:patch_callbacks",  # NWD's constant: auto, measured on the training set
    ),
    "ultralytics.data.utils": ("hsfpn_yolo.lookup:patch_data_utils",),  # bare dataset YAML names
    "ultralytics.engine.trainer": ("hsfpn_yolo.gates:patch_trainer",),  # gates: no weight decay, never Muon
}


def wrap_once(owner, name: str, make) -> None:
    """Replace `owner.<name>` by `make(stock)` unless it is wrapped already; the wrapper keeps the stock function as
    `.hsfpn_stock`, the mark every patch checks so that it applies once.

    Args:
        owner (module | type): Module or class holding the function.
        name (str): Attribute name.
        make (Callable): Returns the wrapper for the stock function.
    """
    stock = getattr(owner, name)
    if not hasattr(stock, "hsfpn_stock"):
        wrapper = make(stock)
        wrapper.hsfpn_stock = stock
        setattr(owner, name, wrapper)


def apply_patch(name: str, module) -> None:
    """Apply the patches of Ultralytics module `name` to `module` (each patch is idempotent)."""
    import importlib

    for target in PATCHES[name]:
        where, function = target.split(":")
        getattr(importlib.import_module(where), function)(module)


def apply_patch_safely(name: str, module) -> None:
    """Apply the patches of `name`; a patch that fails warns instead of failing the user's import of Ultralytics."""
    try:
        apply_patch(name, module)
    except Exception as e:
        import warnings

        warnings.warn(
            f"hsfpn-yolo could not patch {name} ({type(e).__name__}: {e}); Ultralytics itself is unaffected, but the "
            "HS-FPN additions that patch provides are missing. Check that the installed Ultralytics is a supported "
            "release (docs/compatibility.md).",
            RuntimeWarning,
            stacklevel=2,
        )


def is_loaded(name: str) -> bool:
    """Return whether module `name` has finished executing (not merely entered into sys.modules)."""
    module = sys.modules.get(name)
    return module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False)


class _PatchAfterExec:
    """Loader wrapper that executes a module with its own loader, then applies its patch."""

    def __init__(self, loader, name: str):
        self.loader, self.name = loader, name

    def __getattr__(self, attr):
        """Delegate everything else (get_source, resource readers, ...) to the real loader."""
        return getattr(self.loader, attr)

    def create_module(self, spec):
        """Delegate module creation."""
        return self.loader.create_module(spec)

    def exec_module(self, module):
        """Execute the module, hand it back its own loader, then patch it."""
        self.loader.exec_module(module)
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        apply_patch_safely(self.name, module)


class _PatchFinder:
    """Meta-path finder that wraps the loaders of the modules in PATCHES; it leaves `sys.meta_path` once all are seen."""

    def __init__(self, pending: set[str]):
        self.pending = pending

    def find_spec(self, name, path=None, target=None):
        """Find a module in PATCHES through the remaining finders and wrap its loader; ignore every other name."""
        if name not in self.pending:
            return None
        self.pending.discard(name)
        if not self.pending and self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchAfterExec(spec.loader, name)
                return spec
        return None


def install() -> None:
    """Patch the modules already loaded at once and watch for the others (idempotent)."""
    if any(isinstance(f, _PatchFinder) for f in sys.meta_path):
        return
    pending = set()
    for name in PATCHES:
        if is_loaded(name):
            apply_patch_safely(name, sys.modules[name])
        else:
            pending.add(name)
    if pending:
        sys.meta_path.insert(0, _PatchFinder(pending))


install()
