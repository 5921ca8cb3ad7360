"""`compile=True`: no graph break of ours in any shipped model's forward (train mode, as Ultralytics' trainer compiles
it, and eval mode) or in the NWD loss, and every block and the NWD metric compiled alone match eager, gradients too.

Dynamo is run without a backend (`torch._dynamo.explain`): inductor would spend minutes building C++ kernels here.
A break counts as ours when its innermost frame outside torch lies in the package (`hsfpn_yolo.bench.graph_breaks`);
the others (Ultralytics' own) are printed only.
"""

from __future__ import annotations

import copy
import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel, OBBModel, guess_model_task, yaml_model_load

from hsfpn_yolo import nwd
from hsfpn_yolo.bench.common import model_yaml
from hsfpn_yolo.bench.graph_breaks import explain, split_breaks
from hsfpn_yolo.bench.workloads import synthetic_batch
from hsfpn_yolo.nn import HFP, SDP, Sum
from tests.conftest import CFG

MODEL_CLASSES = {"detect": DetectionModel, "obb": OBBModel}
SHIPPED = sorted(p.stem.replace("-", "n-", 1) for p in CFG.glob("*.yaml"))  # yolov8-hsfpn.yaml -> yolov8n-hsfpn
# The stock model grounds the split: its breaks, in eval mode only, are Ultralytics' (the anchor grid reads a stride as
# a number, after which Dynamo runs the layer loop eagerly). Each model and mode takes 5-25 s (train) or 15-90 s (eval)
# on the 2 CPU cores; the default run keeps two of ours in train mode.
DEFAULT = {("yolov8n-hsfpn", True), ("yolov8n-finepath", True)}
MODEL_CASES = [
    pytest.param(name, train, marks=() if (name, train) in DEFAULT else pytest.mark.slow)
    for name in ["yolov8n", *SHIPPED]
    for train in (True, False)
]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Start and leave every test with Dynamo's caches empty (no recompile limits carried between tests)."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def traced_code(explained) -> set[tuple[Path, str]]:
    """Return the (file, function) pairs that put operations into the explained graphs."""
    frames = set()
    for graph in explained.graphs:
        for node in graph.graph.nodes:
            for file, fn in re.findall(r'File "([^"]+)", line \d+, in (\w+)', node.meta.get("stack_trace") or ""):
                frames.add((Path(file).resolve(), fn))
    return frames


def assert_no_break_of_ours(what: str, fn, *args) -> set[tuple[Path, str]]:
    """Fail on a graph break inside the package, print the others; return the code traced into graphs."""
    explained, breaks = explain(fn, *args)
    ours, theirs = split_breaks(breaks)
    print(f"{what}: {explained.graph_count} graph(s); breaks outside hsfpn_yolo (information): {theirs or 'none'}")
    assert not ours, f"{what}: graph breaks inside hsfpn_yolo:\n" + "\n".join(ours)
    return traced_code(explained)


def build(name: str, train: bool) -> torch.nn.Module:
    """Build a model by bare name (ours from cfg/, or stock) with the model class of its task, in train or eval mode."""
    cfg = yaml_model_load(model_yaml(name))
    return MODEL_CLASSES[guess_model_task(cfg)](cfg, verbose=False).train(train)


@pytest.mark.parametrize("name, train", MODEL_CASES)
def test_model_forward_has_no_graph_break_of_ours(name, train):
    """The model's forward at 64 px, as compiled for training or inference, breaks nowhere in our code, and every
    forward of ours it runs is traced into a graph (not skipped)."""
    torch.manual_seed(0)
    model = build(name, train)
    traced = assert_no_break_of_ours(f"{name} ({'train' if train else 'eval'})", model, torch.rand(2, 3, 64, 64))
    ours = {
        type(m) for m in model.modules() if type(m).__module__.startswith("hsfpn_yolo") and "forward" in vars(type(m))
    }
    assert bool(ours) == ("hsfpn" in name), sorted(c.__name__ for c in ours)  # the check below has blocks to look for
    untraced = {c.__name__ for c in ours if Path(inspect.getsourcefile(c)).resolve() not in {f for f, _ in traced}}
    assert not untraced, f"{name}: forward of {sorted(untraced)} ran outside every graph"


@pytest.mark.parametrize("name", ["yolov8n-hsfpn", pytest.param("yolo26n-hsfpn", marks=pytest.mark.slow)])
def test_nwd_loss_has_no_graph_break_of_ours(name):
    """The loss with NWD assignment (max with CIoU) and the NWD box loss, on a tiny batch, breaks nowhere in our code
    and traces the NWD metric, the assigner's score and the box loss into graphs (YOLO26: both heads' losses)."""
    torch.manual_seed(0)
    model = nwd.enable(build(name, True), assign="max", loss=0.5, constant=6.0)
    model.args = get_cfg()
    model.criterion = model.init_criterion()  # built eagerly, as the trainer's first loss call does
    batch = synthetic_batch(2, 64, 3, "cpu", boxes=6)
    preds = model(batch["img"])  # the trainer under compile: the forward apart, then the loss of its predictions
    traced = assert_no_break_of_ours(f"{name} NWD loss", model.loss, batch, preds)
    functions = {fn for file, fn in traced if file == Path(nwd.__file__).resolve()}
    assert {"nwd", "iou_calculation"} <= functions and any("forward" in fn for fn in functions), functions


