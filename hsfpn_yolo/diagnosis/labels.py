"""Read one split of a YOLO dataset for the doctor: image sizes from their headers and every label row, checked.

Nothing is decoded: an image's size comes from its header (Pillow reads no pixels for it) and a label file is read as
text by the converters' strict reader, which names the file and line of a malformed row. A row whose box reaches
outside the image by more than `TOLERANCE` of a side is refused the same way, since Ultralytics would drop it.

Examples:
    >>> from hsfpn_yolo.diagnosis.labels import read_split
    >>> labels = read_split("tiny-synth.yaml", "train")
    >>> labels.task, len(labels.images), len(labels.cls)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from hsfpn_yolo.data.convert_utils import LABEL_ROWS, load_sample, read_yolo_labels

TOLERANCE = 0.01  # normalised coordinates may overshoot [0, 1] by 1 % of a side (rounding, a pixel of slack)
TASKS = {5: "detect", 9: "obb"}  # label columns -> task


@dataclass
class LabelSet:
    """The boxes of one dataset split with the size of every image, in normalised label coordinates."""

    data: str  # the dataset YAML as Ultralytics resolved it
    split: str
    names: dict[int, str]
    task: str  # 'detect' (rows 'cls xc yc w h') or 'obb' (rows 'cls x1 y1 x2 y2 x3 y3 x4 y4')
    images: list[str]
    sizes: np.ndarray  # (M, 2) width, height in pixels
    labelled: np.ndarray  # (M,) whether the image has a label file (one without is background)
    image: np.ndarray  # (N,) index into `images` of each box
    cls: np.ndarray  # (N,) class of each box
    coords: np.ndarray  # (N, 4) xc yc w h or (N, 8) corners, normalised to the image

    def frame_sizes(self) -> np.ndarray:
        """Return the (N, 2) width and height of the image each box lies in."""
        return self.sizes[self.image]

    def by_frame(self) -> list[np.ndarray]:
        """Return, per image, the indices of its boxes."""
        order = np.argsort(self.image, kind="stable")
        first = np.searchsorted(self.image[order], np.arange(len(self.images) + 1))
        return [order[a:b] for a, b in zip(first[:-1], first[1:])]


def resolve_dataset(data: str | Path) -> dict[str, Any]:
    """Return the dataset dict of a dataset YAML (path or bare name) as Ultralytics' `check_det_dataset` builds it.

    Args:
        data (str | Path): Dataset YAML, e.g. 'tiny-synth.yaml' or 'path/to/data.yaml'.
    """
    from ultralytics.data.utils import check_det_dataset

    try:
        return check_det_dataset(str(data))
    except (SyntaxError, AssertionError, TypeError, AttributeError) as e:
        # no train/val/names keys, keys of the wrong type, a YAML that is no mapping, or not a YAML file at all
        raise ValueError(f"{data} is not a dataset YAML: {' '.join(str(e).split()) or type(e).__name__}") from None


def image_files(spec: str | list[str]) -> list[str]:
    """Return the image files of a split as Ultralytics lists them: folders searched recursively, text files read as
    one image path per line ('./' relative to the text file).

    Args:
        spec (str | list[str]): The split's entry of the dataset dict (absolute paths).
    """
    from ultralytics.data.utils import IMG_FORMATS

    files = []
    for item in spec if isinstance(spec, list) else [spec]:
        p = Path(item)
        if p.is_dir():
            files += [os.path.join(root, f) for root, _, names in os.walk(p) for f in names]
        elif p.is_file():
            lines = p.read_text(encoding="utf-8-sig").strip().splitlines()
            files += [str(p.parent / x[2:]) if x.startswith("./") else x for x in lines]
        else:
            raise FileNotFoundError(f"images not found: {p} does not exist")
    found = sorted(f for f in files if f.rpartition(".")[-1].lower() in IMG_FORMATS)
    if not found:
        raise FileNotFoundError(f"no images found in {spec} (image types: {', '.join(sorted(IMG_FORMATS))})")
    return found


def outside_rows(rows: np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray:
    """Return the indices of label rows (cls + normalised coordinates) whose box reaches outside the image or has a
    negative side.

    Args:
        rows (np.ndarray): (N, 5) detection rows or (N, 9) oriented-box rows.
        tolerance (float): How far a coordinate may overshoot [0, 1].
    """
    if rows.shape[1] == 5:
        xy, wh = rows[:, 1:3], rows[:, 3:5]
        corners = np.c_[xy - wh / 2, xy + wh / 2]
        bad = (wh < 0).any(1)
    else:
        corners, bad = rows[:, 1:], np.zeros(len(rows), bool)
    bad |= ((corners < -tolerance) | (corners > 1 + tolerance)).any(1)
    return np.flatnonzero(bad)


def _line_of(path: Path, row: int) -> int:
    """Return the 1-based line number of the ROW-th non-blank line of a label file."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return [n for n, line in enumerate(lines, 1) if line.strip()][row]


