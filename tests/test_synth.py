"""Tests for the built-in synthetic tiny-object dataset generator (hsfpn_yolo.data.synth) and its dataset YAML."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hsfpn_yolo.data import synth

ROOT = Path(__file__).resolve().parents[1]
YAML = ROOT / "cfg" / "datasets" / "tiny-synth.yaml"
SMALL = {"train": 6, "val": 2, "imgsz": 256, "seed": 0}  # ~9 objects per image at 256 px


def _files(root: Path) -> dict[str, bytes]:
    """Return {relative path: bytes} of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _labels(root: Path, split: str) -> np.ndarray:
    """Parse every label line of a split strictly into an (n, 5) array."""
    rows = []
    for f in sorted((root / "labels" / split).glob("*.txt")):
        for line in f.read_text().splitlines():
            parts = line.split()
            assert len(parts) == 5 and parts[0].isdigit(), line
            assert all(len(p.split(".")[1]) == 6 for p in parts[1:]), f"not 6 decimals: {line}"
            rows.append([float(p) for p in parts])
    return np.array(rows).reshape(-1, 5)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    """A small dataset shared by the read-only tests."""
    dst = tmp_path_factory.mktemp("synth") / "ds"
    return dst, synth.generate(dst, **SMALL, progress=False)


def test_layout_and_summary(small):
    """Ultralytics layout, paired image/label files, and a summary that matches what is on disk."""
    dst, summary = small
    assert summary["path"] == str(dst.resolve()) and summary["cached"] is False
    for split in synth.SPLITS:
        images = sorted(p.stem for p in (dst / "images" / split).glob("*.jpg"))
        labels = sorted(p.stem for p in (dst / "labels" / split).glob("*.txt"))
        assert images == labels and len(images) == SMALL[split] == summary["images"][split]
        assert len(_labels(dst, split)) == summary["boxes"][split] > 0
    assert sum(summary["instances"].values()) == sum(summary["boxes"].values())
    manifest = json.loads((dst / synth.MANIFEST).read_text())
    assert manifest["params"] == SMALL and manifest["names"] == list(synth.CLASS_NAMES)
    import cv2

    img = cv2.imread(str(next((dst / "images" / "train").glob("*.jpg"))))
    assert img.shape == (SMALL["imgsz"], SMALL["imgsz"], 3)


def test_labels_are_valid_tiny_boxes(small):
    """Boxes are normalised, inside the image, 2-32 px, AI-TOD-like on average, and cover every class."""
    dst, _ = small
    labels = np.concatenate([_labels(dst, s) for s in synth.SPLITS])
    cls, xywh = labels[:, 0], labels[:, 1:]
    assert set(cls.astype(int)) == set(range(len(synth.CLASS_NAMES)))
    assert (xywh > 0).all() and (xywh <= 1).all()
    assert (xywh[:, :2] - xywh[:, 2:] / 2 >= -1e-6).all() and (xywh[:, :2] + xywh[:, 2:] / 2 <= 1 + 1e-6).all()
    wh = xywh[:, 2:] * SMALL["imgsz"]
    assert wh.min() >= 2 - 1e-3 and wh.max() <= 32 + 1e-3
    assert np.allclose(wh, wh.round(), atol=1e-3)  # boxes are whole pixels (tight box of drawn pixels)
    size = np.sqrt(wh.prod(1))
    assert 8 < size.mean() < 16, size.mean()
    assert len(labels) / (SMALL["train"] + SMALL["val"]) >= 5  # many objects per image


def test_obb_labels_are_rotated_rectangles_around_the_same_objects(small, tmp_path):
    """With obb the images are the same; each label is a rectangle (4 right angles) inside the image that spans the
    object's axis-aligned box but is no larger in area; rotated objects get rotated rectangles."""
    dst, _ = small
    obb = tmp_path / "obb"
    summary = synth.generate(obb, **SMALL, obb=True, progress=False)
    files, obb_files = _files(dst), _files(obb)
    assert {k: v for k, v in files.items() if k.startswith("images")} == {
        k: v for k, v in obb_files.items() if k.startswith("images")
    }
    for split in synth.SPLITS:
        boxes = _labels(dst, split)
        rows = [l.split() for f in sorted((obb / "labels" / split).glob("*.txt")) for l in f.read_text().splitlines()]
        assert all(len(r) == 9 for r in rows) and len(rows) == len(boxes) == summary["boxes"][split]
        quads = np.array(rows, float)
        assert (quads[:, 0] == boxes[:, 0]).all()
        corners = quads[:, 1:].reshape(-1, 4, 2) * SMALL["imgsz"]
        assert (corners >= 0).all() and (corners <= SMALL["imgsz"]).all()
        lo, hi = (
            (boxes[:, 1:3] - boxes[:, 3:] / 2) * SMALL["imgsz"],
            (boxes[:, 1:3] + boxes[:, 3:] / 2) * SMALL["imgsz"],
        )
        assert (corners.min(1) <= lo + 0.01).all() and (corners.max(1) >= hi - 0.01).all()  # it holds the box's pixels
        sides = np.roll(corners, -1, 1) - corners
        area = np.abs(np.cross(sides[:, 0], sides[:, 1]))
        assert (area <= boxes[:, 3] * boxes[:, 4] * SMALL["imgsz"] ** 2 + 0.01).all()
        dots = (sides * np.roll(sides, -1, 1)).sum(2) / np.linalg.norm(sides, axis=2).clip(1e-9) ** 2
        assert np.abs(dots).max() < 0.01  # right angles
        angles = np.degrees(np.arctan2(sides[:, 0, 1], sides[:, 0, 0])) % 90
        assert ((angles > 5) & (angles < 85)).mean() > 0.3  # most objects are rotated, so are their boxes
    assert synth.size_histogram(obb, "val")["other"] == 0


