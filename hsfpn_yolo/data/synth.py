"""Built-in synthetic AI-TOD-like tiny-object dataset, rendered offline with numpy + OpenCV.

Five classes that differ in shape and colour (tens per image, 2-32 px, mean ~12 px) are scattered over cluttered
aerial-like backgrounds with unlabelled distractors, then saved in the Ultralytics YOLO layout (with `obb=True` the
labels are oriented boxes, `cls x1 y1 ... x4 y4`: the smallest rotated rectangle around each drawn object). With
`look="pretrain"` the objects are another task on the same kind of imagery (six other classes, shapes and colours,
2-64 px), the pretraining set of `hsfpn-yolo bench pretrain`::

    dst/images/{train,val}/*.jpg  dst/labels/{train,val}/*.txt  dst/data.yaml  dst/synth.json

Examples:
    >>> from hsfpn_yolo.data.synth import generate, size_histogram
    >>> summary = generate("datasets/tiny-synth", train=64, val=16, imgsz=320)
    >>> size_histogram("datasets/tiny-synth", "val")  # {'2-8': n, '8-16': n, '16-32': n, '32-64': n, 'other': 0}

    $ hsfpn-yolo synth datasets/tiny-synth --train 1000 --val 200 --imgsz 640
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import cv2
import numpy as np

from ..sizes import OTHER, RANGES, bucket_counts
from .convert_utils import DatasetWriter, Sample, encode_image, read_manifest, read_yolo_labels, yolo_row

CLASS_NAMES = ("airplane", "ship", "storage-tank", "vehicle", "person")
DEFAULTS = {"train": 64, "val": 16, "imgsz": 320, "seed": 0}  # a few YOLOv8n epochs on 2 CPU cores in ~minutes
SIZE_BUCKETS = {f"{lo}-{hi}": (lo, hi) for lo, hi in RANGES.values()}  # "2-8" .. "32-64" px: AI-TOD very tiny .. medium
ENV_PREFIX = "HSFPN_SYNTH_"  # download() reads HSFPN_SYNTH_{TRAIN,VAL,IMGSZ,SEED}
SPLITS = ("train", "val")
MANIFEST = "synth.json"
GENERATOR = "hsfpn_yolo.data.synth"
VERSION = 1  # bump whenever rendering changes so that datasets already on disk are regenerated

# Per-class appearance and statistics, indexed like CLASS_NAMES; colours are BGR
_COLOURS = np.array([(232, 232, 228), (40, 125, 225), (205, 195, 95), (45, 45, 200), (40, 215, 235)], np.float32)
_INNER_GAIN = (0.0, -0.2, 0.45, 0.55, 0.0)  # darken (+) or lighten (-) the inner detail: roof, windscreen, cabin
_MEDIAN_PX = (19.0, 13.0, 12.0, 9.5, 5.5)  # median sqrt(box area) per class
_FREQ = np.array((0.15, 0.15, 0.15, 0.35, 0.20))
_VEHICLE = CLASS_NAMES.index("vehicle")  # vehicles are the class that follows roads
_SIGMA = 0.4  # log-normal spread of object size
_MAX_EXTENT = 30.0  # a shape extent <= 30 px rasterises to a box <= 32 px at the coverage threshold below
_COVERAGE = 0.25  # fainter anti-aliasing fringe is not drawn, so what is drawn is exactly what is labelled
_SS = 4  # supersampling factor for anti-aliased tiny shapes
_DENSITY = 56 / 640**2  # mean objects per pixel of image area (~56 per 640x640, ~14 per 320x320)

_TERRAIN = np.array([(70, 120, 85), (90, 150, 160), (80, 105, 135), (125, 125, 125), (150, 180, 200), (45, 75, 50)])
_BLOBS = np.array([(110, 80, 40), (60, 95, 60), (100, 130, 150), (160, 160, 160), (40, 50, 55)])
_CLUTTER = np.array([(40, 85, 45), (125, 125, 130), (95, 115, 140), (35, 40, 40), (170, 90, 150), (150, 200, 170)])


def _rect(hx: float, hy: float, cx: float = 0.0) -> np.ndarray:
    """Return an axis-aligned rectangle with half-sizes (hx, hy) centred at (cx, 0) as a (4, 2) polygon."""
    return np.array([(cx - hx, -hy), (cx + hx, -hy), (cx + hx, hy), (cx - hx, hy)], np.float32)


def _disc(r: float, n: int = 24) -> np.ndarray:
    """Return a regular n-gon of radius r centred at the origin."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1).astype(np.float32)


