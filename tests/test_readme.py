"""README.md as an executable spec: every command of its fenced blocks runs from an empty folder through the installed
entry points and gives what the README promises, or, where it needs data that cannot exist offline, fails cleanly
naming what is missing; its accuracy table is what the command beside it prints; its error examples (and those of
docs/usage.md) are the messages the package prints."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import cv2
import pytest
import yaml

from tests.fresh_user import assert_clean_failure, fresh_user, last_line, output, run

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
USAGE = REPO / "docs" / "usage.md"  # the error examples moved there with the details they illustrate
FENCE = re.compile(r"^```(\w+)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
TINY_LINE = "Tiny-object AP (AI-TOD sizes): AP "

# Rewrites for the time budget only, applied to every command before it runs (regex -> replacement); the README's
# numbers are those of real training
SUBSTITUTIONS = {
    r"\bepochs=\d+": "epochs=1",  # one epoch shows that training runs end to end
    r"\bimgsz=\d+": "imgsz=64",  # the smallest input every model takes (stride 32, P5 at 2x2)
    r"--imgsz \d+": "--imgsz 128",  # synthetic frames of 128 px render in a moment
    r"--train \d+ --val \d+": "--train 4 --val 2",  # a handful of images shows the layout
    r"\bpath/to/images\b": "{frames}",  # the README's placeholder for the user's own images
}
# The built-in synthetic sets' own size knobs (documented in tiny-synth.yaml): rendered on first use at this size
ENV = {"HSFPN_SYNTH_TRAIN": "4", "HSFPN_SYNTH_VAL": "2", "HSFPN_SYNTH_IMGSZ": "64"}


def section(text: str, pos: int) -> str:
    """Return the title of the last Markdown heading before POS."""
    titles = re.findall(r"^#+ (.+)$", text[:pos], re.M)
    return titles[-1] if titles else "top"


def fenced(lang: str, doc: Path = README) -> list[tuple[str, str]]:
    """Return the fenced blocks of language LANG of a Markdown file (the README) as (section title, content), in
    order."""
    text = doc.read_text(encoding="utf-8")
    return [(section(text, m.start()), m[2]) for m in FENCE.finditer(text) if m[1] == lang]


def uncommented(line: str) -> str:
    """Return LINE without a `#` comment: a `#` outside quotes that starts a word."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def bash_commands(block: str) -> list[str]:
    """Return the command lines of a bash block: continuation lines joined, comments and blank lines dropped."""
    commands, pending = [], ""
    for line in block.splitlines():
        line = pending + uncommented(line).strip()
        pending = line[:-1] + " " if line.endswith("\\") else ""
        if line and not pending:
            commands.append(line)
    return commands


def python_key(block: str) -> str:
    """Return the line that names a python block: its first statement after the imports, without its comment."""
    for line in block.splitlines():
        line = uncommented(line).strip()
        if line and not line.startswith(("import ", "from ")):
            return line
    raise AssertionError(f"python block without a statement:\n{block}")