def read_labels(path: Path, columns: tuple[int, ...]) -> np.ndarray:
    """Read one label file strictly and refuse boxes outside the image, naming the file and line.

    Args:
        path (Path): Label file.
        columns (tuple[int, ...]): Allowed row lengths: (5,), (9,) or (5, 9).
    """
    rows = read_yolo_labels(path, columns)
    bad = outside_rows(rows)
    if len(bad):
        values = " ".join(f"{v:g}" for v in rows[bad[0]])
        raise ValueError(
            f"{path}:{_line_of(path, int(bad[0]))}: box '{values}' reaches outside the image (normalised "
            f"coordinates must lie in [0, 1], tolerance {TOLERANCE}, sides not negative)"
        )
    return rows


def _label_file(image: str) -> str:
    """Return the label file of an image: its last 'images' folder replaced by 'labels', suffix '.txt'."""
    from ultralytics.data.utils import img2label_paths

    return img2label_paths([image])[0]


def read_split(data: str | Path, split: str = "train", progress: bool = True) -> LabelSet:
    """Read the image sizes and labels of one split of a dataset.

    Args:
        data (str | Path): Dataset YAML (path or bare name).
        split (str): 'train', 'val' or 'test'.
        progress (bool): Show a progress bar over the images.

    Returns:
        (LabelSet): Every box with its image; raises FileNotFoundError without images or label files and ValueError
            on a malformed row (file:line).
    """
    from ultralytics.utils import TQDM

    info = resolve_dataset(data)
    if not info.get(split):
        raise ValueError(
            f"{data} has no '{split}' split (it lists {[k for k in ('train', 'val', 'test') if info.get(k)]})"
        )
    images = image_files(info[split])
    sizes, labelled, parts = np.zeros((len(images), 2), np.int64), np.zeros(len(images), bool), []
    columns: tuple[int, ...] = (5, 9)
    for i, image in enumerate(TQDM(images, desc=f"Reading {split} labels", disable=not progress)):
        sizes[i] = load_sample(PurePosixPath(Path(image).name), Path(image), image).size  # header only
        label = _label_file(image)
        if not os.path.isfile(label):
            continue
        labelled[i] = True
        rows = read_labels(Path(label), columns)
        if len(rows):
            columns = (rows.shape[1],)  # the first file with rows fixes the task; a later row of the other kind fails
            parts.append((i, rows))
    if not labelled.any():
        folder = Path(_label_file(images[0])).parent
        raise FileNotFoundError(
            f"no label files for the {len(images)} '{split}' images: expected one .txt per image in {folder} (YOLO "
            f"format, {LABEL_ROWS[5]} per box)"
        )
    if not parts:
        raise ValueError(f"the {int(labelled.sum())} label files of the '{split}' images hold no boxes")
    rows = np.concatenate([r for _, r in parts])
    return LabelSet(
        data=str(info.get("yaml_file", data)),
        split=split,
        names=dict(info.get("names", {})),
        task=TASKS[rows.shape[1]],
        images=images,
        sizes=sizes,
        labelled=labelled,
        image=np.concatenate([np.full(len(r), i) for i, r in parts]),
        cls=rows[:, 0].astype(np.int64),
        coords=rows[:, 1:],
    )
