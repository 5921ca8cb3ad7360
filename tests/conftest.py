"""Shared test set-up: keep Ultralytics' settings, datasets and runs inside a per-session temporary folder."""

import os
import tempfile
from pathlib import Path

# Must happen before Ultralytics is imported anywhere: it reads its config dir at import time.
_ROOT = Path(tempfile.mkdtemp(prefix="hsfpn-tests-"))
os.environ.setdefault("YOLO_CONFIG_DIR", str(_ROOT / "config"))
os.environ.setdefault("YOLO_OFFLINE", "1")
# A missing converter must fail its export test, not be pip-installed by Ultralytics mid-run (`make deploy` installs).
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "cfg"


@pytest.fixture(scope="session")
def work_dir() -> Path:
    """Return the session's scratch folder (Ultralytics config lives here too)."""
    return _ROOT
