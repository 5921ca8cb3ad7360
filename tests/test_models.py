"""Every scale of the HS-FPN YAMLs builds through Ultralytics' own parser and runs; misuse fails at build time."""

import json
import subprocess
import sys

import pytest
import torch
import yaml

import hsfpn_yolo  # noqa: F401
from hsfpn_yolo.nn import HFP, SDP, Sum
from tests.conftest import CFG
from tests.helpers import assert_backward_reaches_every_block, assert_stock_layers_kept
from ultralytics.nn.tasks import DetectionModel

SCALES = [*"nsml", pytest.param("x", marks=pytest.mark.slow)]  # the x scale only in the slow run
# Models that keep the stock neck and add to it, with their (HFP, SDP) counts; then the paper's necks
STOCK_PLUS = {
    "yolov8{}-hsfpn.yaml": (2, 1),
    "yolov8{}-hsfpn-p2.yaml": (1, 1),
    "yolov8{}-finepath.yaml": (0, 0),
    "yolov8{}-finepath-p2.yaml": (0, 0),
}
PAPER = ("yolov8{}-hsfpn-paper.yaml", "yolov8{}-hsfpn-paper-p2.yaml")
YAMLS = (*STOCK_PLUS, *PAPER)
WIDTH = {"n": 0.25, "s": 0.5, "m": 0.75, "l": 1.0, "x": 1.25}


def build(name: str) -> DetectionModel:
    """Build a model from a YAML under cfg/ by scale-qualified name, the way `YOLO(...)` does."""
    return DetectionModel(str(CFG / name), verbose=False)


def stock_of(family: str, scale: str) -> DetectionModel:
    """Build the stock YOLOv8 model an HS-FPN family replaces (yolov8{scale} or yolov8{scale}-p2)."""
    return DetectionModel(f"yolov8{scale}{'-p2' if 'p2' in family else ''}.yaml", verbose=False)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("family", PAPER)
def test_paper_necks_build_with_one_scaled_width(family, scale):
    model = build(family.format(scale))
    blocks = [m for m in model.model if isinstance(m, (HFP, SDP, Sum))]
    assert len(blocks) == (10 if "p2" in family else 7)  # HFP, SDP, Sum per level
    for m in model.model:
        if isinstance(m, HFP):
            assert m.out[0].conv.out_channels == int(256 * WIDTH[scale])  # one width D for every level
        if isinstance(m, SDP):
            assert isinstance(m.f, list) and type(m.f) is list  # plain list in checkpoints
    assert model.stride.tolist() == ([4.0, 8.0, 16.0, 32.0] if "p2" in family else [8.0, 16.0, 32.0])


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("family", STOCK_PLUS)
def test_default_necks_are_the_stock_neck_with_blocks_inserted(family, scale):
    """Every stock layer with weights has a counterpart of its type and tensor shapes (a conv after a Concat with an
    input appended reads more channels, nothing else changes); the HS-FPN blocks are gated."""
    model, stock = build(family.format(scale)), stock_of(family, scale)
    _, widened = assert_stock_layers_kept(stock, model)
    assert len(widened) == 1  # the node that reads the appended path
    hfp, sdp = STOCK_PLUS[family]
    blocks = [m for m in model.model if isinstance(m, (HFP, SDP))]
    assert sum(isinstance(m, HFP) for m in blocks) == hfp and sum(isinstance(m, SDP) for m in blocks) == sdp
    assert all(m.scale is not None and not m.scale.gamma.any() for m in blocks)  # gated, closed at the start
    assert model.stride.tolist() == ([4.0, 8.0, 16.0, 32.0] if "p2" in family else [8.0, 16.0, 32.0])


@pytest.mark.parametrize("family", YAMLS)
def test_forward_at_several_sizes(family):
    model = build(family.format("n")).eval()
    with torch.inference_mode():
        for shape in ((1, 3, 320, 320), (1, 3, 640, 640), (2, 3, 384, 640)):
            y = model(torch.zeros(shape))[0]
            cells = sum((shape[2] // s) * (shape[3] // s) for s in model.stride.int().tolist())
            assert y.shape == (shape[0], 84, cells) and torch.isfinite(y).all()


@pytest.mark.parametrize("scale", ["s", pytest.param("x", marks=pytest.mark.slow)])
def test_larger_scales_forward(scale):
    model = build(f"yolov8{scale}-hsfpn-p2.yaml").eval()
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 384, 320))[0].shape[-1] == 96 * 80 + 48 * 40 + 24 * 20 + 12 * 10