def test_size_histogram(small):
    """The histogram counts every box once, in the bucket of its sqrt(area) in pixels."""
    dst, summary = small
    hist = synth.size_histogram(dst, "train")
    assert list(hist) == [*synth.SIZE_BUCKETS, "other"]
    assert sum(hist.values()) == summary["boxes"]["train"] and hist["other"] == 0
    size = np.sqrt(_labels(dst, "train")[:, 3:].prod(1)) * SMALL["imgsz"]
    assert hist["2-8"] == ((size > 2 - 1e-3) & (size < 8 - 1e-3)).sum() > 0
    assert synth.size_histogram(dst, "train", imgsz=SMALL["imgsz"] * 2)["2-8"] < hist["2-8"]


def test_size_histogram_edges(tmp_path):
    """A box exactly on a bucket edge counts once, in the bucket it starts; outside 2-64 px is 'other'."""
    imgsz, sides = 128, ((2, 2), (7, 7), (8, 8), (4, 16), (16, 16), (31, 31), (32, 32), (64, 64), (1, 1), (100, 100))
    (tmp_path / "labels" / "val").mkdir(parents=True)
    rows = [f"0 0.500000 0.500000 {w / imgsz:.6f} {h / imgsz:.6f}\n" for w, h in sides]
    (tmp_path / "labels" / "val" / "a.txt").write_text("".join(rows))
    hist = synth.size_histogram(tmp_path, "val", imgsz=imgsz)
    assert hist == {"2-8": 2, "8-16": 2, "16-32": 2, "32-64": 1, "other": 3}
    assert sum(hist.values()) == len(sides)


def test_stamp_box_is_tight_box_of_drawn_pixels():
    """What _stamp reports is exactly the bounding box of the pixels it changed, clipped to the image, and a rotated
    rectangle inside the image that holds every changed pixel and is no larger than the box."""
    rng = np.random.default_rng(0)
    for cls in range(len(synth.CLASS_NAMES)):
        for xy in ([32.3, 30.7], [1.0, 40.0], [62.5, 63.2]):  # inside, clipped left, clipped bottom-right corner
            img = np.zeros((64, 64, 3), np.float32)
            sil, inner = synth._shape(cls, rng)
            theta, xy = rng.uniform(0, 2 * np.pi), np.array(xy)
            scale = synth._scale(sil, theta, 14.0)
            box, quad, why = synth._stamp(
                img, synth._pose(sil, theta, scale, xy), synth._pose(inner, theta, scale, xy), np.full(3, 200.0), 0.5, 1
            )
            if box is None:  # too little left inside the image: nothing may be drawn
                assert why == "border" and quad is None and not img.any()
                continue
            ys, xs = np.nonzero(img.any(2))
            assert box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) and why == ""
            assert quad.shape == (4, 2) and (quad >= 0).all() and (quad <= 64).all()
            inside = [cv2.pointPolygonTest(quad, (x + 0.5, y + 0.5), True) for x, y in zip(xs, ys)]
            assert min(inside) >= 0.5 - 1e-3  # whole pixels: every drawn pixel's centre is half a pixel in
            assert cv2.contourArea(quad) <= (box[2] - box[0]) * (box[3] - box[1]) + 1e-3
    img = np.zeros((64, 64, 3), np.float32)
    sil = synth._pose([synth._disc(0.5)], 0.0, 10.0, np.array([-4.5, 30.0]))  # only ~0.5 px left inside the image
    assert synth._stamp(img, sil, [], np.full(3, 200.0), 0, 1) == (None, None, "border") and not img.any()


