"""Tiling of large frames: tile windows, box clipping and visibility at tile edges, the tiled dataset, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from hsfpn_yolo.cli import build_parser, main
from hsfpn_yolo.data.convert_utils import MANIFEST, ConversionError
from hsfpn_yolo.data.tiles import (
    EMPTY_SHARE,
    MIN_VISIBLE,
    OVERLAP,
    TILE_SIZE,
    check_slicing,
    clip_to_window,
    prepare_tiles,
    tile_dataset,
    tile_windows,
    tiled,
)

ROOT = Path(__file__).resolve().parents[1]


def snapshot(root: Path) -> dict[str, bytes]:
    """Return every file under ROOT as {relative path: content}."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def yolo_rows(boxes: list[tuple[int, float, float, float, float]], w: int, h: int) -> str:
    """Return YOLO label text for pixel boxes (cls, x1, y1, x2, y2) on a W x H frame."""
    return "".join(
        f"{c} {(a + b) / 2 / w:.6f} {(d + e) / 2 / h:.6f} {(b - a) / w:.6f} {(e - d) / h:.6f}\n"
        for c, a, d, b, e in boxes
    )


def write_frame(root: Path, name: str, w: int, h: int, boxes: list | None, split: str = "train") -> np.ndarray:
    """Write a PNG frame with random pixels (so every crop is unique) and its labels (None: no label file)."""
    frame = np.random.default_rng(len(name) + w).integers(0, 255, (h, w, 3), dtype=np.uint8)
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(root / "images" / split / f"{name}.png"), frame)
    if boxes is not None:
        (root / "labels" / split / f"{name}.txt").write_text(yolo_rows(boxes, w, h))
    return frame


def read_rows(path: Path) -> np.ndarray:
    """Read a YOLO label file as an (n, 5) array."""
    return np.loadtxt(path, ndmin=2).reshape(-1, 5)


# ------------------------------------------------------------------------------------------------------ geometry
def test_tile_windows_cover_the_frame_with_the_overlap():
    """768x640 frame, 320 px tiles, 20% overlap: stride 256, the last row and column end at the frame edge."""
    windows = tile_windows(768, 640, 320, 0.2)
    xs, ys = sorted({w[0] for w in windows}), sorted({w[1] for w in windows})
    assert xs == [0, 256, 448] and ys == [0, 256, 320]
    assert len(windows) == 9 and all(w[2] - w[0] == 320 and w[3] - w[1] == 320 for w in windows)
    cover = np.zeros((640, 768), int)
    for x0, y0, x1, y1 in windows:
        cover[y0:y1, x0:x1] += 1
    assert cover.min() >= 1  # every pixel is in some tile
    assert cover[:, 256:320].min() >= 2  # neighbours share at least 0.2 * 320 = 64 px
    assert tile_windows(320, 320, 320, 0.5) == [(0, 0, 320, 320)]  # a frame of exactly one tile


def test_clip_to_window_visibility_at_edges():
    """Boxes cut by the right edge of a 320 px window are kept, clipped, when at least min_visible of them is inside."""
    boxes = np.array(
        [
            [1, 10, 10, 20, 20],  # inside
            [2, 300, 40, 330, 50],  # 20 of 30 px inside: 0.67 visible
            [3, 305, 60, 335, 70],  # 15 of 30 px: exactly 0.5, kept
            [4, 308, 80, 338, 90],  # 12 of 30 px: 0.4, dropped
            [5, 320, 100, 330, 110],  # touches the edge only: not in the window at all
            [6, 400, 10, 410, 20],  # outside
        ],
        float,
    )
    kept, cut, below = clip_to_window(boxes, (0, 0, 320, 320), 0.5)
    np.testing.assert_allclose(kept, [[1, 10, 10, 20, 20], [2, 300, 40, 320, 50], [3, 305, 60, 320, 70]])
    assert (cut, below) == (2, 1)
    kept, cut, below = clip_to_window(boxes, (0, 0, 320, 320), 0.7)  # stricter: the 0.67 and 0.5 boxes go too
    np.testing.assert_allclose(kept, [[1, 10, 10, 20, 20]])
    assert (cut, below) == (0, 3)
    kept, cut, _ = clip_to_window(boxes, (256, 0, 576, 320), 0.5)  # the next window: shifted to its own pixels
    np.testing.assert_allclose(
        kept,
        [[2, 44, 40, 74, 50], [3, 49, 60, 79, 70], [4, 52, 80, 82, 90], [5, 64, 100, 74, 110], [6, 144, 10, 154, 20]],
    )
    assert cut == 0


