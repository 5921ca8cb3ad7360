"""AP by AI-TOD object size (very tiny, tiny, small, medium), computed with faster-coco-eval from in-memory arrays."""

from __future__ import annotations

import numpy as np

from ..sizes import AP_KEYS, RANGES, bucket_counts

KEYS, SIZE_RANGES = AP_KEYS, RANGES  # AI-TOD buckets by sqrt(box area) in original-image pixels
# COCO-style evaluation works on areas (px²) with inclusive ends, as AI-TOD's tools; counts use half-open buckets
ALL_RANGE = (0, 1e5)
MAX_DETS = 1500  # per image and class, as AI-TOD's evaluation; above Ultralytics' max_det so no prediction is dropped


def silent(*args, **kwargs) -> None:
    """Swallow faster-coco-eval's progress messages."""


def as_rows(gt, pred, num_images: int | None, box: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Return ground truth and prediction rows as float64 arrays and the image count.

    Args:
        gt (array-like): Rows of [image, cls, *box].
        pred (array-like): Rows of [image, cls, conf, *box].
        num_images (int, optional): Number of images; None: one past the highest image index of the rows.
        box (int): Values per box: 4 (xyxy) or 5 (xywhr).
    """
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 2 + box)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 3 + box)
    if num_images is None:
        ids = np.concatenate([gt[:, 0], pred[:, 0]])
        num_images = int(ids.max()) + 1 if len(ids) else 0
    return gt, pred, num_images


def coco_dicts(gt: np.ndarray, pred: np.ndarray, num_images: int) -> tuple[dict, list[dict]]:
    """Build COCO ground-truth and result dicts (category ids are class + 1, annotation ids row index + 1).

    Args:
        gt (np.ndarray): (N, 7) rows of [image, cls, x, y, w, h, area]; the box is an axis-aligned ltwh `bbox`.
        pred (np.ndarray): (M, 7) rows of [image, cls, conf, x, y, w, h].
        num_images (int): Number of images; image ids are 0..num_images-1.

    Returns:
        (tuple[dict, list[dict]]): COCO ground-truth dataset and detection results.
    """
    classes = np.unique(np.concatenate([gt[:, 1], pred[:, 1]])).astype(int)
    annotations = [
        {"id": i + 1, "image_id": int(r[0]), "category_id": int(r[1]) + 1, "bbox": r[2:6], "area": r[6], "iscrowd": 0}
        for i, r in enumerate(gt.tolist())
    ]
    results = [
        {"image_id": int(r[0]), "category_id": int(r[1]) + 1, "score": r[2], "bbox": r[3:7]} for r in pred.tolist()
    ]
    dataset = {
        "images": [{"id": i} for i in range(num_images)],
        "annotations": annotations,
        "categories": [{"id": int(c) + 1} for c in classes],
    }
    return dataset, results


def load_coco(dataset: dict, results: list[dict]) -> tuple:
    """Return faster-coco-eval's COCO objects of ground truth and results, silenced.

    Args:
        dataset (dict): COCO ground-truth dataset.
        results (list[dict]): Detection results; `loadRes` numbers them 1.. in list order and sets each one's `area`
            to its `bbox` width × height.

    Returns:
        (tuple[COCO, COCO]): Ground truth and results.
    """
    from faster_coco_eval import COCO  # deferred: only needed once per validation

    coco_gt = COCO(dataset, print_function=silent)
    coco_dt = coco_gt.loadRes(results)
    coco_dt.print_function = silent
    return coco_gt, coco_dt


def size_ap(ev, max_dets: int) -> dict[str, float]:
    """Run a COCO evaluator over the AI-TOD area ranges and return its values for `KEYS`.

    Args:
        ev (COCOeval_faster): Evaluator of ground truth and results, not yet run.
        max_dets (int): Detections kept per image and class.

    Returns:
        (dict[str, float]): AP (IoU 0.50:0.95), AP50, AP75, AP_vt, AP_t, AP_s, AP_m; -1 for a range without objects.
    """
    ev.params.areaRng = [[lo**2, hi**2] for lo, hi in (ALL_RANGE, *SIZE_RANGES.values())]
    ev.params.areaRngLbl = ["all", *SIZE_RANGES]  # stats_as_dict then names them AP_all, AP_vt, ...
    ev.params.maxDets = [1, 100, max(max_dets, 100)]
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    stats = ev.stats_as_dict
    names = ["AP_all", "AP_50", "AP_75", *(f"AP_{k}" for k in SIZE_RANGES)]
    return {key: float(stats[name]) for key, name in zip(KEYS, names)}


def tiny_ap(
    gt: np.ndarray, pred: np.ndarray, num_images: int | None = None, max_dets: int = MAX_DETS
) -> dict[str, float]:
    """Return AP, AP50, AP75 and AP per AI-TOD size range; -1 where a range has no ground truth (COCO convention).

    Args:
        gt (np.ndarray): (N, 6) ground truth rows of [image, cls, x1, y1, x2, y2] in original image pixels.
        pred (np.ndarray): (M, 7) prediction rows of [image, cls, conf, x1, y1, x2, y2] in original image pixels.
        num_images (int, optional): Number of evaluated images (ids 0..num_images-1); images without boxes count too.
        max_dets (int): Detections kept per image and class.

    Returns:
        (dict[str, float]): Values for `KEYS`: AP (IoU 0.50:0.95), AP50, AP75, AP_vt, AP_t, AP_s, AP_m.
    """
    gt, pred, num_images = as_rows(gt, pred, num_images, 4)
    if not len(gt) or not num_images:  # nothing to recall: every AP is undefined
        return dict.fromkeys(KEYS, -1.0)

    from faster_coco_eval import COCOeval_faster  # deferred: only needed once per validation

    gw, gh = gt[:, 4] - gt[:, 2], gt[:, 5] - gt[:, 3]
    gt_ltwh = np.c_[gt[:, :4], gw, gh, gw * gh]
    pred_ltwh = np.c_[pred[:, :5], pred[:, 5] - pred[:, 3], pred[:, 6] - pred[:, 4]]
    coco_gt, coco_dt = load_coco(*coco_dicts(gt_ltwh, pred_ltwh, num_images))
    return size_ap(COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=silent), max_dets)


def counts_by_area(area: np.ndarray) -> dict[str, int]:
    """Return the number of boxes of each area (px²) in each AI-TOD size bucket, and "all"."""
    return {"all": len(area), **bucket_counts(np.sqrt(area))}


def size_counts(gt: np.ndarray) -> dict[str, int]:
    """Return the number of ground-truth boxes in each AI-TOD size bucket, each box counted once.

    Args:
        gt (np.ndarray): (N, 6) ground truth rows of [image, cls, x1, y1, x2, y2].

    Returns:
        (dict[str, int]): Box count for "all", each size range key and "other" (outside 2-64 px); the buckets and
            "other" add up to "all".
    """
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 6)
    return counts_by_area((gt[:, 4] - gt[:, 2]) * (gt[:, 5] - gt[:, 3]))


def frames_over(gt: np.ndarray, num_images: int, max_det: int) -> int:
    """Return how many images hold more ground-truth boxes than MAX_DET (their recall is capped by it).

    Args:
        gt (np.ndarray): (N, 6) ground truth rows of [image, cls, x1, y1, x2, y2], or OBB's (N, 7) xywhr rows.
        num_images (int): Number of evaluated images.
        max_det (int): Detections kept per image before evaluation (Ultralytics' `max_det`).
    """
    images = np.asarray(gt, dtype=np.float64)[..., 0] if len(gt) else np.zeros(0)  # any row width: detect or OBB
    per_image = np.bincount(images.astype(int), minlength=num_images)
    return int((per_image > max_det).sum())


def dense_warning(over: int, num_images: int, max_det: int) -> str:
    """Return the warning for images with more ground-truth boxes than MAX_DET."""
    return (
        f"{over} of {num_images} images hold more ground-truth objects than max_det={max_det}, so their recall and "
        f"tiny-object AP are capped; AI-TOD's protocol keeps up to {MAX_DETS} detections per image: validate with "
        f"max_det={MAX_DETS}"
    )


def cap_detections(pred: np.ndarray, max_det: int) -> np.ndarray:
    """Keep each image's MAX_DET highest-scoring predictions, as Ultralytics' NMS does with `max_det`.

    Args:
        pred (np.ndarray): (M, 7) prediction rows of [image, cls, conf, x1, y1, x2, y2].
        max_det (int): Predictions kept per image.

    Returns:
        (np.ndarray): The kept rows, grouped by image, highest confidence first within an image.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 7)
    order = np.lexsort((-pred[:, 2], pred[:, 0]))  # by image, then by descending confidence
    pred = pred[order]
    _, first = np.unique(pred[:, 0], return_index=True)
    rank = np.arange(len(pred)) - np.repeat(first, np.diff(np.r_[first, len(pred)]))
    return pred[rank < max_det]
