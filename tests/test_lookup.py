"""Bare model YAML names resolve to the packaged cfg/ folder from any working directory."""

import shutil

import pytest

from hsfpn_yolo.bench.common import model_yaml
from hsfpn_yolo.lookup import SCALE_HINT, packaged_yaml
from hsfpn_yolo.nn import HFP
from tests.conftest import CFG
from tests.helpers import run_python
from ultralytics import YOLO
from ultralytics.utils import ROOT


def layer_types(model: YOLO) -> list[str]:
    """Return the class name of every layer."""
    return [type(m).__name__ for m in model.model.model]


@pytest.mark.parametrize(
    "name, path, scale",
    [
        ("yolov8n-hsfpn.yaml", "yolov8-hsfpn.yaml", "n"),
        ("yolov8s-hsfpn-p2.yaml", "yolov8-hsfpn-p2.yaml", "s"),
        ("yolo11n-hsfpn-p2.yaml", "yolo11-hsfpn-p2.yaml", "n"),
        ("yolo26n-hsfpn.yaml", "yolo26-hsfpn.yaml", "n"),
        ("yolov8n-finepath.yaml", "yolov8-finepath.yaml", "n"),
    ],
)
def test_bare_name_builds_the_packaged_model_from_any_directory(name, path, scale, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no cfg/ here
    bare = YOLO(name)
    full = YOLO(str(CFG / path).replace(path, name))  # the same scale through the explicit path
    assert bare.model.yaml["scale"] == scale
    assert layer_types(bare) == layer_types(full)
    assert [p.shape for p in bare.model.parameters()] == [p.shape for p in full.model.parameters()]


def test_a_local_file_of_the_same_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "cfg" / "models" / "v8" / "yolov8.yaml", tmp_path / "yolov8-hsfpn.yaml")
    model = YOLO("yolov8n-hsfpn.yaml")
    assert not any(isinstance(m, HFP) for m in model.model.model)  # Ultralytics' lookup order is kept


@pytest.mark.parametrize(
    "typo, suggestion", [("yolov8n-hsfnp.yaml", "yolov8-hsfpn.yaml"), ("yolov8s-hsfpm-p2.yaml", "yolov8-hsfpn-p2.yaml")]
)
def test_a_misspelled_name_of_ours_lists_the_packaged_models(typo, suggestion, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        YOLO(typo)
    message = str(e.value)
    assert f"Did you mean '{suggestion}'?" in message
    assert all(p.stem in message for p in CFG.glob("*.yaml"))  # every packaged model is listed


@pytest.mark.parametrize(
    "path, bare",
    [("cfg/yolov8n-hsfpn.yaml", "yolov8n-hsfpn.yaml"), ("../cfg/yolo11s-hsfpn-p2.yaml", "yolo11s-hsfpn-p2.yaml")],
)
def test_a_missing_path_to_one_of_ours_names_the_bare_name(path, bare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # cfg/ is not here
    with pytest.raises(FileNotFoundError) as e:
        YOLO(path)
    message = str(e.value)
    assert f"'{path}' does not exist" in message  # the path as given, scale letter and all
    assert f"the bare name '{bare}' works from any folder" in message and SCALE_HINT not in message
    YOLO(bare)  # and the name it suggests does build


def test_a_missing_unscaled_path_to_one_of_ours_adds_the_scale_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        YOLO("cfg/yolov8-hsfpn.yaml")
    assert f"the bare name 'yolov8-hsfpn.yaml' ({SCALE_HINT}) works from any folder" in str(e.value)


def test_one_resolver_names_the_packaged_yaml():
    for name in ("yolov8n-hsfpn", "yolov8s-hsfpn.yaml", "yolov8-hsfpn.yaml"):
        assert packaged_yaml(name) == CFG / "yolov8-hsfpn.yaml"
    assert packaged_yaml("yolo26x-hsfpn-obb") == CFG / "yolo26-hsfpn-obb.yaml"
    assert packaged_yaml("yolov8n") is None and packaged_yaml("yolov8n-p2.yaml") is None
    # The benchmarks build ours from a path beside the packaged file (the scale letter kept), stock ones by name
    assert model_yaml("yolo11s-hsfpn-p2") == str(CFG / "yolo11s-hsfpn-p2.yaml")
    assert model_yaml("yolov8n-p2") == "yolov8n-p2.yaml" and model_yaml("a/b.yaml") == "a/b.yaml"


@pytest.mark.parametrize("name", ["foo.yaml", "yolov8n-p3.yaml", "yolo11n-p2.yaml", "cfg/foo.yaml"])
def test_other_missing_names_keep_ultralytics_error(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        YOLO(name)
    assert "does not exist" in str(e.value) and "hsfpn-yolo" not in str(e.value)


def test_stock_bare_names_are_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert layer_types(YOLO("yolov8n.yaml")) == layer_types(YOLO(ROOT / "cfg" / "models" / "v8" / "yolov8.yaml"))


def test_bare_name_in_a_process_that_imports_only_ultralytics(tmp_path):
    out = run_python(
        """
        from ultralytics import YOLO
        model = YOLO("yolo11n-hsfpn-obb.yaml")
        print("RESULT", model.task, sum(type(m).__name__ == "HFP" for m in model.model.model))
        """,
        cwd=tmp_path,
    )
    assert "RESULT obb 2" in out