@pytest.mark.parametrize("name", ["yolov8n-hsfpn.yaml", "yolov8n-hsfpn-paper.yaml"])
def test_train_mode_backward_reaches_every_block(name):
    torch.manual_seed(0)
    assert_backward_reaches_every_block(build(name), torch.randn(2, 3, 256, 192))


def test_registration_is_idempotent_and_visible_in_ultralytics_namespaces():
    import ultralytics.nn as unn
    import ultralytics.nn.modules as modules
    import ultralytics.nn.tasks as tasks

    from hsfpn_yolo.register import register

    before = tasks.parse_model
    register()
    assert tasks.parse_model is before is unn.parse_model
    assert tasks.HFP is modules.HFP is HFP and tasks.SDP is SDP and tasks.Sum is Sum


def yaml_with(tmp_path, replace: dict, name="yolov8n-hsfpn-paper.yaml"):
    """Write a copy of yolov8-hsfpn-paper.yaml whose head rows (by layer index) are replaced."""
    d = yaml.safe_load((CFG / "yolov8-hsfpn-paper.yaml").read_text())
    nb = len(d["backbone"])
    for i, row in replace.items():
        d["head"][i - nb] = row
    path = tmp_path / name
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return str(path)


@pytest.mark.parametrize(
    "rows,match",
    [
        (
            {15: [13, 1, "SDP", [2]]},
            r"layer 15 \(SDP\) takes exactly 2 input\(s\) but `from` is 13: write `from` as \[",
        ),
        ({11: [[10, 9], 1, "HFP", []]}, r"layer 11 \(HFP\) takes exactly 1 input\(s\).*single layer index"),
        (
            {20: [[15, 9], 1, "Sum", []]},
            r"layer 20 \(Sum\) needs inputs with equal channels, but `from` \[15, 9\] has channels \[64, 256\]",
        ),
        (
            {17: [-1, 1, "HFP", [True, 8, 1.5]]},
            r"layer 17 \(HFP\): ratio must be .* in \(0, 1\), got 1.5.*"
            r"options, in order, are \['dct', 'patch', 'ratio', 'act', 'norm', 'gate', 'out'\]",
        ),
        ({17: [-1, 1, "HFP", [{"dct": True, "norm": "ln"}]]}, r"layer 17 \(HFP\): norm must be one of \('gn', 'bn'\)"),
        ({19: [[17, 18], 1, "SDP", [{"grid": 4, "act": "gelu"}]]}, r"layer 19 \(SDP\): act must be True, False"),
        (
            {17: [-1, 1, "HFP", [{"dct": True, "window": 8}]]},
            r"layer 17 \(HFP\): got an unexpected keyword argument 'window'",
        ),
        ({19: [[17, 18], 1, "SDP", [4, True, "gn", False, 3]]}, r"layer 19 \(SDP\): too many positional arguments"),
        ({13: [-1, 2, "HFP", []]}, r"layer 13 \(HFP\) cannot be repeated \(n=2\)"),
        ({20: [15, 1, "Sum", []]}, r"layer 20 \(Sum\) takes 2 or more input\(s\)"),
        ({15: [[13, 30], 1, "SDP", [2]]}, r"layer 15 \(SDP\): `from` \[13, 30\] must name earlier layers"),
    ],
)
def test_misused_block_fails_at_build_with_layer_and_fix(tmp_path, rows, match):
    with pytest.raises(ValueError, match=match):
        DetectionModel(yaml_with(tmp_path, rows), verbose=False)


def test_named_options_in_yaml(tmp_path):
    model = DetectionModel(
        yaml_with(tmp_path, {17: [-1, 1, "HFP", [{"dct": True, "patch": 4, "ratio": 0.5}]]}), verbose=False
    )
    hfp = model.model[17]
    assert hfp.dct and hfp.patch == 4 and hfp.highpass.ratio == (0.5, 0.5)


