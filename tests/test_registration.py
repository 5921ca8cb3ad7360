"""What registration adds to Ultralytics' lookups and errors: unknown YAML modules named clearly, `from` hints that name
an earlier layer, bare dataset YAML names, and patches applied only to modules that have finished loading."""

import subprocess
import sys
import types

import pytest
import yaml

from hsfpn_yolo import CFG_DIR, _autoload
from hsfpn_yolo.register import UnknownModuleError
from ultralytics.data.utils import check_det_dataset
from ultralytics.nn.tasks import DetectionModel


def yaml_with(tmp_path, rows: dict) -> str:
    """Write a copy of yolov8-hsfpn.yaml at scale n whose layers (by index) are replaced."""
    d = yaml.safe_load((CFG_DIR / "yolov8-hsfpn.yaml").read_text())
    nb = len(d["backbone"])
    for i, row in rows.items():
        (d["backbone"] if i < nb else d["head"])[i if i < nb else i - nb] = row
    path = tmp_path / "yolov8n-custom.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return str(path)


@pytest.mark.parametrize(
    "name,match",
    [("HFPP", r"layer 12: unknown module 'HFPP'\. Did you mean 'HFP'"), ("C2fx", r"unknown module 'C2fx'.*'C2f'")],
)
def test_unknown_module_names_the_layer_and_the_closest_names(tmp_path, name, match):
    with pytest.raises(KeyError, match=match) as info:  # still a KeyError, as Ultralytics raises
        DetectionModel(yaml_with(tmp_path, {12: [-1, 1, name, []]}), verbose=False)
    assert isinstance(info.value, UnknownModuleError) and not str(info.value).startswith("'")  # readable, unquoted


@pytest.mark.parametrize("layer", [2, 13, 21])
def test_from_hint_names_an_earlier_layer(tmp_path, layer):
    """The hint's example `from` names layers before this one, never the layer itself."""
    with pytest.raises(ValueError, match=rf"layer {layer} \(Sum\) takes 2 or more") as info:
        DetectionModel(yaml_with(tmp_path, {layer: [-1, 1, "Sum", []]}), verbose=False)
    example = [int(x) for x in str(info.value).split("e.g. [")[1].split("]")[0].split(",")]
    assert all(0 <= (j if j >= 0 else layer + j) < layer for j in example), example


def test_bare_dataset_names_find_the_packaged_yamls(tmp_path, monkeypatch):
    """From a folder without them, `tiny-synth-obb.yaml` resolves to the package's; a path that does not exist but
    names one of ours says the bare name works; Ultralytics' own names keep their own YAML."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        FileNotFoundError, match=r"'cfg/datasets/AI-TOD\.yaml' does not exist.*bare name 'AI-TOD\.yaml'"
    ):
        check_det_dataset("cfg/datasets/AI-TOD.yaml", autodownload=False)
    with pytest.raises(FileNotFoundError, match=r"give its path, .*VisDrone\.yaml \(the bare name 'VisDrone\.yaml' is"):
        check_det_dataset("cfg/datasets/VisDrone.yaml", autodownload=False)
    with pytest.raises(FileNotFoundError, match=r"'nothing-here\.yaml' does not exist"):  # Ultralytics' own error
        check_det_dataset("nothing-here.yaml", autodownload=False)
    (tmp_path / "tiny-synth.yaml").write_text("names: {0: local}\npath: .\ntrain: .\nval: .\n")
    assert check_det_dataset("tiny-synth.yaml", autodownload=False)["names"] == {0: "local"}  # a local file wins


def test_patches_wait_for_a_module_that_is_still_loading(monkeypatch):
    """A patch target that is in sys.modules but still executing is not patched yet."""
    module = types.ModuleType("ultralytics.nn.tasks")
    module.__spec__ = types.SimpleNamespace(_initializing=True)
    monkeypatch.setitem(sys.modules, "ultralytics.nn.tasks", module)
    assert not _autoload.is_loaded("ultralytics.nn.tasks")
    module.__spec__._initializing = False
    assert _autoload.is_loaded("ultralytics.nn.tasks")


def test_a_failing_patch_warns_and_the_import_still_succeeds():
    """A patch that raises (an Ultralytics release we do not support, say) must not fail the user's import."""
    code = """
import sys, warnings
import hsfpn_yolo._autoload as autoload
autoload.PATCHES["colorsys"] = ("hsfpn_yolo.no_such_module:patch",)
sys.meta_path.insert(0, autoload._PatchFinder({"colorsys"}))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import colorsys
assert colorsys.rgb_to_hsv(1, 0, 0) == (0.0, 1.0, 1)
assert any("could not patch colorsys" in str(w.message) for w in caught), [str(w.message) for w in caught]
print("OK")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stderr[-2000:]