def test_the_split_finds_a_break_inside_the_package():
    """A real break in package code (the mean box size turns each image's box sizes into a Python float, in a loop, so
    Dynamo runs the whole function eagerly and `explain` lists nothing) is found, at its line, and counted as ours."""
    dataset = SimpleNamespace(labels=[{"bboxes": np.random.default_rng(0).random((3, 4)), "shape": (64, 32)}])
    _, breaks = explain(nwd.mean_box_size, dataset, 64)
    ours, theirs = split_breaks(breaks)
    lines, first = inspect.getsourcelines(nwd.mean_box_size)
    assert ours and not theirs, breaks
    assert all(Path(f) == Path(nwd.__file__) and first <= line < first + len(lines) for f, line in breaks), breaks


# name: (block, its inputs as (channels, divisor of the finer level's size)); several inputs are passed as one list
BLOCK_CASES = {
    "HFP": (lambda: HFP(32), [(32, 1)]),
    "HFP-dct": (lambda: HFP(32, dct=True, patch=8), [(32, 1)]),
    "HFP-pool-bn-pw-gate": (lambda: HFP(32, norm="bn", out="pw", gate=0.5), [(32, 1)]),
    "HFP-dct-bn-dw-silu-gate": (
        lambda: HFP(32, dct=True, patch=8, act="silu", norm="bn", gate=0.5, out="dw"),
        [(32, 1)],
    ),
    "SDP": (lambda: SDP(32, 4), [(32, 1), (32, 1)]),
    "SDP-half-size-mixed-widths-bn-gate": (lambda: SDP([32, 64], 4, norm="bn", gate=0.5), [(32, 1), (64, 2)]),
    "Sum": (lambda: Sum(32), [(32, 1)] * 3),
}


def block_inputs(maps: list[tuple[int, int]], size: tuple[int, int]) -> list[torch.Tensor]:
    """Return seeded random 2 x C x (H/d) x (W/d) inputs, one per (C, d) of `maps`, that require grad."""
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, c, size[0] // d, size[1] // d, generator=g).requires_grad_() for c, d in maps]


def run_block(block: torch.nn.Module, maps: list[tuple[int, int]], size: tuple[int, int]) -> list[torch.Tensor]:
    """Return a train-mode output, the gradients of inputs and parameters for a fixed output weighting, and the
    eval-mode output after that step."""
    block.train().zero_grad(set_to_none=True)
    xs = block_inputs(maps, size)
    y = block(xs[0] if len(xs) == 1 else xs)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    grads = [t.grad for t in xs] + [p.grad for p in block.parameters()]
    with torch.no_grad():
        xs = block_inputs(maps, size)
        y_eval = block.eval()(xs[0] if len(xs) == 1 else xs)
    return [y.detach(), *grads, y_eval]


def assert_matches_eager(case: str, backend: str, sizes: list[tuple[int, int]], dynamic: bool | None = None) -> None:
    """Compile a block with `fullgraph=True` (a graph break raises) and compare it with an eager copy at each size."""
    make, maps = BLOCK_CASES[case]
    torch.manual_seed(0)
    eager = make()
    compiled = torch.compile(copy.deepcopy(eager), fullgraph=True, backend=backend, dynamic=dynamic)
    for size in sizes:
        for got, want in zip(run_block(compiled, maps, size), run_block(eager, maps, size), strict=True):
            # Compiled, HFP builds its DCT basis in the graph in fp32 and pools with bin matrices where eager uses a
            # basis cached from fp64 and adaptive pooling: outputs agree to ~4e-7 and gradients to ~7e-5 of their
            # largest value (GroupNorm's backward cancels); compiled against eager running that formulation: equal.
            torch.testing.assert_close(got, want, rtol=1e-5, atol=2e-4 * float(want.abs().max()))


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
@pytest.mark.parametrize("case", BLOCK_CASES)
def test_block_compiled_alone_matches_eager(case, backend):
    """Each block compiles to one graph and gives eager's outputs and gradients (aot_eager: through AOT autograd), at
    a size HFP's patch grid does not divide (compiled, HFP pools with bin matrices; eager, adaptively)."""
    assert_matches_eager(case, backend, [(20, 12)])


@pytest.mark.parametrize(
    "case", [c if c == "HFP-dct" else pytest.param(c, marks=pytest.mark.slow) for c in BLOCK_CASES]
)
def test_block_compiled_for_any_size_matches_eager(case):
    """Compiled with symbolic sizes, as Dynamo recompiles when the input size changes (multi-scale training), each
    block is still one graph and matches eager at a size the patch grid divides and at one it does not (HFP with the
    DCT path, the most size-dependent code, in the default run)."""
    assert_matches_eager(case, "aot_eager", [(16, 24), (20, 12)], dynamic=True)


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_nwd_compiled_alone_matches_eager(backend):
    """The NWD metric compiles to one graph and gives eager's values and gradients, identical boxes included."""
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(2, 5, 2, generator=g) * 32
    box1 = torch.cat((xy, xy + 1 + torch.rand(2, 5, 2, generator=g) * 8), -1)
    box2 = torch.cat((box1[:, :3], box1[:, 3:] + torch.rand(2, 2, 4, generator=g)), 1)  # 3 identical pairs
    compiled = torch.compile(nwd.nwd, fullgraph=True, backend=backend)
    results = []
    for fn in (compiled, nwd.nwd):
        a, b = box1.clone().requires_grad_(), box2.clone().requires_grad_()
        value = fn(a, b, 6.0)
        value.sum().backward()
        results.append((value.detach(), a.grad, b.grad))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.slow
def test_block_compiles_with_inductor():
    """HFP with the DCT path through the default inductor backend (C++ kernels) gives eager's output."""
    m, x = HFP(32, dct=True, patch=4), torch.randn(2, 32, 16, 24)
    torch.testing.assert_close(torch.compile(m, fullgraph=True)(x), m(x), rtol=1e-4, atol=1e-5)
