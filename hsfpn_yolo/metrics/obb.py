"""AP by AI-TOD object size for oriented boxes: faster-coco-eval's matching on exact rotated-box IoU.

A box is Ultralytics' xywhr (centre, width, height, angle in radians) in original-image pixels. Its size is its own
area w*h, not that of its axis-aligned hull, for the buckets of the ground truth and the area ranges of unmatched
detections alike. The COCO records carry the hull as `bbox` (COCO wants one) but every IoU is computed between the
rotated rectangles (shapely polygons), so the numbers are those of `tiny_ap` with rotated overlap.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from .tiny import KEYS, MAX_DETS, as_rows, coco_dicts, counts_by_area, load_coco, silent, size_ap


def corners(boxes: np.ndarray) -> np.ndarray:
    """Return the 4 corners of each xywhr box, in order around it.

    Args:
        boxes (np.ndarray): (N, 5) rows of [cx, cy, w, h, angle_rad].

    Returns:
        (np.ndarray): (N, 4, 2) corner coordinates.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    cos, sin = np.cos(boxes[:, 4:5]), np.sin(boxes[:, 4:5])
    along = boxes[:, 2:3] / 2 * np.c_[cos, sin]  # half the width, along the box's rotated x axis
    across = boxes[:, 3:4] / 2 * np.c_[-sin, cos]  # half the height, along its rotated y axis
    ctr = boxes[:, :2]
    return np.stack([ctr + along + across, ctr + along - across, ctr - along - across, ctr - along + across], 1)


def hull_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Return the axis-aligned hull [x1, y1, x2, y2] of each xywhr box (N, 5)."""
    pts = corners(boxes)
    return np.c_[pts.min(1), pts.max(1)]


def rotated_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the exact IoU of every pair of rotated rectangles: polygon intersection area over union area.

    Args:
        a (np.ndarray): (N, 5) xywhr boxes.
        b (np.ndarray): (M, 5) xywhr boxes.

    Returns:
        (np.ndarray): (N, M) IoUs in [0, 1]; 0 for a pair with a zero-area box.
    """
    a, b = (np.asarray(x, dtype=np.float64).reshape(-1, 5) for x in (a, b))
    iou = np.zeros((len(a), len(b)))
    area_a, area_b = a[:, 2] * a[:, 3], b[:, 2] * b[:, 3]
    ha, hb = hull_xyxy(a)[:, None], hull_xyxy(b)[None]
    # Clip polygons only where the hulls overlap (few pairs of an image): the others cannot intersect
    touch = (np.minimum(ha[..., 2], hb[..., 2]) > np.maximum(ha[..., 0], hb[..., 0])) & (
        np.minimum(ha[..., 3], hb[..., 3]) > np.maximum(ha[..., 1], hb[..., 1])
    )
    i, j = np.nonzero(touch & (area_a[:, None] > 0) & (area_b[None] > 0))  # zero-area polygons are invalid in GEOS
    if len(i):
        import shapely  # deferred: only needed when evaluating

        pa, pb = shapely.polygons(corners(a)), shapely.polygons(corners(b))
        inter = shapely.area(shapely.intersection(pa[i], pb[j]))
        iou[i, j] = np.clip(inter / (area_a[i] + area_b[j] - inter), 0, 1)  # float error can put identical boxes at 1+
    return iou