def test_deterministic(tmp_path):
    """Same arguments and seed give byte-identical files; another seed gives different images."""
    kw = {"train": 2, "val": 1, "imgsz": 96, "progress": False}
    synth.generate(tmp_path / "a", **kw)
    synth.generate(tmp_path / "b", **kw)
    synth.generate(tmp_path / "c", **kw, seed=1)
    a, b, c = (_files(tmp_path / x) for x in "abc")
    assert a == b and len(a) == 2 + 2 * 3  # data.yaml, manifest, 3 images, 3 labels
    assert all(a[k] != c[k] for k in a if k.endswith(".jpg"))


def test_idempotent_and_regenerates_on_new_params(tmp_path):
    """A complete dataset with the same params is reused untouched; other params replace it."""
    dst, kw = tmp_path / "ds", {"train": 2, "val": 1, "imgsz": 64, "progress": False}
    first = synth.generate(dst, **kw)
    mtimes = {p: p.stat().st_mtime_ns for p in dst.rglob("*")}
    again = synth.generate(dst, **kw)
    assert again["cached"] is True and {**again, "cached": False} == first
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*")} == mtimes
    other = synth.generate(dst, **{**kw, "train": 3})
    assert other["cached"] is False and len(list((dst / "images" / "train").glob("*.jpg"))) == 3
    assert json.loads((dst / synth.MANIFEST).read_text())["params"]["train"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temporary or old folders left behind


def test_refuses_foreign_folder(tmp_path):
    """A non-empty folder that is not one of ours is never overwritten; an empty one is filled."""
    dst = tmp_path / "mine"
    dst.mkdir()
    (dst / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="refusing"):
        synth.generate(dst, train=1, val=1, imgsz=64, progress=False)
    assert [p.name for p in dst.iterdir()] == ["keep.txt"] and [p.name for p in tmp_path.iterdir()] == ["mine"]
    (tmp_path / "empty").mkdir()
    filled = synth.generate(tmp_path / "empty", train=1, val=1, imgsz=64, progress=False)
    assert filled["cached"] is False and filled["images"] == {"train": 1, "val": 1}
    written = sorted(_files(tmp_path / "empty"))
    assert written == [
        "data.yaml",
        "images/train/train_000000.jpg",
        "images/val/val_000000.jpg",
        "labels/train/train_000000.txt",
        "labels/val/val_000000.txt",
        synth.MANIFEST,
    ]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_on_failure(tmp_path, monkeypatch, error):
    """A run that dies midway leaves neither a partial dataset nor a temporary folder; an old dataset survives."""
    encode, calls = synth.encode_image, []

    def flaky(img):
        calls.append(img)
        if len(calls) == 3:
            raise error("disk full")
        return encode(img)

    kw = {"train": 3, "val": 2, "imgsz": 64, "progress": False}
    monkeypatch.setattr(synth, "encode_image", flaky)
    with pytest.raises(error):
        synth.generate(tmp_path / "ds", **kw)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setattr(synth, "encode_image", encode)
    synth.generate(tmp_path / "ds", **kw)
    old = _files(tmp_path / "ds")
    monkeypatch.setattr(synth, "encode_image", flaky)
    calls.clear()
    with pytest.raises(error):
        synth.generate(tmp_path / "ds", **{**kw, "seed": 1})
    assert _files(tmp_path / "ds") == old and [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_dataset_yaml_generates_on_first_use(tmp_path, monkeypatch):
    """check_det_dataset on cfg/datasets/tiny-synth.yaml renders the dataset into Ultralytics' datasets dir."""
    import ultralytics.data.utils as du

    monkeypatch.setattr(du, "DATASETS_DIR", tmp_path)
    monkeypatch.setattr(du, "check_font", lambda *a, **k: None)  # offline: no font download
    monkeypatch.chdir(tmp_path)  # 'path: tiny-synth' is first tried relative to the working directory
    for k, v in {"TRAIN": 4, "VAL": 2, "IMGSZ": 128, "SEED": 3}.items():
        monkeypatch.setenv(synth.ENV_PREFIX + k, str(v))
    data = du.check_det_dataset(str(YAML))
    root = tmp_path / "tiny-synth"
    assert Path(data["path"]) == root and data["nc"] == 5 and data["names"] == dict(enumerate(synth.CLASS_NAMES))
    assert Path(data["train"]) == root / "images" / "train" and Path(data["val"]) == root / "images" / "val"
    assert len(list(Path(data["train"]).glob("*.jpg"))) == 4 and len(list(Path(data["val"]).glob("*.jpg"))) == 2
    assert json.loads((root / synth.MANIFEST).read_text())["params"] == {"train": 4, "val": 2, "imgsz": 128, "seed": 3}

    own = du.check_det_dataset(str(root / "data.yaml"))  # the copy written next to the data resolves in place
    assert Path(own["val"]) == root / "images" / "val" and own["names"] == data["names"]

    with pytest.raises(ValueError, match="CLASS_NAMES"):
        synth.download({"path": tmp_path / "other", "names": {0: "car"}})


def test_large_frames_keep_object_sizes_in_pixels(tmp_path):
    """A 1024 px frame holds objects of the same pixel sizes as 256 px frames, at the same density per pixel."""
    sizes, density = {}, {}
    for imgsz, n in (1024, 2), (256, 32):
        summary = synth.generate(tmp_path / str(imgsz), train=n, val=1, imgsz=imgsz, progress=False)
        lab = _labels(Path(summary["path"]), "train")
        sizes[imgsz] = np.sqrt(lab[:, 3] * lab[:, 4]) * imgsz
        density[imgsz] = len(lab) / (n * imgsz**2) * 1e6  # objects per megapixel
    for s in sizes.values():
        assert 2 <= s.min() and s.max() <= 32
    # had sizes scaled with the frame, the 1024 px median would be four times the 256 px one
    assert np.median(sizes[1024]) == pytest.approx(np.median(sizes[256]), rel=0.3)
    assert density[1024] == pytest.approx(density[256], rel=0.3)


@pytest.mark.parametrize("train, val", [(0, 0), (0, 2), (3, 0)])
def test_cli_refuses_a_dataset_without_train_or_val_images(tmp_path, capsys, train, val):
    """`synth` with no train or no val images exits 2 with one line that says what to set, and writes nothing."""
    from hsfpn_yolo.cli import main

    dst = tmp_path / "ds"
    assert main(["synth", str(dst), "--train", str(train), "--val", str(val), "--imgsz", "64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: a dataset needs at least 1 train and 1 val image") and err.count("\n") == 1
    assert f"got train={train}, val={val}; set both to 1 or more" in err
    assert not dst.exists() and list(tmp_path.iterdir()) == []


def test_size_histogram_needs_the_image_size(tmp_path):
    """Without imgsz, a folder this generator did not write is refused with the fix."""
    (tmp_path / "labels" / "val").mkdir(parents=True)
    (tmp_path / "labels" / "val" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(ValueError, match="pass imgsz"):
        synth.size_histogram(tmp_path, "val")
    assert synth.size_histogram(tmp_path, "val", imgsz=100)["8-16"] == 1


def test_pretrain_look_is_another_task(tmp_path):
    """The pretraining look has its own classes (names in data.yaml and the manifest) and objects beyond 32 px, and
    the benchmark's look stays as it was (its parameters do not name a look)."""
    dst = tmp_path / "pre"
    summary = synth.generate(dst, train=12, val=2, imgsz=256, seed=1, progress=False, look="pretrain")
    manifest = json.loads((dst / synth.MANIFEST).read_text())
    assert manifest["params"]["look"] == "pretrain" and manifest["names"] == list(synth.PRETRAIN_LOOK.names)
    assert not set(synth.PRETRAIN_LOOK.names) & set(synth.CLASS_NAMES)
    data = (dst / "data.yaml").read_text()
    assert all(f": {n}\n" in data for n in synth.PRETRAIN_LOOK.names)
    assert set(summary["instances"]) == set(synth.PRETRAIN_LOOK.names) and all(summary["instances"].values())
    labels = _labels(dst, "train")
    sides = np.sqrt(labels[:, 3] * labels[:, 4]) * 256
    assert sides.max() > 32 and sides.min() >= 2 and set(labels[:, 0].astype(int)) <= set(range(6))
    assert synth.generate(dst, train=12, val=2, imgsz=256, seed=1, progress=False, look="pretrain")["cached"]
    with pytest.raises(ValueError, match="look must be one of"):
        synth.generate(tmp_path / "bad", train=1, val=1, look="coco")


def test_first_use_says_it_renders_offline(tmp_path):
    """`yolo`'s dataset check on a fresh install renders tiny-synth into datasets_dir and says so, with nothing that
    claims a download; the Ultralytics warning that the images are missing comes right before our line."""
    from tests.fresh_user import fresh_user, output, run

    work, env = fresh_user(tmp_path)
    env.update({synth.ENV_PREFIX + k: str(v) for k, v in {"TRAIN": 3, "VAL": 2, "IMGSZ": 64}.items()})
    code = "from ultralytics.data.utils import check_det_dataset; check_det_dataset('tiny-synth.yaml')"
    proc = run(["python", "-c", code], work, env)
    assert proc.returncode == 0, output(proc)[-3000:]
    root = tmp_path / "datasets" / "tiny-synth"
    lines = [line for line in output(proc).splitlines() if line.strip() and "Generating" not in line]  # no progress
    ours = f"tiny-synth: rendering 3 train / 2 val images at 64 px into {root} (offline, nothing downloaded)"
    i = lines.index(ours)
    assert "images not found" in lines[i - 1] and "download" not in "\n".join(lines[i + 1 :]).lower()
    assert len(list((root / "images" / "val").glob("*.jpg"))) == 2 and not any(work.iterdir())
