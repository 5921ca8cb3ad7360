"""`hsfpn-yolo doctor`: what a dataset's tiny objects need, from its labels alone, before any training.

It reads the labels and image headers of one split and reports, at the training image size: the object sizes in AI-TOD
buckets; per candidate model, how many anchor points each box can be assigned to under the installed Ultralytics
assigner, with and without its small-target enlargement; what tiling frames larger than the training size would do;
the NWD constant `constant: auto` would measure; and a recommendation grounded in the benchmark's measured table
(`evidence.json`). No training, no weights, no pixels decoded.

Examples:
    >>> import hsfpn_yolo
    >>> report = hsfpn_yolo.doctor("tiny-synth.yaml", imgsz=320, models=["yolov8n", "yolov8n-p2"])
    >>> report["advice"]["model"]["pick"]

    $ hsfpn-yolo doctor tiny-synth.yaml --imgsz 320 --json doctor.json --plot doctor.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .candidates import Counter, model_report
from .geometry import box_size, canvas_boxes, frames_summary, nwd_constant, size_summary
from .labels import LabelSet, read_split

DEFAULT_MODELS = {"detect": ("yolov8n", "yolov8n-p2"), "obb": ("yolo26n-obb",)}
REFERENCE = {"p3": "yolov8n", "p2": "yolov8n-p2"}  # the stride sets the advice weighs: P3-P5 and P2


def size_facts(labels: LabelSet, imgsz: int, reference: dict, count: Counter | None = None) -> dict[str, Any]:
    """Return what the advice weighs at one training size: the shares of boxes without an anchor centre inside at the
    reference stride sets, of boxes under 8 and under 16 px, and NWD's constant (detect labels)."""
    count = count or Counter(canvas_boxes(labels.coords, labels.frame_sizes(), imgsz), imgsz)
    size, detect = np.round(box_size(count.boxes), 3), labels.task == "detect"
    constant = nwd_constant([labels.coords[i] for i in labels.by_frame()], labels.sizes, imgsz) if detect else None
    return {
        "imgsz": imgsz,
        "lacking_p3": count.lacking(reference["p3"]),
        "lacking_p2": count.lacking(reference["p2"]) if detect else None,
        "very_tiny": float((size < 8).mean()),
        "under16": float((size < 16).mean()),
        "nwd_constant": constant,
    }


def native_size(labels: LabelSet, imgsz: int) -> int | None:
    """Return the frames' own training size (the longest side, up to a multiple of 32) where it is under IMGSZ."""
    native = int(-(-labels.sizes.max() // 32) * 32)
    return native if native < imgsz else None


def doctor(
    data: str | Path,
    imgsz: int = 640,
    models: list[str] | tuple[str, ...] | None = None,
    split: str = "train",
    evidence: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Diagnose what a dataset's objects need at a training size, from its labels and image headers.

    Args:
        data (str | Path): Dataset YAML, by path or bare name ('tiny-synth.yaml').
        imgsz (int): Training image size (rounded up to a multiple of 32, as training does).
        models (list[str], optional): Candidate models (names or YAML paths); default yolov8n and yolov8n-p2
            (oriented boxes: yolo26n-obb).
        split (str): Which split's labels to read.
        evidence (str | Path, optional): Evidence JSON (default: the shipped one, `evidence.json`).
        progress (bool): Show a progress bar over the label files.

    Returns:
        (dict): JSON-able report: `data`, `split`, `task`, `imgsz`, `frames`, `boxes`, `sizes`, `assigner`, `models`,
            `reference` and `weighed` (what the advice weighs), `tiling`, `nwd`, `advice`, `evidence`.
    """
    import ultralytics
    from ultralytics.utils.checks import check_imgsz

    from . import advice
    from . import evidence as measured
    from .anchors import check_model, model_strides
    from .tiling import tiling_report

    if isinstance(imgsz, bool) or not isinstance(imgsz, (int, np.integer)) or imgsz < 32:
        raise ValueError(f"imgsz must be an integer of at least 32 (the training image size), got {imgsz!r}")
    imgsz = check_imgsz(int(imgsz), stride=32, max_dim=1)
    for m in models or ():
        check_model(m)  # a misspelt name fails before any label is read
    proof = measured.load(evidence)
    labels = read_split(data, split, progress)
    names = list(models or DEFAULT_MODELS[labels.task])
    strides = {m: model_strides(m) for m in names}
    reference = {k: model_strides(m) for k, m in REFERENCE.items() if labels.task == "detect" or k == "p3"}
    boxes = canvas_boxes(labels.coords, labels.frame_sizes(), imgsz)
    size, count = box_size(boxes), Counter(boxes, imgsz)
    frames = frames_summary(labels.sizes, np.bincount(labels.image, minlength=len(labels.images)), imgsz)
    tiling = tiling_report(labels, imgsz, reference, count)
    facts = {"task": labels.task, "frames": frames, "tiling": tiling, **size_facts(labels, imgsz, reference, count)}
    native = native_size(labels, imgsz)
    if native:  # frames smaller than the training size: weigh them at their own size too
        facts["native"] = size_facts(labels, native, reference)
    advised, found = advice.advise(facts, proof), proof["comparisons"]
    cited = dict.fromkeys(k for a in advised.values() for k in a["evidence"])
    assign = "RotatedTaskAlignedAssigner" if labels.task == "obb" else "TaskAlignedAssigner"
    return {
        "data": labels.data,
        "split": labels.split,
        "task": labels.task,
        "imgsz": imgsz,
        "frames": {**frames, "labelled": int(labels.labelled.sum())},
        "boxes": {"count": len(size), "per_frame": len(size) / len(labels.images), "classes": len(set(labels.cls))},
        "sizes": size_summary(size),
        "assigner": {"ultralytics": ultralytics.__version__, "function": f"{assign}.select_candidates_in_gts"},
        "models": [model_report(m, strides[m], size, count) for m in names],
        "reference": {k: {"model": REFERENCE[k], "strides": list(s)} for k, s in reference.items()},
        "weighed": {k: v for k, v in facts.items() if k not in ("task", "frames", "tiling")},
        "tiling": tiling,
        "nwd": {"constant": facts["nwd_constant"], "imgsz": imgsz},
        "advice": advised,
        "evidence": {"date": proof["date"], "file": proof["file"], "cited": {k: found[k] for k in cited if k in found}},
    }
