"""Tiny-object metrics: COCO AP split by AI-TOD object sizes, reported by Ultralytics detection validation."""

from .hooks import ENV_VAR, enable_tiny_metrics, is_hsfpn_model, patch_callbacks
from .tiny import KEYS, SIZE_RANGES, size_counts, tiny_ap

__all__ = (
    "ENV_VAR",
    "KEYS",
    "SIZE_RANGES",
    "enable_tiny_metrics",
    "is_hsfpn_model",
    "patch_callbacks",
    "size_counts",
    "tiny_ap",
)
