"""Shared test set-up: keep Ultralytics' settings, datasets and runs inside a per-session temporary folder."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Must happen before Ultralytics is imported anywhere: it reads its config dir at import time.
_ROOT = Path(tempfile.mkdtemp(prefix="hsfpn-tests-"))
_OWN_CONFIG = "YOLO_CONFIG_DIR" not in os.environ  # a config dir given by the caller is left as it is
os.environ.setdefault("YOLO_CONFIG_DIR", str(_ROOT / "config"))
os.environ.setdefault("YOLO_OFFLINE", "1")
# A missing converter must fail its export test, not be pip-installed by Ultralytics mid-run (`make deploy` installs).
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
# Ultralytics' default runs, datasets and weights folders sit next to the git checkout it is installed in (this one):
# point them into the session folder, in a separate interpreter, before this one reads them at import
_FOLDERS = {k: str(_ROOT / k.removesuffix("_dir")) for k in ("runs_dir", "datasets_dir", "weights_dir")}
if _OWN_CONFIG:
    subprocess.run(
        [sys.executable, "-c", f"from ultralytics.utils import SETTINGS; SETTINGS.update({json.dumps(_FOLDERS)})"],
        check=True,
        capture_output=True,
    )

import pytest  # noqa: E402

pytest.register_assert_rewrite("tests.helpers")  # its asserts explain their failures as the tests' own do

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "cfg"


@pytest.fixture(scope="session")
def work_dir() -> Path:
    """Return the session's scratch folder (Ultralytics config lives here too)."""
    return _ROOT
