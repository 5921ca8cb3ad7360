"""Dataset converters (VisDrone, AI-TOD), their dataset-YAML preparation and the `hsfpn-yolo` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from hsfpn_yolo.cli import main
from hsfpn_yolo.data.aitod import AITOD_NAMES, convert_aitod, prepare_aitod
from hsfpn_yolo.data.convert_utils import MANIFEST, ConversionError, read_manifest, read_yolo_labels, safe_relpath
from hsfpn_yolo.data.visdrone import VISDRONE_NAMES, convert_visdrone, prepare_visdrone

ROOT = Path(__file__).resolve().parents[1]

# VisDrone rows: x,y,w,h,score,category,truncation,occlusion on a 100x50 image
VISDRONE_A = """10,5,20,10,1,4,0,0
0,0,30,30,0,1,0,0
5,5,10,10,1,0,0,0
50,20,10,10,1,11,0,0

90,40,20,20,1,1,0,1,
-5,-5,10,10,1,10,0,0
30,10,0,5,1,2,0,0
200,10,5,5,1,3,0,0
"""
LABELS_A = (
    "3 0.200000 0.200000 0.200000 0.200000\n"  # car, inside
    "0 0.950000 0.900000 0.100000 0.200000\n"  # pedestrian, clipped at the bottom-right (row with trailing comma)
    "9 0.025000 0.050000 0.050000 0.100000\n"  # motor, clipped at the top-left
)
LABELS_B = "8 0.500000 0.500000 0.500000 0.500000\n"  # bus on a 64x64 image


def write_image(path: Path, w: int, h: int) -> Path:
    """Write a small w x h image (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), 127, np.uint8))
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """Return every file under ROOT (hidden ones included) as {relative path: content}."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def make_visdrone(split: Path) -> Path:
    """Write a VisDrone2019-DET split: a.jpg (boxes of every kind), b.jpg (one bus), c.jpg (no objects)."""
    write_image(split / "images" / "a.jpg", 100, 50)
    write_image(split / "images" / "b.jpg", 64, 64)
    write_image(split / "images" / "c.jpg", 32, 32)
    (split / "annotations").mkdir(parents=True)
    (split / "annotations" / "a.txt").write_text(VISDRONE_A)
    (split / "annotations" / "b.txt").write_text("16,16,32,32,1,9,0,0\n")
    (split / "annotations" / "c.txt").write_text("")
    return split


def make_aitod(root: Path, name: str = "ann.json") -> tuple[Path, Path, dict]:
    """Write an AI-TOD style JSON and its images; return (json path, images dir, data)."""
    images = root / "images"
    write_image(images / "p1.png", 80, 40)
    write_image(images / "p2.png", 16, 16)
    write_image(images / "sub" / "p3.png", 32, 32)
    data = {
        "images": [
            {"id": 1, "file_name": "p1.png", "width": 80, "height": 40},
            {"id": 2, "file_name": "p2.png", "width": 16, "height": 16},  # background
            {"id": 3, "file_name": "sub/p3.png", "width": 32, "height": 32},
        ],
        "categories": [  # ids deliberately unrelated to the class order
            {"id": 5, "name": "vehicle"},
            {"id": 1, "name": "ship"},
            {"id": 9, "name": "airplane"},
            {"id": 3, "name": "wind-mill"},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 5, "bbox": [8, 4, 16, 8], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [70, 30, 20, 20], "iscrowd": 0},
            {"id": 12, "image_id": 1, "category_id": 9, "bbox": [0, 0, 10, 10], "iscrowd": 1},
            {"id": 13, "image_id": 1, "category_id": 9, "bbox": [0, 0, 10, 10], "ignore": 1},
            {"id": 14, "image_id": 1, "category_id": 3, "bbox": [5, 5, 0, 3]},
            {"id": 15, "image_id": 3, "category_id": 9, "bbox": [1.5, 2.5, 3, 4]},
        ],
    }
    return write_json(root / name, data), images, data


def write_json(path: Path, data: dict) -> Path:
    """Write DATA as JSON to PATH."""
    path.write_text(json.dumps(data))
    return path


# ---------------------------------------------------------------------------------------------------- VisDrone
def test_visdrone_labels(tmp_path):
    """Ignored/others rows dropped, out-of-image boxes clipped, zero-area dropped, empty image kept."""
    s = convert_visdrone(make_visdrone(tmp_path / "raw"), tmp_path / "out", progress=False)
    out = tmp_path / "out"
    assert (out / "labels" / "a.txt").read_text() == LABELS_A
    assert (out / "labels" / "b.txt").read_text() == LABELS_B
    assert (out / "labels" / "c.txt").read_text() == ""
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.jpg", "b.jpg", "c.jpg"]
    assert (out / "images" / "a.jpg").read_bytes() == (tmp_path / "raw" / "images" / "a.jpg").read_bytes()
    assert (s.images, s.boxes, s.clipped, s.skipped) == (3, 4, 2, [])
    assert s.dropped == {"ignored": 2, "others": 1, "zero-area": 1, "outside-image": 1}
    assert json.loads((out / MANIFEST).read_text())["summary"]["boxes"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp folder gone


@pytest.mark.parametrize(
    "row, message",
    [
        ("1,2,3,4,1,x,0,0", "non-numeric"),
        ("1,2,3", "expected 8 comma-separated values"),
        ("1,2,3,4,1,12,0,0", "category 12"),
        ("1,1,-3,4,1,1,0,0", "negative size"),
    ],
)
def test_visdrone_malformed_row(tmp_path, row, message):
    """A bad row names file:line; --skip-bad skips that image and counts it."""
    src = make_visdrone(tmp_path / "raw")
    (src / "annotations" / "b.txt").write_text(f"16,16,32,32,1,9,0,0\n{row}\n")
    with pytest.raises(ConversionError, match=message) as e:
        convert_visdrone(src, tmp_path / "out", progress=False)
    assert f"{src / 'annotations' / 'b.txt'}:2" in str(e.value)
    assert not (tmp_path / "out").exists()

    s = convert_visdrone(src, tmp_path / "out", skip_bad=True, progress=False)
    assert (s.images, s.boxes, len(s.skipped)) == (2, 3, 1) and "b.txt:2" in s.skipped[0]
    assert sorted(p.name for p in (tmp_path / "out" / "labels").iterdir()) == ["a.txt", "c.txt"]


@pytest.mark.parametrize("problem", ["missing image", "missing annotation", "unreadable image"])
def test_visdrone_bad_files(tmp_path, problem):
    """Unpaired or unreadable files are errors naming the file (or skipped with skip_bad)."""
    src = make_visdrone(tmp_path / "raw")
    if problem == "missing image":
        bad = src / "annotations" / "d.txt"
        bad.write_text("1,1,2,2,1,1,0,0\n")
    elif problem == "missing annotation":
        bad = write_image(src / "images" / "d.jpg", 8, 8)
    else:
        bad = src / "images" / "b.jpg"
        bad.write_bytes(b"not an image")
    with pytest.raises(ConversionError, match=str(bad)):
        convert_visdrone(src, tmp_path / "out", progress=False)
    assert convert_visdrone(src, tmp_path / "out", skip_bad=True, progress=False).skipped


def test_visdrone_missing_folders(tmp_path):
    """A SRC without images/ and annotations/ is an error naming the folder."""
    with pytest.raises(ConversionError, match="images"):
        convert_visdrone(tmp_path, tmp_path / "out", progress=False)


# ---------------------------------------------------------------------------------------------------- AI-TOD
def test_aitod_labels(tmp_path):
    """Classes mapped by name, crowd/ignore dropped, clipping, background images kept, sub-folders preserved."""
    ann, images, _ = make_aitod(tmp_path / "raw")
    s = convert_aitod(ann, images, tmp_path / "out", progress=False)
    labels = tmp_path / "out" / "labels"
    assert (labels / "p1.txt").read_text() == (
        f"{AITOD_NAMES.index('vehicle')} 0.200000 0.200000 0.200000 0.200000\n"
        f"{AITOD_NAMES.index('ship')} 0.937500 0.875000 0.125000 0.250000\n"
    )
    assert (labels / "p2.txt").read_text() == ""
    assert (labels / "sub" / "p3.txt").read_text() == "0 0.093750 0.140625 0.093750 0.125000\n"
    assert (tmp_path / "out" / "images" / "sub" / "p3.png").is_file()
    assert (s.images, s.boxes, s.clipped) == (3, 3, 1)
    assert s.dropped == {"ignored": 2, "zero-area": 1}


def _drop_key(d, k):
    """Remove key K from dict D."""
    del d[k]


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda d: _drop_key(d, "annotations"), r"missing key\(s\) \['annotations'\]"),
        (lambda d: _drop_key(d["annotations"][0], "bbox"), r"annotation id 10 \(image id 1\): missing key"),
        (lambda d: d["annotations"][0].update(bbox=[8, 4, -16, 8]), r"annotation id 10 \(image id 1\).*negative"),
        (lambda d: d["annotations"][0].update(bbox=[8, 4]), r"annotation id 10 .*bbox must be"),
        (lambda d: d["categories"].append({"id": 7, "name": "helicopter"})
         or d["annotations"][0].update(category_id=7), r"annotation id 10 .*'helicopter' is not an AI-TOD class"),
        (lambda d: d["annotations"][0].update(category_id=42), r"annotation id 10 .*category id 42"),
        (lambda d: d["annotations"][0].update(image_id=99), r"annotation id 10 .*image id 99"),
        (lambda d: d["images"][0].update(file_name="gone.png"), r"image id 1: image .*gone.png not found"),
        (lambda d: d["images"][0].update(width=81), r"image id 1: JSON size 81x40 != file size 80x40"),
    ],
)  # fmt: skip
def test_aitod_bad_input(tmp_path, break_it, message):
    """Each kind of bad input is an error that names the annotation/image id; nothing is written."""
    ann, images, data = make_aitod(tmp_path / "raw")
    break_it(data)
    write_json(ann, data)
    with pytest.raises(ConversionError, match=message):
        convert_aitod(ann, images, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_aitod_skip_bad(tmp_path):
    """skip_bad skips the image that holds a bad annotation and counts it; the rest is converted."""
    ann, images, data = make_aitod(tmp_path / "raw")
    data["annotations"][0]["bbox"] = [8, 4, -16, 8]
    s = convert_aitod(write_json(ann, data), images, tmp_path / "out", skip_bad=True, progress=False)
    assert (s.images, s.boxes, len(s.skipped)) == (2, 1, 1) and "annotation id 10" in s.skipped[0]
    assert not (tmp_path / "out" / "labels" / "p1.txt").exists()


def test_aitod_invalid_json(tmp_path):
    """Unparsable JSON is an error naming the file."""
    (tmp_path / "ann.json").write_text("{not json")
    (tmp_path / "images").mkdir()
    with pytest.raises(ConversionError, match="ann.json: cannot read JSON"):
        convert_aitod(tmp_path / "ann.json", tmp_path / "images", tmp_path / "out", progress=False)


# ---------------------------------------------------------------------------------------------------- safety
UNSAFE_NAMES = ["../../evil.png", "/tmp/evil.png", "..\\..\\evil.png", "C:/evil.png", "a/../../evil.png"]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_path_traversal_rejected(tmp_path, name):
    """File names that would leave DST are rejected (or skipped) and nothing lands outside DST."""
    work = tmp_path / "w"
    ann, images, data = make_aitod(work / "raw")
    write_image(work / "evil.png", 8, 8)  # so that '../../evil.png' from raw/images would resolve to a real file
    data["images"].append({"id": 4, "file_name": name})
    write_json(ann, data)
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(ConversionError, match="unsafe file name"):
        convert_aitod(ann, images, work / "deep" / "out", progress=False)
    assert {p for p in tmp_path.rglob("*")} == before

    s = convert_aitod(ann, images, work / "deep" / "out", skip_bad=True, progress=False)
    assert s.images == 3 and "unsafe file name" in s.skipped[0]
    new = {p for p in tmp_path.rglob("*")} - before
    assert all(p == work / "deep" or (work / "deep" / "out") in (p, *p.parents) for p in new)
    assert not [p for p in new if p.stem == "evil"]


@pytest.mark.parametrize("name, expected", [("a.png", "a.png"), ("./sub//b.png", "sub/b.png"), ("s\\c.png", "s/c.png")])
def test_safe_relpath_normalises(name, expected):
    """Harmless names are normalised to clean relative POSIX paths."""
    assert safe_relpath(name, "here").as_posix() == expected


def test_error_leaves_dst_unchanged(tmp_path):
    """A failing re-run leaves an earlier conversion byte-for-byte as it was; a failing first run leaves nothing."""
    src = make_visdrone(tmp_path / "raw")
    convert_visdrone(src, tmp_path / "out", progress=False)
    before = snapshot(tmp_path / "out")
    (src / "annotations" / "c.txt").write_text("bad row\n")
    with pytest.raises(ConversionError, match=r"c.txt:1"):
        convert_visdrone(src, tmp_path / "out", progress=False)
    assert snapshot(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]

    with pytest.raises(ConversionError):
        convert_visdrone(src, tmp_path / "new" / "nested" / "out", progress=False)
    assert not (tmp_path / "new").exists()


def test_interrupted_run_and_failed_swap(tmp_path, monkeypatch):
    """An unexpected exception mid-run, or a failing move while replacing DST, leaves DST as it was."""
    import hsfpn_yolo.data.visdrone as visdrone

    src = make_visdrone(tmp_path / "raw")
    real = visdrone.convert_image
    monkeypatch.setattr(visdrone, "convert_image", lambda *a: real(*a) if a[0][0].stem != "b" else 1 / 0)
    with pytest.raises(ZeroDivisionError):
        convert_visdrone(src, tmp_path / "out", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]
    monkeypatch.undo()

    convert_visdrone(src, tmp_path / "out", progress=False)
    before = snapshot(tmp_path / "out")
    (src / "annotations" / "c.txt").write_text("1,1,4,4,1,1,0,0\n")
    rename = Path.rename

    def failing_rename(self, target):
        if self.name == "labels" and self.parent.name.endswith(".partial"):  # new labels/ moving into DST
            raise OSError("disk on fire")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError, match="disk on fire"):
        convert_visdrone(src, tmp_path / "out", progress=False)
    assert snapshot(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]


def test_idempotent_rerun(tmp_path):
    """Re-running gives the same files (no duplicates) and drops the stale Ultralytics label cache."""
    src = make_visdrone(tmp_path / "raw")
    convert_visdrone(src, tmp_path / "out", progress=False)
    first = snapshot(tmp_path / "out")
    (tmp_path / "out" / "labels.cache").write_bytes(b"stale")
    (tmp_path / "out" / "notes.txt").write_text("mine")  # not the converter's: kept
    convert_visdrone(src, tmp_path / "out", progress=False)
    assert snapshot(tmp_path / "out") == {**first, "notes.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]


def test_refuses_foreign_dst(tmp_path):
    """A non-empty DST that is not an earlier conversion is refused and left alone."""
    src = make_visdrone(tmp_path / "raw")
    with pytest.raises(ConversionError, match="not empty"):
        convert_visdrone(src, src, progress=False)
    (tmp_path / "empty").mkdir()
    assert convert_visdrone(src, tmp_path / "empty", progress=False).images == 3


def test_read_manifest_marks_finished_output(tmp_path):
    """A manifest counts only when it is a readable JSON object with the expected entries; a folder with a damaged
    one is refused like any foreign folder."""
    src = make_visdrone(tmp_path / "raw")
    out = tmp_path / "out"
    convert_visdrone(src, out, progress=False)
    manifest = read_manifest(out, converter="VisDrone")
    assert manifest["source"] == {"src": str(src.absolute())} and manifest["summary"]["images"] == 3
    assert read_manifest(out, converter="AI-TOD") is None and read_manifest(src) is None
    assert read_manifest(out, "synth.json") is None
    (out / MANIFEST).write_text("[1, 2]")  # JSON, but not a manifest
    assert read_manifest(out) is None
    with pytest.raises(ConversionError, match="not empty"):
        convert_visdrone(src, out, progress=False)


@pytest.mark.parametrize(
    "text, columns, expected",
    [
        ("0 0.5 0.5 0.1 0.2\n\n3 0.1 0.2 0.3 0.4\n", (5,), [[0, 0.5, 0.5, 0.1, 0.2], [3, 0.1, 0.2, 0.3, 0.4]]),
        ("", (5, 9), np.zeros((0, 5))),
        ("1 0 0 1 0 1 1 0 1\n", (5, 9), [[1, 0, 0, 1, 0, 1, 1, 0, 1]]),
        ("1 0 0 1 0 1 1 0 1\n", (5,), "expected a detection row 'cls xc yc w h' \\(class"),
        ("0 0.5 0.5 0.1 0.2\n1 0 0 1 0 1 1 0 1\n", (5, 9), r"a.txt:2: 9 values, but the rows above have 5"),
        ("-1 0.5 0.5 0.1 0.2\n", (5,), "a.txt:1: expected"),
        ("0.5 0.5 0.5 0.1 0.2\n", (5,), "a.txt:1: expected"),
        ("0 0.5 nan 0.1 0.2\n", (5,), "a.txt:1: expected"),
        ("0 0.5 x 0.1 0.2\n", (5,), "a.txt:1: non-numeric"),
    ],
)
def test_read_yolo_labels(tmp_path, text, columns, expected):
    """Label files are read strictly: rows of one allowed width, a non-negative integer class, finite numbers."""
    (tmp_path / "a.txt").write_text(text)
    if isinstance(expected, str):
        with pytest.raises(ConversionError, match=expected):
            read_yolo_labels(tmp_path / "a.txt", columns)
    else:
        rows = read_yolo_labels(tmp_path / "a.txt", columns)
        assert rows.shape == np.shape(expected)
        np.testing.assert_array_equal(rows, expected)


# ---------------------------------------------------------------------------------------------------- CLI
def test_cli_convert(tmp_path, capsys):
    """Return codes: 0 on success, 2 with a one-line 'error: file:line ...' on bad input, 0 again with --skip-bad."""
    src = make_visdrone(tmp_path / "raw")
    assert main(["convert", "visdrone", str(src), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "labels" / "a.txt").read_text() == LABELS_A

    (src / "annotations" / "b.txt").write_text("16,16,32,32,1,9,0,0\n1,2\n")
    capsys.readouterr()
    assert main(["convert", "visdrone", str(src), str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and f"{src / 'annotations' / 'b.txt'}:2" in err
    assert main(["convert", "visdrone", str(src), str(tmp_path / "out2"), "--skip-bad"]) == 0

    ann, images, _ = make_aitod(tmp_path / "ai")
    assert main(["convert", "aitod", str(ann), str(images), str(tmp_path / "out3")]) == 0
    assert (tmp_path / "out3" / "labels" / "p2.txt").read_text() == ""
    assert main(["convert", "aitod", str(tmp_path / "missing.json"), str(images), str(tmp_path / "out4")]) == 2
    assert main(["convert", "nope"]) == 2


def test_cli_synth(tmp_path, capsys):
    """`synth` generates the dataset with the given options and prints the box-size histogram."""
    argv = ["synth", str(tmp_path / "s"), "--train", "3", "--val", "2", "--imgsz", "64", "--seed", "7"]
    assert main(argv) == 0
    manifest = json.loads((tmp_path / "s" / "synth.json").read_text())
    assert manifest["params"] == {"train": 3, "val": 2, "imgsz": 64, "seed": 7}
    assert len(list((tmp_path / "s" / "labels" / "train").glob("*.txt"))) == 3
    out = capsys.readouterr().out
    assert "train box sizes: 2-8 px:" in out and "val box sizes:" in out


@pytest.mark.parametrize("args", [["--help"], ["convert", "--help"], ["convert", "visdrone", "--help"]])
def test_cli_help(args):
    """--help works on each level through `python -m hsfpn_yolo.cli`."""
    r = subprocess.run([sys.executable, "-m", "hsfpn_yolo.cli", *args], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "usage: hsfpn-yolo" in r.stdout
    if args == ["convert", "--help"]:
        assert "visdrone" in r.stdout and "aitod" in r.stdout


# ---------------------------------------------------------------------------------------------------- dataset YAMLs
def run_download(yaml_name: str, root: Path) -> None:
    """Run a dataset YAML's `download` snippet the way Ultralytics' check_det_dataset does."""
    data = yaml.safe_load((ROOT / "cfg" / "datasets" / yaml_name).read_text())
    exec(data["download"], {"yaml": {**data, "path": root}})


def test_visdrone_yaml(tmp_path):
    """Raw splits present ⇒ converted into ROOT/{train,val}; absent ⇒ the error names the folder to fill."""
    data = yaml.safe_load((ROOT / "cfg" / "datasets" / "VisDrone.yaml").read_text())
    assert tuple(data["names"].values()) == VISDRONE_NAMES and data["path"] == "VisDrone"
    with pytest.raises(FileNotFoundError, match="github.com/VisDrone") as e:
        run_download("VisDrone.yaml", tmp_path / "VisDrone")
    assert str(tmp_path / "VisDrone" / "VisDrone2019-DET-train" / "images") in str(e.value)

    make_visdrone(tmp_path / "VisDrone" / "VisDrone2019-DET-train")
    make_visdrone(tmp_path / "VisDrone" / "VisDrone2019-DET-val")
    run_download("VisDrone.yaml", tmp_path / "VisDrone")
    for split in "train", "val":
        assert (tmp_path / "VisDrone" / data[split]).is_dir()
        assert (tmp_path / "VisDrone" / split / "labels" / "a.txt").read_text() == LABELS_A
    assert not (tmp_path / "VisDrone" / "test").exists()  # test-dev is optional
    assert prepare_visdrone(tmp_path / "VisDrone") == []  # already converted


def test_aitod_yaml(tmp_path):
    """Raw AI-TOD JSON + images present ⇒ converted; absent ⇒ the error names the folder to fill."""
    data = yaml.safe_load((ROOT / "cfg" / "datasets" / "AI-TOD.yaml").read_text())
    assert tuple(data["names"].values()) == AITOD_NAMES and data["path"] == "AI-TOD"
    root = tmp_path / "AI-TOD"
    with pytest.raises(FileNotFoundError, match="github.com/jwwangchn/AI-TOD") as e:
        run_download("AI-TOD.yaml", root)
    assert str(root / "aitod" / "images" / "train") in str(e.value)

    for split, name in ("train", "aitod_train_v1.json"), ("val", "aitodv2_val.json"):
        ann, images, _ = make_aitod(tmp_path / split)
        for d in "annotations", "images":
            (root / "aitod" / d).mkdir(parents=True, exist_ok=True)
        ann.rename(root / "aitod" / "annotations" / name)
        images.rename(root / "aitod" / "images" / split)
    run_download("AI-TOD.yaml", root)
    for split in "train", "val":
        assert (root / data[split]).is_dir()
        assert (root / split / "labels" / "sub" / "p3.txt").read_text() == "0 0.093750 0.140625 0.093750 0.125000\n"
    assert prepare_aitod(root) == []