@pytest.mark.parametrize(
    "size, overlap, message",
    [
        (100, 0.2, "multiple of 32.*use 96 or 128"),
        (0, 0.2, "multiple of 32"),
        (320, 1.0, r"\[0, 1\)"),
        (320, -0.1, r"\[0, 1\)"),
    ],
)
def test_bad_slicing_options(size, overlap, message):
    """Tile sizes off YOLO's stride and overlaps outside [0, 1) are refused with the fix."""
    with pytest.raises(ValueError, match=message):
        check_slicing(size, overlap)


# ------------------------------------------------------------------------------------------------ tiled dataset
FRAME_W, FRAME_H = 288, 224  # 160 px tiles at 0.2 overlap: x 0-160 / 128-288, y 0-160 / 64-224
BOXES = [(0, 140, 20, 150, 30), (1, 250, 200, 270, 220), (2, 150, 100, 170, 110)]


def test_tile_dataset(tmp_path):
    """Tiles are frame crops named after their window; boxes land in every tile that shows enough of them."""
    src = tmp_path / "src"
    frame = write_frame(src, "f", FRAME_W, FRAME_H, BOXES)
    write_frame(src, "bg", 160, 160, None, split="val")  # no label file: background, one tile
    (src / "data.yaml").write_text(
        "path: /elsewhere\ntrain: images/train\nval: images/val\nnames:\n  0: a\n  1: b\n  2: c\n"
    )
    summary = tile_dataset(src, tmp_path / "dst", size=160, overlap=0.2, min_visible=0.5, empty=1.0, progress=False)
    dst = tmp_path / "dst"
    names = sorted(p.name for p in (dst / "images" / "train").iterdir())
    assert names == ["f_0_0_160_160.png", "f_0_64_160_224.png", "f_128_0_288_160.png", "f_128_64_288_224.png"]
    for name in names:  # pixels are the frame's, losslessly
        x0, y0, x1, y1 = (int(v) for v in Path(name).stem.split("_")[1:])
        np.testing.assert_array_equal(cv2.imread(str(dst / "images" / "train" / name)), frame[y0:y1, x0:x1])
    lab = {n: read_rows(dst / "labels" / "train" / n.replace(".png", ".txt")) * [1, 160, 160, 160, 160] for n in names}
    # box 0 (x 140-150) lies in the overlap of the two top tiles; box 2 (x 150-170) shows 10 of 20 px in the left ones
    np.testing.assert_allclose(lab["f_0_0_160_160.png"], [[0, 145, 25, 10, 10], [2, 155, 105, 10, 10]], atol=1e-3)
    np.testing.assert_allclose(lab["f_128_0_288_160.png"], [[0, 17, 25, 10, 10], [2, 32, 105, 20, 10]], atol=1e-3)
    np.testing.assert_allclose(lab["f_0_64_160_224.png"], [[2, 155, 41, 10, 10]], atol=1e-3)
    np.testing.assert_allclose(lab["f_128_64_288_224.png"], [[1, 132, 146, 20, 20], [2, 32, 41, 20, 10]], atol=1e-3)
    assert (dst / "labels" / "val" / "bg_0_0_160_160.txt").read_text() == ""
    assert summary.frames == 2 and summary.tiles == 5 and summary.boxes == 7 and summary.cut == 2
    assert summary.unlabelled_frames == 1 and summary.empty_kept == 1 and summary.below_min_visible == 0
    data = yaml.safe_load((dst / "data.yaml").read_text())
    assert "path" not in data and data["train"] == "images/train" and data["names"] == {0: "a", 1: "b", 2: "c"}