def _shape(cls: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Return (silhouette, inner detail) polygons of one object of class cls in unit coordinates, long axis on x."""
    if cls == 0:  # airplane: fuselage, wings and tailplane
        span = rng.uniform(0.8, 1.0)
        return [_rect(0.5, 0.07), _rect(0.09, span / 2, 0.05), _rect(0.05, span / 4.5, -0.42)], []
    if cls == 1:  # ship: long hull with a pointed bow and a lighter superstructure aft
        hw = 0.5 / rng.uniform(3.0, 4.5)
        hull = np.array([(-0.5, -hw), (0.25, -hw), (0.5, 0), (0.25, hw), (-0.5, hw)], np.float32)
        return [hull], [_rect(0.1, hw * 0.6, -0.25)]
    if cls == 2:  # storage tank: bright rim around a darker roof
        return [_disc(0.5)], [_disc(rng.uniform(0.3, 0.38))]
    if cls == 3:  # vehicle: small rectangle with a dark windscreen
        hw = 0.5 / rng.uniform(1.7, 2.4)
        return [_rect(0.5, hw)], [_rect(0.07, hw * 0.8, 0.2)]
    return [_disc(0.5, 12)], []  # person: small disc


_L_BLOCK = np.array([(-0.5, -0.5), (0.5, -0.5), (0.5, -0.05), (0.0, -0.05), (0.0, 0.5), (-0.5, 0.5)], np.float32)


def _pretrain_shape(cls: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Return (silhouette, inner detail) polygons of one object of the pretraining look (see `PRETRAIN_LOOK`)."""
    if cls == 0:  # building: L-shaped block with a ridge
        return [_L_BLOCK], [_rect(0.45, 0.03, 0.0) + (0, -0.28)]
    if cls == 1:  # boat: slim ellipse with a cabin
        return [_disc(0.5, 16) * np.array([1.0, rng.uniform(0.18, 0.26)], np.float32)], [_rect(0.1, 0.05, 0.1)]
    if cls == 2:  # truck: trailer and cab
        return [_rect(0.33, 0.16, -0.16), _rect(0.12, 0.14, 0.38)], []
    if cls == 3:  # pool: rectangle with a darker deep end
        hw = 0.5 / rng.uniform(1.4, 2.2)
        return [_rect(0.5, hw)], [_rect(0.15, hw * 0.8, 0.3)]
    if cls == 4:  # cyclist: thin bar
        return [_rect(0.5, 0.12)], []
    return [_rect(0.5, 0.3)], [_rect(0.02, 0.3)]  # court: rectangle with a bright centre line


class Look(NamedTuple):
    """What the labelled objects of a synthetic set look like: classes, shapes, colours and sizes.

    Args:
        names (tuple[str, ...]): Class names.
        shape (Callable): (cls, rng) -> (silhouette, inner detail) polygons in unit coordinates.
        colours (np.ndarray): BGR colour per class.
        inner_gain (tuple[float, ...]): Darken (+) or lighten (-) the inner detail, per class.
        median_px (tuple[float, ...]): Median sqrt(box area) per class.
        freq (np.ndarray): Class frequencies.
        sigma (float): Log-normal spread of object size.
        max_px (int): Largest box side; sizes are clipped to [2, max_px].
        road_class (int): The class that follows roads.
    """

    names: tuple[str, ...]
    shape: Callable[[int, np.random.Generator], tuple[list[np.ndarray], list[np.ndarray]]]
    colours: np.ndarray
    inner_gain: tuple[float, ...]
    median_px: tuple[float, ...]
    freq: np.ndarray
    sigma: float
    max_px: int
    road_class: int


TINY_LOOK = Look(CLASS_NAMES, _shape, _COLOURS, _INNER_GAIN, _MEDIAN_PX, _FREQ, _SIGMA, 32, _VEHICLE)
# A different task on the same kind of imagery, for pretraining checkpoints (`hsfpn-yolo bench pretrain`): other
# classes, shapes and colours, and sizes from 2 to 64 px
PRETRAIN_LOOK = Look(
    names=("building", "boat", "truck", "pool", "cyclist", "court"),
    shape=_pretrain_shape,
    colours=np.array([(70, 90, 165), (235, 225, 210), (30, 140, 240), (230, 190, 40), (190, 60, 200), (110, 170, 70)]),
    inner_gain=(0.35, -0.15, 0.0, 0.3, 0.0, -0.6),
    median_px=(26.0, 11.0, 16.0, 14.0, 4.5, 22.0),
    freq=np.array((0.2, 0.15, 0.2, 0.1, 0.2, 0.15)),
    sigma=0.55,
    max_px=64,
    road_class=2,
)
LOOKS = {"tiny": TINY_LOOK, "pretrain": PRETRAIN_LOOK}


def _scale(polys: list[np.ndarray], theta: float, size: float, cap: float = _MAX_EXTENT) -> float:
    """Return the scale that gives unit polygons rotated by theta a box of sqrt-area `size` and sides <= cap."""
    c, s = np.cos(theta), np.sin(theta)
    pts = np.concatenate(polys) @ np.array([[c, s], [-s, c]], np.float32)
    ext = pts.max(0) - pts.min(0)
    return min(size / float(np.sqrt(ext[0] * ext[1])), cap / float(ext.max()))


def _pose(polys: list[np.ndarray], theta: float, scale: float, xy: np.ndarray) -> list[np.ndarray]:
    """Rotate by theta, scale and translate unit polygons to image coordinates."""
    c, s = np.cos(theta) * scale, np.sin(theta) * scale
    m = np.array([[c, s], [-s, c]], np.float32)
    return [p @ m + xy.astype(np.float32) for p in polys]


def _coverage(polys: list[np.ndarray], origin: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Return the anti-aliased coverage in [0, 1] of filled polygons over an (h, w) patch whose top-left is origin."""
    h, w = hw
    canvas = np.zeros((h * _SS, w * _SS), np.uint8)
    for p in polys:  # one call per polygon: overlapping parts of a multi-contour fill would cancel out
        q = np.round(((p - origin) * _SS - 0.5) * 16).astype(np.int32)  # 4 fractional bits; OpenCV samples centres
        cv2.fillPoly(canvas, [q], 255, cv2.LINE_8, 4)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) * (1 / 255)


def _extent(a: np.ndarray) -> tuple[int, int, int, int] | None:
    """Return the tight box (x0, y0, x1, y1) of the non-zero pixels of a, or None if it is empty."""
    cols, rows = np.flatnonzero(a.any(0)), np.flatnonzero(a.any(1))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1) if cols.size else None


def _quad(cov: np.ndarray, x0: int, y0: int, size: int) -> np.ndarray:
    """Return the corners (4, 2) of the smallest rotated rectangle around the non-zero pixels (as squares) of a patch
    at (x0, y0), or of their axis-aligned box where that rectangle would leave the (size, size) image."""
    ys, xs = np.nonzero(cov)
    corners = np.stack([xs, ys], 1)[:, None] + np.array([(0, 0), (1, 0), (0, 1), (1, 1)])  # every pixel's corners
    corners = (corners.reshape(-1, 2) + (x0, y0)).astype(np.float32)
    quad = cv2.boxPoints(cv2.minAreaRect(corners))
    if quad.min() < 0 or quad.max() > size:  # OBB labels must stay inside the image
        (xa, ya), (xb, yb) = corners.min(0), corners.max(0)
        quad = np.array([(xa, ya), (xb, ya), (xb, yb), (xa, yb)], np.float32)
    return quad


def _stamp(
    img: np.ndarray, sil: list[np.ndarray], inner: list[np.ndarray], colour: np.ndarray, gain: float, opacity: float
) -> tuple[tuple[int, int, int, int] | None, np.ndarray | None, str]:
    """Blend one shape into img; return (tight box, rotated box corners, '') clipped to the image, or (None, None, why
    it was not drawn)."""
    pts = np.concatenate(sil)
    origin = np.floor(pts.min(0)) - 1
    x0, y0 = int(origin[0]), int(origin[1])
    w, h = int(np.ceil(pts[:, 0].max())) + 1 - x0, int(np.ceil(pts[:, 1].max())) + 1 - y0
    cov = _coverage(sil, origin, (h, w))
    cov[cov < _COVERAGE] = 0
    box = _extent(cov)
    if box is None or min(box[2] - box[0], box[3] - box[1]) < 2:
        return None, None, "tiny"
    size = img.shape[0]
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, size), min(y0 + h, size)
    clipped = cov[ya - y0 : yb - y0, xa - x0 : xb - x0] if xb > xa and yb > ya else cov[:0, :0]
    box = _extent(clipped)
    if box is None or min(box[2] - box[0], box[3] - box[1]) < 2:
        return None, None, "border"
    colour = np.broadcast_to(colour, clipped.shape + (3,))
    if inner:
        shade = _coverage(inner, origin, (h, w))[ya - y0 : yb - y0, xa - x0 : xb - x0]
        colour = colour * (1 - gain * shade)[..., None]
    region = img[ya:yb, xa:xb]
    region += (clipped * opacity)[..., None] * (colour - region)
    quad = _quad(clipped, xa, ya, size)
    return (xa + box[0], ya + box[1], xa + box[2], ya + box[3]), quad, ""


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Return smooth value noise: a cells x cells Gaussian grid upsampled bicubically to size x size."""
    grid = rng.standard_normal((cells, cells), dtype=np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Return a float32 terrain: two colours mixed by low-frequency noise, multi-octave texture and soft blobs."""
    # mostly brightness jitter: strong per-channel jitter turns sand pink
    c = _TERRAIN[rng.choice(len(_TERRAIN), 2, replace=False)] * rng.uniform(0.85, 1.15, (2, 1))
    c *= rng.uniform(0.95, 1.05, (2, 3))
    mix = np.clip(0.5 + 0.6 * _noise(rng, size, 3), 0, 1)
    tex = sum(a * _noise(rng, size, k) for a, k in zip((10, 7, 5, 5), (6, 20, 60, max(size // 3, 2))))
    # per channel: c0 + mix * (c1 - c0) + tex * chroma, as one fused 3x3 colour transform
    m = np.stack([c[1] - c[0], rng.uniform(0.85, 1.15, 3), c[0]], 1).astype(np.float32)
    img = cv2.transform(cv2.merge([mix, tex, np.ones_like(mix)]), m)
    _tracks(rng, img)
    return _blobs(rng, img)


def _tracks(rng: np.random.Generator, img: np.ndarray) -> None:
    """Draw thin paths and field edges: line clutter that is not a road."""
    size = img.shape[0]
    for _ in range(rng.integers(0, 6)):
        a, b = rng.uniform(-0.2, 1.2, (2, 2)) * size
        tone = float(rng.uniform(0.6, 1.3))
        colour = tuple(float(v) for v in img[int(np.clip(a[1], 0, size - 1)), int(np.clip(a[0], 0, size - 1))] * tone)
        cv2.line(img, tuple(int(v) for v in a), tuple(int(v) for v in b), colour, int(rng.integers(1, 4)), cv2.LINE_AA)


def _blobs(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Blend soft fields, water and shade: ellipses drawn at 1/4 resolution, blurred, premultiplied-alpha composited."""
    size = img.shape[0]
    lo = max(size // 4, 8)
    col, alpha = np.zeros((lo, lo, 3), np.float32), np.zeros((lo, lo), np.float32)
    for _ in range(rng.integers(2, 9)):
        centre = tuple(int(v) for v in rng.integers(0, lo, 2))
        axes = tuple(int(v) for v in rng.integers(lo // 16 + 1, lo // 3 + 2, 2))
        angle, a = float(rng.uniform(0, 180)), float(rng.uniform(0.3, 0.7))
        colour = tuple(float(v) * a for v in _BLOBS[rng.integers(len(_BLOBS))])
        cv2.ellipse(alpha, centre, axes, angle, 0, 360, a, -1)
        cv2.ellipse(col, centre, axes, angle, 0, 360, colour, -1)
    sigma = lo / 40 + 0.5
    alpha, col = (cv2.resize(cv2.GaussianBlur(x, (0, 0), sigma), (size, size)) for x in (alpha, col))
    img *= cv2.merge([1 - alpha] * 3)
    img += col
    return img


def _roads(rng: np.random.Generator, img: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Draw straight roads (some with dashed centre lines); return (point, unit direction, half-width) per road."""
    size, roads = img.shape[0], []
    for _ in range(rng.choice(4, p=(0.2, 0.35, 0.3, 0.15))):
        p, t = rng.uniform(0, size, 2), rng.uniform(0, np.pi)
        d = np.array([np.cos(t), np.sin(t)])
        width = int(rng.integers(8, 23))
        grey = rng.uniform(80, 120) if rng.random() < 0.7 else rng.uniform(150, 180)
        a, b = (p - d * 2 * size).round().astype(int), (p + d * 2 * size).round().astype(int)
        cv2.line(img, tuple(map(int, a)), tuple(map(int, b)), (grey, grey, grey * 1.03), width)
        if rng.random() < 0.5:  # dashed centre line
            for s in np.arange(-1.5 * size, 1.5 * size, 14.0):
                u, v = (p + d * s).round().astype(int), (p + d * (s + 6)).round().astype(int)
                cv2.line(img, tuple(map(int, u)), tuple(map(int, v)), (215, 215, 215), 1)
        roads.append((p, d, width / 2))
    return roads


def _on_road(rng: np.random.Generator, road: tuple[np.ndarray, np.ndarray, float], size: int) -> tuple[Any, float]:
    """Return a position inside the image on one lane of a road and the heading of that lane."""
    p, d, half = road
    with np.errstate(divide="ignore"):
        lim = np.sort(np.stack([-p / d, (size - p) / d]), 0)  # chord of the line inside the image, per axis
    u = rng.uniform(max(lim[0].max(), -3 * size), min(lim[1].min(), 3 * size))
    lane = rng.choice((-1.0, 1.0))
    xy = p + d * u + np.array([-d[1], d[0]]) * lane * half * rng.uniform(0.2, 0.6)
    return xy, float(np.arctan2(d[1], d[0]) + (np.pi if lane > 0 else 0) + rng.normal(0, 0.08))


def _clutter(rng: np.random.Generator, img: np.ndarray, n: int) -> None:
    """Draw n unlabelled distractors (trees, roofs, shadows, odd-coloured shapes) that a detector must ignore."""
    size = img.shape[0]
    for _ in range(n):
        kind = int(rng.integers(4))
        if kind == 0:  # tree: green disc, shaped like a person but not coloured like one
            polys, px, colour = [_disc(0.5, 12)], rng.uniform(3, 14), _CLUTTER[0]
        elif kind == 1:  # roof: larger grey/brown rectangle
            polys, px, colour = [_rect(0.5, rng.uniform(0.25, 0.5))], rng.uniform(10, 40), _CLUTTER[rng.integers(1, 3)]
        elif kind == 2:  # shadow: dark irregular heptagon
            radii = rng.uniform(0.3, 0.5, (7, 1)).astype(np.float32)
            polys, px, colour = [_disc(1, 7) * radii], rng.uniform(4, 20), _CLUTTER[3]
        else:  # odd-coloured triangle
            polys, px, colour = [_disc(0.5, 3)], rng.uniform(3, 12), _CLUTTER[rng.integers(4, 6)]
        theta = rng.uniform(0, 2 * np.pi)
        scale = _scale(polys, theta, px, cap=48)
        colour = (colour * rng.uniform(0.85, 1.15, 3)).astype(np.float32)
        _stamp(img, _pose(polys, theta, scale, rng.uniform(0, size, 2)), [], colour, 0, rng.uniform(0.6, 1))


def _objects(
    rng: np.random.Generator, img: np.ndarray, roads: list, dropped: dict[str, int], look: Look = TINY_LOOK
) -> list[tuple]:
    """Draw the labelled objects without overlaps; return (cls, x0, y0, x1, y1, x1', y1', ..., x4', y4') per object:
    the pixel box, then the rotated box's corners."""
    size = img.shape[0]
    nc = len(look.names)
    clusters = [(rng.uniform(0, size, 2), int(rng.choice(nc, p=look.freq))) for _ in range(rng.integers(0, 4))]
    placed, labels = np.zeros((0, 4), np.float32), []
    for _ in range(rng.poisson(_DENSITY * size * size)):
        cluster = clusters[rng.integers(len(clusters))] if clusters and rng.random() < 0.35 else None
        cls = cluster[1] if cluster else int(rng.choice(nc, p=look.freq))
        sil, inner = look.shape(cls, rng)
        px = float(np.clip(look.median_px[cls] * np.exp(look.sigma * rng.standard_normal()), 2, look.max_px))
        colour = (look.colours[cls] * rng.uniform(0.85, 1.1) + rng.normal(0, 8, 3)).astype(np.float32)
        for _ in range(20):  # rejection sampling of a free spot
            theta = rng.uniform(0, 2 * np.pi)
            if cluster:  # parking lot, harbour, tank farm, crowd: same class packed together
                xy = cluster[0] + rng.normal(0, size / 12, 2)
            elif cls == look.road_class and roads and rng.random() < 0.6:
                xy, theta = _on_road(rng, roads[rng.integers(len(roads))], size)
            else:
                xy = rng.uniform(0, size, 2)
            scale = _scale(sil, theta, px, cap=look.max_px + _MAX_EXTENT - 32)
            pose = _pose(sil, theta, scale, xy)
            pts = np.concatenate(pose)
            ext = np.concatenate([pts.min(0) - 1, pts.max(0) + 1])  # 1 px gap keeps boxes from touching
            hit = (placed[:, 0] < ext[2]) & (placed[:, 2] > ext[0]) & (placed[:, 1] < ext[3]) & (placed[:, 3] > ext[1])
            if not hit.any():
                break
        else:
            dropped["no_room"] += 1
            continue
        box, quad, why = _stamp(img, pose, _pose(inner, theta, scale, xy), colour, look.inner_gain[cls], 1.0)
        if box is None:
            dropped[why] += 1
            continue
        placed = np.vstack([placed, ext[None].astype(np.float32)])
        labels.append((cls, *box, *quad.ravel().tolist()))
    return labels


def render(
    rng: np.random.Generator, imgsz: int, obb: bool = False, look: Look = TINY_LOOK
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Render one image.

    Args:
        rng (np.random.Generator): Source of randomness; the image is a pure function of its state.
        imgsz (int): Square image side in pixels.
        obb (bool): Return oriented boxes instead of axis-aligned ones (the image is the same).
        look (Look): Classes and appearance of the labelled objects.

    Returns:
        (np.ndarray): BGR uint8 image (imgsz, imgsz, 3).
        (np.ndarray): Labels (n, 5) as cls, xc, yc, w, h normalised to [0, 1]; with `obb`, (n, 9) as cls, x1, y1, ...,
            x4, y4 (the corners of the smallest rotated rectangle around the drawn object) normalised to [0, 1].
        (dict[str, int]): Objects not drawn, by reason ('border', 'tiny', 'no_room').
    """
    img = _background(rng, imgsz)
    roads = _roads(rng, img)
    _clutter(rng, img, int(rng.poisson(_DENSITY * imgsz * imgsz * 0.5)))
    dropped = {"border": 0, "tiny": 0, "no_room": 0}
    objects = np.array(_objects(rng, img, roads, dropped, look), np.float64).reshape(-1, 13)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.7))  # optics: blur first, then sensor noise
    noise = rng.standard_normal(img.shape[:2], dtype=np.float32) * np.float32(rng.uniform(1.5, 4.0))
    img += (noise + 0.5)[..., None]  # luminance noise (a third of the cost of per-channel); +0.5: the cast truncates
    img = np.clip(img, 0, 255, out=img).astype(np.uint8)
    if obb:
        return img, np.column_stack([objects[:, 0], objects[:, 5:] / imgsz]), dropped
    xyxy = objects[:, 1:5] / imgsz
    labels = np.column_stack([objects[:, 0], (xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]])
    return img, labels, dropped


def _look(params: dict[str, Any]) -> Look:
    """Return the look a set's parameters name (the tiny-object look when they name none)."""
    return LOOKS[params.get("look", "tiny")]


def _data_yaml(params: dict[str, Any]) -> str:
    """Return a data YAML without 'path', so Ultralytics resolves the splits next to the YAML wherever it is moved."""
    head = f"# tiny-synth generated by {GENERATOR} v{VERSION} ({', '.join(f'{k}={v}' for k, v in params.items())})\n"
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(_look(params).names))
    return f"{head}train: images/train\nval: images/val\n\nnames:\n{names}"


def _render_splits(writer: DatasetWriter, params: dict[str, int], progress: bool) -> dict[str, Any]:
    """Render every split into writer and return the summary."""
    n, imgsz, seed, look = params["train"] + params["val"], params["imgsz"], params["seed"], _look(params)
    dropped, boxes, instances = {"border": 0, "tiny": 0, "no_room": 0}, {}, np.zeros(len(look.names), int)
    pbar = None
    if progress:
        from ultralytics.utils import TQDM  # lazy: importing ultralytics pulls in torch

        pbar = TQDM(total=n, desc=f"Generating {writer.dst.name}", unit="img")
    try:
        for split_id, split in enumerate(SPLITS):
            boxes[split] = 0
            for i in range(params[split]):
                rng = np.random.default_rng([seed, split_id, i])
                img, labels, why = render(rng, imgsz, bool(params.get("obb")), look)
                name = PurePosixPath(split, f"{split}_{i:06d}.jpg")
                writer.add(Sample(name, encode_image(img), (imgsz, imgsz), [yolo_row(*r) for r in labels.tolist()]))
                boxes[split] += len(labels)
                instances += np.bincount(labels[:, 0].astype(int), minlength=len(look.names))
                dropped = {k: dropped[k] + why[k] for k in dropped}
                if pbar:
                    pbar.update()
    finally:
        if pbar:
            pbar.close()
    return {
        "images": {s: params[s] for s in SPLITS},
        "boxes": boxes,
        "instances": dict(zip(look.names, instances.tolist())),
        "dropped": dropped,
        "imgsz": imgsz,
        "seed": seed,
    }


def _build(dst: Path, params: dict[str, int], progress: bool) -> dict[str, Any]:
    """Write the splits, data.yaml and manifest into dst atomically, replacing an outdated set; return the summary."""
    manifest = {"generator": GENERATOR, "version": VERSION, "params": params, "names": list(_look(params).names)}
    with DatasetWriter(dst, manifest, MANIFEST) as writer:
        summary = _render_splits(writer, params, progress)
        writer.add_file("data.yaml", _data_yaml(params))
        writer.manifest["summary"] = summary
    return summary


def _manifest(dst: str | Path, **expected: Any) -> dict[str, Any] | None:
    """Return dst's manifest if this generator wrote it, with the EXPECTED entries, else None."""
    return read_manifest(dst, MANIFEST, generator=GENERATOR, **expected)


def _complete(dst: Path, params: dict[str, int]) -> dict[str, Any] | None:
    """Return the stored summary if dst holds a complete dataset of this version with these params, else None."""
    m = _manifest(dst, version=VERSION, params=params)
    if m is None:
        return None
    for s in SPLITS:
        if sum(1 for _ in (dst / "images" / s).glob("*.jpg")) != params[s]:
            return None
        if sum(1 for _ in (dst / "labels" / s).glob("*.txt")) != params[s]:
            return None
    return m["summary"]


def generate(
    dst: str | Path,
    train: int = DEFAULTS["train"],
    val: int = DEFAULTS["val"],
    imgsz: int = DEFAULTS["imgsz"],
    seed: int = DEFAULTS["seed"],
    progress: bool = True,
    obb: bool = False,
    look: str = "tiny",
) -> dict[str, Any]:
    """Generate the synthetic tiny-object dataset at dst, atomically and only if it is not already there.

    Args:
        dst (str | Path): Dataset root to create; an existing one of ours with other parameters is replaced.
        train (int): Number of training images.
        val (int): Number of validation images.
        imgsz (int): Square image side in pixels; object sizes are in pixels and do not scale with it.
        seed (int): Seed; the same arguments and seed give byte-identical files.
        progress (bool): Show a progress bar and log a summary line (imports ultralytics lazily).
        obb (bool): Write oriented-box labels for Ultralytics' OBB task (same images as without it).
        look (str): 'tiny' (the benchmark's classes) or 'pretrain' (other classes, shapes, colours and 2-64 px sizes,
            for pretraining checkpoints).

    Returns:
        (dict[str, Any]): Summary with 'path', 'images' and 'boxes' per split, 'instances' per class, 'dropped'
            objects by reason ('border': clipped below 2 px, 'tiny': rasterised below 2 px, 'no_room': no free spot),
            'imgsz', 'seed' and 'cached' (True when an existing complete dataset was reused).
    """
    if min(train, val) < 1:
        raise ValueError(
            f"a dataset needs at least 1 train and 1 val image (Ultralytics trains on the one and validates on the "
            f"other), got train={train}, val={val}; set both to 1 or more"
        )
    if imgsz < 32:
        raise ValueError(f"imgsz must be at least 32 px, got {imgsz}")
    dst = Path(dst).expanduser().resolve()
    params: dict[str, Any] = {"train": int(train), "val": int(val), "imgsz": int(imgsz), "seed": int(seed)}
    if obb:  # only then, so that the manifests of axis-aligned sets written before stay valid
        params["obb"] = 1
    if look not in LOOKS:
        raise ValueError(f"look must be one of {list(LOOKS)}, got {look!r}")
    if look != "tiny":  # likewise
        params["look"] = look
    t = time.time()
    summary = _complete(dst, params)
    cached = summary is not None
    if not cached:
        if dst.exists() and (not dst.is_dir() or any(dst.iterdir())) and _manifest(dst) is None:
            raise FileExistsError(f"'{dst}' exists and is not a {GENERATOR} dataset; refusing to overwrite it")
        try:
            summary = _build(dst, params, progress)
        except OSError:  # a concurrent run (e.g. another DDP rank) may have finished first
            summary = _complete(dst, params)
            if summary is None:
                raise
    summary = {"path": str(dst), **summary, "cached": cached}
    if progress:
        _log(summary, time.time() - t)
    return summary


def _log(summary: dict[str, Any], dt: float) -> None:
    """Log a one-line summary through the Ultralytics logger."""
    from ultralytics.utils import LOGGER

    if summary["cached"]:
        LOGGER.info(f"Synthetic dataset found complete at {summary['path']}, nothing to do")
        return
    images, boxes = summary["images"], summary["boxes"]
    dropped = ", ".join(f"{v} {k}" for k, v in summary["dropped"].items() if v)
    LOGGER.info(
        f"Synthetic dataset: {images['train']} train / {images['val']} val images at {summary['imgsz']}px, "
        f"{boxes['train']} / {boxes['val']} boxes{f' (not drawn: {dropped})' if dropped else ''}, "
        f"saved to {summary['path']} ({dt:.1f}s)"
    )


def download(data: dict[str, Any], obb: bool = False) -> dict[str, Any]:
    """Generate the dataset for an Ultralytics data YAML whose `download:` snippet runs `download(yaml)`.

    Args:
        data (dict[str, Any]): The data dict Ultralytics passes to the snippet; data['path'] is the dataset root.
            Sizes default to DEFAULTS and may be overridden by HSFPN_SYNTH_{TRAIN,VAL,IMGSZ,SEED} env variables.
        obb (bool): Oriented-box labels.

    Returns:
        (dict[str, Any]): The generate() summary.
    """
    from ultralytics.utils import LOGGER

    names = data.get("names")
    names = list(names.values()) if isinstance(names, dict) else names
    if names is not None and list(names) != list(CLASS_NAMES):
        raise ValueError(f"data YAML names {names} do not match the generator's CLASS_NAMES {list(CLASS_NAMES)}")
    kwargs = {k: int(os.environ[ENV_PREFIX + k.upper()]) for k in DEFAULTS if os.environ.get(ENV_PREFIX + k.upper())}
    dst, sizes = Path(data["path"]), {**DEFAULTS, **kwargs}
    # Ultralytics has just warned that the images are not found, and calls this its download step
    LOGGER.info(
        f"{dst.name}: rendering {sizes['train']} train / {sizes['val']} val images at {sizes['imgsz']} px into {dst} "
        "(offline, nothing downloaded)"
    )
    summary = generate(dst, obb=obb, **kwargs)
    LOGGER.addFilter(DropDownloadSuccess(LOGGER))
    return summary


class DropDownloadSuccess(logging.Filter):
    """Drop Ultralytics' 'Dataset download success' line if it is the next record of LOGGER: nothing was downloaded.

    `check_det_dataset` logs that line right after a data YAML's download script returns; the filter looks at that
    one record only, whatever it is, and detaches itself.
    """

    def __init__(self, logger: logging.Logger):
        """Keep the logger to detach from."""
        super().__init__()
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False for the download line; detach in any case."""
        # a new list, not remove(): the logger is iterating over the current one
        self.logger.filters = [f for f in self.logger.filters if f is not self]
        return not record.getMessage().startswith("Dataset download success")


def _read_labels(dst: str | Path, split: str) -> np.ndarray:
    """Return all labels of a split as an (n, 5) (cls, xc, yc, w, h) or (n, 9) (cls, x1, y1, ..., x4, y4) array."""
    files = sorted((Path(dst) / "labels" / split).glob("*.txt"))
    rows = [r for r in (read_yolo_labels(f, (5, 9)) for f in files) if len(r)]
    return np.concatenate(rows) if rows else np.zeros((0, 5))


def _label_areas(labels: np.ndarray) -> np.ndarray:
    """Return the normalised area of each box, or of each oriented box (shoelace formula over its corners)."""
    if labels.shape[1] == 5:
        return labels[:, 3] * labels[:, 4]
    x, y = labels[:, 1::2], labels[:, 2::2]
    return np.abs((x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y).sum(1)) / 2


def size_histogram(dst: str | Path, split: str = "train", imgsz: int | None = None) -> dict[str, int]:
    """Count a split's boxes (or oriented boxes) by sqrt(box area) in pixels over the AI-TOD size buckets.

    Args:
        dst (str | Path): Dataset root with labels/<split>/*.txt.
        split (str): Split to read.
        imgsz (int, optional): Square image side in pixels; read from the manifest when omitted.

    Returns:
        (dict[str, int]): Counts for '2-8', '8-16', '16-32', '32-64' (half-open [lo, hi)) and 'other' (outside 2-64 px),
            adding up to the number of boxes.
    """
    if imgsz is None:
        manifest = _manifest(dst)
        if manifest is None:
            raise ValueError(f"{dst}: no {MANIFEST} of {GENERATOR} to read the image size from; pass imgsz")
        imgsz = manifest["params"]["imgsz"]
    labels = _read_labels(dst, split)
    s = np.round(np.sqrt(_label_areas(labels)) * imgsz, 3)  # 6-decimal labels: undo rounding at bucket edges
    counts = bucket_counts(s)
    return {**{name: counts[k] for name, k in zip(SIZE_BUCKETS, RANGES)}, OTHER: counts[OTHER]}
