"""Tiny-object metrics: COCO AP split by AI-TOD object sizes, reported by Ultralytics detection and OBB validation."""

from .hooks import ENV_VAR, enable_tiny_metrics, is_hsfpn_model, patch_callbacks
from .obb import rotated_iou, size_counts_obb, tiny_ap_obb
from .tiny import KEYS, SIZE_RANGES, size_counts, tiny_ap

__all__ = (
    "ENV_VAR",
    "KEYS",
    "SIZE_RANGES",
    "enable_tiny_metrics",
    "is_hsfpn_model",
    "patch_callbacks",
    "rotated_iou",
    "size_counts",
    "size_counts_obb",
    "tiny_ap",
    "tiny_ap_obb",
)