def test_empty_tiles_and_min_visible(tmp_path):
    """--empty 0 drops tiles without boxes; a high --min-visible drops the cut pieces and counts them."""
    src = tmp_path / "src"
    write_frame(src, "f", FRAME_W, FRAME_H, BOXES)
    write_frame(src, "bg", 160, 160, [], split="val")
    s = tile_dataset(src, tmp_path / "a", size=160, overlap=0.2, min_visible=0.6, empty=0.0, progress=False)
    # box 2's halves in the left tiles go, which leaves the bottom-left tile empty, like the background frame
    assert (s.empty_kept, s.empty_dropped, s.below_min_visible) == (0, 2, 2)
    assert s.tiles == 3 and s.boxes == 5 and not (tmp_path / "a" / "images" / "val").exists()
    assert not (tmp_path / "a" / "images" / "train" / "f_0_64_160_224.png").exists()


def test_rerun_is_idempotent_and_replaces(tmp_path):
    """A re-run gives the same files; another tile size replaces the previous tiling instead of adding to it."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_frame(src, "f", FRAME_W, FRAME_H, BOXES)
    tile_dataset(src, dst, size=160, overlap=0.2, empty=0.0, progress=False)
    first = snapshot(dst)
    tile_dataset(src, dst, size=160, overlap=0.2, empty=0.0, progress=False)
    assert snapshot(dst) == first
    tile_dataset(src, dst, size=224, overlap=0.2, empty=0.0, progress=False)
    assert sorted(p.name for p in (dst / "images" / "train").iterdir()) == ["f_0_0_224_224.png", "f_64_0_288_224.png"]
    assert sorted(p.parent.name for p in tmp_path.rglob("*.partial")) == []


@pytest.mark.parametrize(
    "problem, message",
    [
        ("small", r"frame 120x200 is smaller than the 160 px tile; use --size 96"),
        ("corrupt", r"unreadable image"),
        ("bad-label", r"expected a detection row 'cls xc yc w h'"),
    ],
)
def test_bad_frames_write_nothing(tmp_path, problem, message):
    """A bad frame stops the run with a message naming it, and nothing is left behind; --skip-bad tiles the rest."""
    src, dst = tmp_path / "src", tmp_path / "out" / "dst"
    write_frame(src, "good", FRAME_W, FRAME_H, BOXES)
    bad = src / "images" / "train" / "x.png"
    if problem == "small":
        write_frame(src, "x", 120, 200, [])
    elif problem == "corrupt":  # a valid header, pixel data cut off
        write_frame(src, "x", FRAME_W, FRAME_H, [])
        bad.write_bytes(bad.read_bytes()[:200])
    else:
        write_frame(src, "x", FRAME_W, FRAME_H, [])
        (src / "labels" / "train" / "x.txt").write_text("0 0.5 0.5 0.1\n")
    with pytest.raises(ConversionError, match=message) as e:
        tile_dataset(src, dst, size=160, overlap=0.2, progress=False)
    assert "x." in str(e.value)
    assert not (tmp_path / "out").exists()  # not even the parent folder this run would have created
    s = tile_dataset(src, dst, size=160, overlap=0.2, skip_bad=True, progress=False)
    assert s.frames == 1 and len(s.skipped) == 1 and "x." in s.skipped[0]
    assert (dst / MANIFEST).is_file() and not list((dst / "images" / "train").glob("x_*"))


def test_unusable_source_and_destination(tmp_path):
    """No labels folder, no images, or an output inside the source: refused before anything is written."""
    src = tmp_path / "src"
    write_frame(src, "f", FRAME_W, FRAME_H, BOXES)
    with pytest.raises(ConversionError, match="must lie outside the source"):
        tile_dataset(src, src / "tiles", size=160, progress=False)
    (src / "labels" / "train" / "f.txt").unlink()
    (src / "labels" / "train").rmdir()
    (src / "labels").rmdir()
    with pytest.raises(ConversionError, match="the frames have no labels"):
        tile_dataset(src, tmp_path / "dst", size=160, progress=False)
    with pytest.raises(ConversionError, match="folder not found"):
        tile_dataset(tmp_path / "nothing", tmp_path / "dst", size=160, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_cli_tile(tmp_path, capsys):
    """`hsfpn-yolo tile` writes the tiles; bad options exit 2 with one error line and write nothing."""
    src = tmp_path / "src"
    write_frame(src, "f", FRAME_W, FRAME_H, BOXES)
    assert main(["tile", str(src), str(tmp_path / "dst"), "--size", "160", "--empty", "0"]) == 0
    assert len(list((tmp_path / "dst" / "images" / "train").iterdir())) == 4
    for opts, message in (["--size", "150"], "multiple of 32"), (["--overlap", "1"], "overlap must be in [0, 1)"):
        assert main(["tile", str(src), str(tmp_path / "bad"), *opts]) == 2
        assert message in capsys.readouterr().err
    assert main(["tile", str(src), str(tmp_path / "bad"), "--size", "320"]) == 2
    assert "smaller than the 320 px tile" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_tiles_yaml(tmp_path):
    """VisDrone-tiles.yaml converts the raw splits, then tiles them into tiles-640, once."""
    data = yaml.safe_load((ROOT / "cfg" / "datasets" / "VisDrone-tiles.yaml").read_text())
    assert data["path"] == "VisDrone" and data["train"] == "tiles-640/train/images"
    root = tmp_path / "VisDrone"
    for split in "train", "val":
        raw = root / f"VisDrone2019-DET-{split}"
        (raw / "images").mkdir(parents=True)
        (raw / "annotations").mkdir()
        assert cv2.imwrite(str(raw / "images" / "a.jpg"), np.full((672, 704, 3), 90, np.uint8))
        (raw / "annotations" / "a.txt").write_text("600,300,40,20,1,4,0,0\n")  # a car at x 600-640, y 300-320
    exec(data["download"], {"yaml": {**data, "path": root}})
    for split in "train", "val":
        tiles = sorted(p.name for p in (root / data[split]).iterdir())
        assert tiles == ["a_0_0_640_640.jpg", "a_0_32_640_672.jpg", "a_64_0_704_640.jpg", "a_64_32_704_672.jpg"]
        label = read_rows(root / data[split].replace("images", "labels") / "a_64_32_704_672.txt")
        np.testing.assert_allclose(label * [1, 640, 640, 640, 640], [[3, 556, 278, 40, 20]], atol=1e-3)  # x-64, y-32
    data_yaml = yaml.safe_load((ROOT / "cfg" / "datasets" / "AI-TOD-tiles.yaml").read_text())
    assert data_yaml["train"] == "tiles-640/train/images" and "prepare_tiles" in data_yaml["download"]
    assert prepare_tiles(root) == []  # already tiled with these settings


def test_tiling_defaults_are_the_constants():
    """`hsfpn-yolo tile` defaults to the constants of tiles.py, and every tiling number VisDrone-tiles.yaml states
    (tile folder, training size, slices for sliced validation) is theirs; its download step restates none."""
    args = build_parser().parse_args(["tile", "src", "dst"])
    assert (args.size, args.overlap, args.min_visible, args.empty) == (TILE_SIZE, OVERLAP, MIN_VISIBLE, EMPTY_SHARE)
    text = (ROOT / "cfg" / "datasets" / "VisDrone-tiles.yaml").read_text()
    sizes = [int(n) for m in re.findall(r"tiles-(\d+)|imgsz=(\d+)|--(?:size|slice) (\d+)", text) for n in m if n]
    assert len(sizes) >= 4 and set(sizes) == {TILE_SIZE}
    assert [float(v) for v in re.findall(r"--overlap ([\d.]+)", text)] == [OVERLAP]
    assert not re.search(r"--(min-visible|empty)|min_visible|empty=", text)
    data = yaml.safe_load(text)
    assert data["train"] == f"tiles-{TILE_SIZE}/train/images" and data["val"] == f"tiles-{TILE_SIZE}/val/images"
    assert 'prepare_tiles(yaml["path"])' in data["download"]


def test_tiled_needs_a_finished_tiling_with_the_same_settings(tmp_path):
    """A tiling is reused only with its manifest and the same settings; a damaged manifest means it is not done."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_frame(src, "f", FRAME_W, FRAME_H, BOXES)
    params = tile_dataset(src, dst, size=160, progress=False).params
    assert tiled(dst, params) and not tiled(dst, {**params, "empty": 0.5}) and not tiled(src, params)
    (dst / MANIFEST).write_text("{")
    assert not tiled(dst, params)