@cache
def _rotated_cocoeval() -> type:
    """Return faster-coco-eval's evaluator with rotated-box IoU (built on first use: the import is deferred)."""
    from faster_coco_eval import COCOeval_faster

    class RotatedCOCOeval(COCOeval_faster):
        """COCOeval_faster whose IoU is that of the rotated boxes behind the annotations (row index = id - 1)."""

        def __init__(self, coco_gt, coco_dt, gt_boxes: np.ndarray, dt_boxes: np.ndarray) -> None:
            """Evaluate as iouType 'bbox', with GT_BOXES and DT_BOXES (xywhr) in annotation-id order."""
            super().__init__(coco_gt, coco_dt, iouType="bbox", print_function=silent)
            self.gt_boxes, self.dt_boxes = gt_boxes, dt_boxes

        def computeIoU(self, imgId: int, catId: int) -> list | np.ndarray:
            """Return the (detections, ground truth) IoU matrix of one image and class, in the parent's order.

            The C++ matcher reads the rows as the detections sorted by descending score (stable) and cut to
            maxDets[-1], as `COCOeval.computeIoU` leaves them; the instances are the annotation dicts themselves.
            """
            p = self.params
            cats = [catId] if p.useCats else p.catIds
            gt = self.gt_dataset.get_instances([imgId], cats, bool(p.useCats))[0][0]
            dt = self.dt_dataset.get_instances([imgId], cats, bool(p.useCats))[0][0]
            if len(gt) == 0 or len(dt) == 0:
                return []
            order = np.argsort([-d["score"] for d in dt], kind="mergesort")[: p.maxDets[-1]]
            dt_rows = [dt[i]["id"] - 1 for i in order]
            return rotated_iou(self.dt_boxes[dt_rows], self.gt_boxes[[g["id"] - 1 for g in gt]])

    return RotatedCOCOeval


def tiny_ap_obb(
    gt: np.ndarray, pred: np.ndarray, num_images: int | None = None, max_dets: int = MAX_DETS
) -> dict[str, float]:
    """Return AP, AP50, AP75 and AP per AI-TOD size range of oriented boxes, by rotated IoU and rotated area; -1
    where a range has no ground truth (COCO convention).

    Args:
        gt (np.ndarray): (N, 7) ground truth rows of [image, cls, cx, cy, w, h, angle_rad] in original image pixels.
        pred (np.ndarray): (M, 8) prediction rows of [image, cls, conf, cx, cy, w, h, angle_rad] in original pixels.
        num_images (int, optional): Number of evaluated images (ids 0..num_images-1); images without boxes count too.
        max_dets (int): Detections kept per image and class.

    Returns:
        (dict[str, float]): Values for `KEYS`: AP (IoU 0.50:0.95), AP50, AP75, AP_vt, AP_t, AP_s, AP_m.
    """
    gt, pred, num_images = as_rows(gt, pred, num_images, 5)
    if not len(gt) or not num_images:  # nothing to recall: every AP is undefined
        return dict.fromkeys(KEYS, -1.0)

    gt_hull, pred_hull = hull_xyxy(gt[:, 2:]), hull_xyxy(pred[:, 3:])
    gt_rows = np.c_[gt[:, :2], gt_hull[:, :2], gt_hull[:, 2:] - gt_hull[:, :2], gt[:, 4] * gt[:, 5]]
    pred_rows = np.c_[pred[:, :3], pred_hull[:, :2], pred_hull[:, 2:] - pred_hull[:, :2]]
    coco_gt, coco_dt = load_coco(*coco_dicts(gt_rows, pred_rows, num_images))
    pred_area = pred[:, 5] * pred[:, 6]
    for ann in coco_dt.dataset["annotations"]:  # loadRes gave each the hull's area: COCO's area ranges want the box's
        ann["area"] = float(pred_area[ann["id"] - 1])
    return size_ap(_rotated_cocoeval()(coco_gt, coco_dt, gt[:, 2:], pred[:, 3:]), max_dets)


def size_counts_obb(gt: np.ndarray) -> dict[str, int]:
    """Return the number of oriented ground-truth boxes in each AI-TOD size bucket, by the rotated area w*h.

    Args:
        gt (np.ndarray): (N, 7) ground truth rows of [image, cls, cx, cy, w, h, angle_rad].

    Returns:
        (dict[str, int]): Box count for "all", each size range key and "other" (outside 2-64 px); the buckets and
            "other" add up to "all".
    """
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 7)
    return counts_by_area(gt[:, 4] * gt[:, 5])