def readme_blocks() -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Return the README's blocks as (id, steps), a step being (key, language, source): a bash command line is its
    own key and source; a python block's key is `python_key`, and its source runs after the imports of the python
    blocks before it, as a reader who follows the README has them."""
    blocks, imports = [], []
    for title, block in fenced("bash"):
        blocks.append((title, "bash", [(c, "bash", c) for c in bash_commands(block)]))
    for title, block in fenced("python"):
        blocks.append((title, "python", [(python_key(block), "python", "\n".join([*imports, block]))]))
        imports += [line for line in block.splitlines() if line.startswith(("import ", "from "))]
    counts: dict[tuple[str, str], int] = {}
    out = []
    for title, lang, steps in blocks:
        counts[(title, lang)] = counts.get((title, lang), 0) + 1
        out.append((f"{title}/{lang}{counts[(title, lang)]}", steps))
    return out


def applied(text: str, frames: Path) -> str:
    """Return a command or python source with SUBSTITUTIONS applied."""
    for pattern, replacement in SUBSTITUTIONS.items():
        text = re.sub(pattern, replacement.format(frames=frames), text)
    return text


# ------------------------------------------------------------------------------------ what each command must give
def trained(task: str, out: str, cwd: Path) -> None:
    """Assert a training run saved its best weights and printed the tiny-object AP line (detect and OBB alike)."""
    # train2, ... where a failed command before it already made a run folder, as Ultralytics numbers them
    assert [p for p in (cwd / "runs" / task).glob("train*/weights/best.pt") if p.stat().st_size > 0], out[-3000:]
    assert TINY_LINE in out


def trained_detector(out: str, cwd: Path) -> None:
    """Assert `yolo train` of a detector saved its weights and printed the tiny-object AP line."""
    trained("detect", out, cwd)


def validated(out: str, cwd: Path) -> None:
    """Assert `yolo val` printed the tiny-object AP line and saved it in its run folder."""
    assert TINY_LINE in out
    assert "AP_vt" in (cwd / "runs" / "detect" / "val" / "tiny_metrics.json").read_text()


def predicted(out: str, cwd: Path) -> None:
    """Assert `yolo predict` saved every frame with its boxes drawn."""
    saved = sorted((cwd / "runs" / "detect" / "predict").glob("*.jpg"))
    assert len(saved) == 2 and all(cv2.imread(str(p)).shape == (64, 64, 3) for p in saved)


def exported(out: str, cwd: Path) -> None:
    """Assert `yolo export` wrote the ONNX file and the package checked its outputs against PyTorch."""
    assert (cwd / "runs" / "detect" / "train" / "weights" / "best.onnx").stat().st_size > 0
    assert "hsfpn-yolo: onnx: outputs match PyTorch" in out


def python_walkthrough(out: str, cwd: Path) -> None:
    """Assert the python walkthrough trained, printed mAP and the tiny-object metrics, and exported a dynamic ONNX."""
    import onnx

    trained("detect", out, cwd)
    assert re.search(r"^\S+ \{'AP': ", out, re.M), out[-3000:]
    graph = onnx.load(str(cwd / "runs" / "detect" / "train" / "weights" / "best.onnx")).graph
    assert [bool(d.dim_param) for d in graph.input[0].type.tensor_type.shape.dim] == [True, False, True, True]


def diagnosed(out: str, cwd: Path) -> None:
    """Assert `hsfpn-yolo doctor` printed the size buckets, the candidate counts and its advice, and drew its plot."""
    assert "Object sizes at 128 px" in out and "Candidate anchor points per box" in out and "Advice:" in out, out[
        -3000:
    ]
    assert cv2.imread(str(cwd / "doctor.png")).size > 0


def synthesized(folder: str, columns: int, imgsz: int = 128):
    """Return the check of `hsfpn-yolo synth` into FOLDER: 4 + 2 images of IMGSZ px, labels with COLUMNS values."""

    def check(out: str, cwd: Path) -> None:
        root = cwd / folder
        for split, n in (("train", 4), ("val", 2)):
            images = sorted((root / "images" / split).iterdir())
            assert len(images) == n and all(cv2.imread(str(p)).shape == (imgsz, imgsz, 3) for p in images)
            rows = [r.split() for p in (root / "labels" / split).glob("*.txt") for r in p.read_text().splitlines()]
            assert all(len(r) == columns for r in rows)
        assert "train box sizes: 2-8 px: " in out

    return check


# Commands that run (after SUBSTITUTIONS), by their README text (python blocks: see `python_key`), with their check
RUNS = {
    "yolo train model=yolov8n-hsfpn.yaml data=tiny-synth.yaml epochs=50 imgsz=320": trained_detector,
    "yolo val model=runs/detect/train/weights/best.pt data=tiny-synth.yaml": validated,
    "yolo predict model=runs/detect/train/weights/best.pt source=path/to/images": predicted,
    "yolo export model=runs/detect/train/weights/best.pt format=onnx": exported,
    'model = YOLO("yolov8s-hsfpn.yaml")': python_walkthrough,
    "hsfpn-yolo doctor tiny-synth.yaml --imgsz 640 --plot doctor.png": diagnosed,
    "hsfpn-yolo synth datasets/tiny-synth-640 --train 1000 --val 200 --imgsz 640 --seed 0": synthesized(
        "datasets/tiny-synth-640", 5
    ),
}
# Commands that need data or weights that cannot exist offline: why, and a regex their error must match (it names
# what is missing)
NEEDS_DATA = {
    "yolo train model=yolov8n-hsfpn.yaml pretrained=path/to/yolov8n.pt data=tiny-synth.yaml epochs=100": (
        "COCO-pretrained yolov8n.pt (a download)",
        r"yolov8n\.pt",
    ),
    "hsfpn-yolo convert visdrone VisDrone2019-DET-train datasets/VisDrone/train": (
        "the raw VisDrone2019-DET train split",
        r"VisDrone2019-DET-train",
    ),
    "hsfpn-yolo convert aitod aitod_train_v1.json aitod/images/train datasets/AI-TOD/train": (
        "the raw AI-TOD train split",
        r"aitod_train_v1\.json|aitod/images/train",
    ),
    "hsfpn-yolo tile datasets/VisDrone/train datasets/VisDrone/tiles-640/train --size 640 --overlap 0.2 "
    "--min-visible 0.5 --empty 0.1": ("VisDrone converted from its raw split", r"datasets/VisDrone/train"),
    "yolo train model=yolov8n-hsfpn.yaml data=VisDrone-tiles.yaml imgsz=640": (
        "the raw VisDrone2019-DET splits",
        r"VisDrone2019-DET-train/images",
    ),
    "hsfpn-yolo predict runs/detect/train/weights/best.pt frames/ --slice 640 --overlap 0.2": (
        "weights trained on VisDrone tiles and the user's frames",
        r"best\.pt|frames/",
    ),
    "hsfpn-yolo val runs/detect/train/weights/best.pt cfg/datasets/VisDrone.yaml --slice 640 --overlap 0.2": (
        "weights trained on VisDrone tiles and the raw VisDrone2019-DET val split",
        r"best\.pt|VisDrone2019-DET-val|cfg/datasets/VisDrone\.yaml",
    ),
}
# Commands this test does not run, and why
NOT_RUN = {
    "make demo": "tests/test_demo.py trains with the demo's settings (slow tests)",
    "make test": "runs this suite",
}
# RUNS keys whose README block runs only with the slow tests (`yolo train` by bare name stays in the default run)
SLOW = {'model = YOLO("yolov8s-hsfpn.yaml")'}  # trains, validates and exports the s scale


def test_every_readme_command_is_in_one_table():
    """Each command of the README's bash blocks and each python block is run, expected to fail, or named as not run;
    every table entry is still in the README."""
    tables = {"RUNS": RUNS, "NEEDS_DATA": NEEDS_DATA, "NOT_RUN": NOT_RUN}
    keys = [key for _, steps in readme_blocks() for key, _, _ in steps]
    for key in keys:
        found = [name for name, table in tables.items() if key in table]
        assert len(found) == 1, f"README command {key!r} is in {found or 'none'} of the tables {list(tables)}"
    stale = [k for table in tables.values() for k in table if k not in keys]
    assert not stale, f"table entries no longer in the README: {stale}"
    assert not SLOW - set(RUNS)


def runnable_blocks() -> list:
    """Return the README blocks with a command to run, as pytest params (slow where a command is in SLOW)."""
    params = []
    for block_id, steps in readme_blocks():
        if all(key in NOT_RUN for key, _, _ in steps):
            continue
        marks = [pytest.mark.slow] if any(key in SLOW for key, _, _ in steps) else []
        params.append(pytest.param(steps, id=block_id, marks=marks))
    return params


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    """Return a folder of two 64-px synthetic frames, the stand-in for the user's images."""
    from hsfpn_yolo.data.synth import generate

    root = generate(tmp_path_factory.mktemp("frames") / "synth", train=1, val=2, imgsz=64, progress=False)["path"]
    return Path(root) / "images" / "val"