def test_cfg_dir_points_at_the_model_yamls():
    for sub, one in (("", "yolov8-hsfpn.yaml"), ("datasets", "tiny-synth.yaml")):  # every model and dataset YAML
        names = {p.name for p in (CFG / sub).glob("*.yaml")}
        assert one in names and {p.name for p in (hsfpn_yolo.CFG_DIR / sub).glob("*.yaml")} == names


def test_installed_package_registers_without_import_and_keeps_startup_light():
    code = (
        "import sys; assert 'torch' not in sys.modules, 'torch imported at start-up'; "
        "from ultralytics.nn.tasks import HFP, SDP, Sum; print(HFP.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hsfpn_yolo.nn.hfp"


# Build every model YAML that Ultralytics ships (scale n) on the meta device and print, per YAML, each layer's type,
# inputs, index and tensor shapes as JSON. `PRISTINE` drops the start-up hook before Ultralytics is imported.
SIGNATURES = """
import json, sys
from pathlib import Path
if PRISTINE:
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_PatchFinder"]
import torch
import ultralytics
from ultralytics.nn import tasks

out = {"registered": hasattr(tasks.parse_model, "hsfpn_stock"), "models": {}}
for path in sorted((Path(ultralytics.__file__).parent / "cfg" / "models").rglob("*.yaml")):
    d = tasks.yaml_model_load(path)
    if "n" in d.get("scales", {}):
        d["scale"] = "n"
    try:
        with torch.device("meta"):
            layers = tasks.parse_model(d, ch=d.get("channels", 3), verbose=False)[0]
    except Exception as e:  # a YAML that needs an optional package
        out["models"][path.name] = type(e).__name__
        continue
    out["models"][path.name] = [
        [type(m).__name__, m.f, m.i, {k: list(v.shape) for k, v in m.state_dict().items()}] for m in layers
    ]
print(json.dumps(out))
"""


def stock_signatures() -> tuple[dict, dict]:
    """Run SIGNATURES in two fresh interpreters at once: without and with the HS-FPN registration."""
    procs = [
        subprocess.Popen([sys.executable, "-c", f"PRISTINE = {p}\n{SIGNATURES}"], stdout=subprocess.PIPE, text=True)
        for p in (True, False)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return tuple(json.loads(o.strip().splitlines()[-1]) for o in outs)


def test_registration_builds_every_stock_yaml_exactly_as_pristine_ultralytics():
    """Registration must not change any stock model: every YAML Ultralytics ships, built with the blocks registered,
    has the same layers (type, inputs, index, tensor shapes) as in an interpreter where the hook never ran."""
    pristine, ours = stock_signatures()
    assert not pristine["registered"] and ours["registered"]
    assert len(pristine["models"]) > 50 and sum(isinstance(v, list) for v in pristine["models"].values()) > 50
    assert ours["models"].keys() == pristine["models"].keys()
    for name, layers in pristine["models"].items():
        assert ours["models"][name] == layers, name


@pytest.mark.parametrize("path", sorted((CFG / "study").glob("*.yaml")), ids=lambda p: p.stem)
def test_study_yamls_build_and_run(path):
    """Every YAML of the design study builds at n through Ultralytics' parser and runs forward; the study variants
    of yolov8-hsfpn.yaml differ from it only as their names say."""
    model = DetectionModel(str(path.with_name(path.name.replace("yolov8-", "yolov8n-", 1))), verbose=False).eval()
    assert model(torch.rand(1, 3, 64, 64))[0].shape[1] == 4 + 80
    gates = [
        float(m.scale.gamma.detach().mean()) for m in model.model if isinstance(m, (HFP, SDP)) and m.scale is not None
    ]
    hfp_outs = [m.out for m in model.model if isinstance(m, HFP)]
    if path.stem == "yolov8-hsfpn-open":
        assert gates == [1.0, 1.0, 1.0]
    if path.stem == "yolov8-hsfpn-dw":
        assert len(hfp_outs) == 2 and all(o[0].groups == o[0].in_channels for o in hfp_outs) and gates == [0.0] * 3
