"""Run the installed commands as a new user would: a fresh interpreter, an empty working folder and new Ultralytics
settings, offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import BIN

PROGRAMS = {"yolo": BIN / "yolo", "hsfpn-yolo": BIN / "hsfpn-yolo", "python": Path(sys.executable)}
PROGRAMMING_ERRORS = (  # a command that ends in one of these failed through a bug, not through missing data
    "ImportError",
    "ModuleNotFoundError",
    "AttributeError",
    "TypeError",
    "NameError",
    "KeyError",
    "IndexError",
    "UnboundLocalError",
    "RecursionError",
    "ZeroDivisionError",
    "SyntaxError",
)


def fresh_user(root: Path) -> tuple[Path, dict[str, str]]:
    """Return an empty working folder under ROOT and the environment of a user whose Ultralytics settings are new.

    The settings are written before the first command: Ultralytics' defaults would put runs and datasets next to the
    git checkout its own package is installed from (this repository's), not where a user's first run puts them.
    """
    from ultralytics.utils import SettingsManager

    work, config = root / "work", root / "config"
    work.mkdir(parents=True)
    settings = {"runs_dir": work / "runs", "datasets_dir": root / "datasets", "weights_dir": root / "weights"}
    SettingsManager(config / "Ultralytics" / "settings.json").update({k: str(v) for k, v in settings.items()})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}  # Ultralytics behaves apart in tests
    env.update(YOLO_CONFIG_DIR=str(config), YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false")
    return work, env


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command line whose program is `yolo`, `hsfpn-yolo` or `python`, from this interpreter's environment."""
    program = PROGRAMS[argv[0]]
    return subprocess.run([str(program), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def output(proc: subprocess.CompletedProcess) -> str:
    """Return everything a command printed (Ultralytics logs to stdout, errors go to stderr)."""
    return proc.stdout + proc.stderr


def last_line(text: str) -> str:
    """Return the last non-blank line of TEXT."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def assert_clean_failure(argv: list[str], proc: subprocess.CompletedProcess, names: str) -> None:
    """Assert a command failed on missing input with an error that matches the regex NAMES: `hsfpn-yolo` with one
    `error: ...` line and no traceback, `yolo` and `python` with an exception that is not a programming error."""
    shown = f"{' '.join(argv)}\n{output(proc)[-3000:]}"
    assert proc.returncode != 0, shown
    if argv[0] == "hsfpn-yolo":
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), shown
        error = lines[0]
    else:
        error = last_line(proc.stderr)
        assert error.split(":")[0].rsplit(".", 1)[-1] not in PROGRAMMING_ERRORS, shown
    assert re.search(names, error), f"the error does not name {names!r}: {error}\n{shown}"