@pytest.mark.parametrize("steps", runnable_blocks())
def test_readme_block(steps, frames, tmp_path):
    """A README block's commands, in order, from an empty folder as a new offline user: each in RUNS exits 0 and
    gives what the README says, each in NEEDS_DATA fails naming what is missing."""
    cwd, env = fresh_user(tmp_path)
    env.update(ENV)
    for key, lang, source in steps:
        if key in NOT_RUN:
            continue
        argv = ["python", "-c", applied(source, frames)] if lang == "python" else shlex.split(applied(source, frames))
        proc = run(argv, cwd, env)
        if key in NEEDS_DATA:
            assert_clean_failure(argv, proc, NEEDS_DATA[key][1])
            continue
        assert proc.returncode == 0, f"{key}\n{output(proc)[-4000:]}"
        RUNS[key](output(proc), cwd)


# ------------------------------------------------------------------------------------------ error examples (```text)
def misspelled_model(text: str, cwd: Path) -> str:
    """Return the python source that loads the misspelled model name of the README's example."""
    name = re.search(r"model YAML '([^']+)'", text)[1]
    return f"from ultralytics import YOLO\nYOLO({name!r})"


def miswired_layer(text: str, cwd: Path) -> str:
    """Write a model YAML with the example's block at the example's layer reading the example's `from`; return the
    python source that builds it."""
    layer, block, source = re.search(r"model YAML layer (\d+) \((\w+)\) .*? `from` is (.+?): ", text, re.S).groups()
    rows = [[-1, 1, "Conv", [16, 3, 1]] for _ in range(int(layer))]
    head = [[yaml.safe_load(source), 1, block, []], [[int(layer)], 1, "Detect", ["nc"]]]  # Detect: the task
    model = {"nc": 1, "backbone": rows, "head": head}
    (cwd / "miswired.yaml").write_text(yaml.safe_dump(model))
    return "from ultralytics import YOLO\nYOLO('miswired.yaml')"


