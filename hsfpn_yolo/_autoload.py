"""Start-up hook: register the HS-FPN blocks the moment Ultralytics' model code is imported.

Runs from a `.pth` file at every interpreter start, so it imports nothing heavy (no torch, no importlib.abc).
"""

import sys

_TARGET = "ultralytics.nn.tasks"


def _register() -> None:
    """Register the blocks and install the tiny-object metrics (imports torch and Ultralytics, loaded by then anyway)."""
    from hsfpn_yolo.metrics import install as install_tiny_metrics
    from hsfpn_yolo.register import register

    register()
    install_tiny_metrics()


class _RegisterAfterExec:
    """Loader wrapper that registers the blocks right after `ultralytics.nn.tasks` has executed."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        """Delegate module creation."""
        return self.loader.create_module(spec)

    def exec_module(self, module):
        """Execute the module, then register."""
        self.loader.exec_module(module)
        _register()


class _TasksFinder:
    """Meta-path finder that wraps the loader of `ultralytics.nn.tasks` and then leaves `sys.meta_path`."""

    def find_spec(self, name, path=None, target=None):
        """Find `ultralytics.nn.tasks` through the remaining finders and wrap its loader."""
        if name != _TARGET:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RegisterAfterExec(spec.loader)
                return spec
        return None


def install() -> None:
    """Install the hook once; if Ultralytics' model code is already loaded, register at once."""
    if _TARGET in sys.modules:
        _register()
    elif not any(isinstance(f, _TasksFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TasksFinder())


install()