TEXT_ERRORS = {  # the README's error examples by their start, and how each is reproduced
    "FileNotFoundError: model YAML": misspelled_model,
    "ValueError: model YAML layer": miswired_layer,
}


@pytest.mark.parametrize(
    "text", [t for doc in (README, USAGE) for _, t in fenced("text", doc)], ids=lambda t: t.split(":")[0]
)
def test_readme_error_example_is_the_message(text, tmp_path):
    """Each error example of the README and the usage guide is what the package raises in that situation (up to a
    closing `...`)."""
    reproduce = next((f for start, f in TEXT_ERRORS.items() if text.startswith(start)), None)
    assert reproduce, f"README text block not checked by this test (add it to TEXT_ERRORS):\n{text}"
    cwd, env = fresh_user(tmp_path)
    proc = run(["python", "-c", reproduce(text, cwd)], cwd, env)
    expected, actual = " ".join(text.split()), " ".join(last_line(proc.stderr).split())
    assert proc.returncode != 0 and actual.startswith(expected.removesuffix("...").rstrip())
    assert expected.endswith("...") or actual == expected, f"{expected}\n{actual}"


# ------------------------------------------------------------------------------------ accuracy tables (inline commands)
COMPARE = re.compile(r"`(hsfpn-yolo bench compare [^`]+)`")


def test_readme_accuracy_table_is_the_commands_output():
    """Every `hsfpn-yolo bench compare ...` the README names beside a table prints, from the results files in the
    repository, rows that the README shows verbatim: its accuracy numbers are reproducible by that command."""
    import os

    text = README.read_text(encoding="utf-8")
    lines = set(text.splitlines())
    commands = COMPARE.findall(text)
    assert commands, "the README names no `hsfpn-yolo bench compare` command beside its model table"
    for command in commands:
        proc = run(shlex.split(command), REPO, dict(os.environ))
        assert proc.returncode == 0, f"{command}\n{output(proc)[-3000:]}"
        rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
        assert len(rows) > 2, proc.stdout  # a header and at least one model
        missing = [row for row in rows if row not in lines]
        assert not missing, f"{command} prints rows the README does not show:\n" + "\n".join(missing)
