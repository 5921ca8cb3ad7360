"""Sum over a p x p adaptive-pooling grid of ReLU'd bin statistics, exportable to ONNX at any input size.

ONNX (opset 18) has no adaptive pooling: the TorchScript exporter only handles output sizes that divide a statically
known input size, which rules out dynamic-shape exports. While exporting, the bins are built from the (symbolic)
input size with the same start/end rule as PyTorch's adaptive pooling, so the exported graph stays exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def adaptive_bins(n, p: int, device=None) -> torch.Tensor:
    """Return a p x n boolean matrix marking which of n positions fall in each of PyTorch's p adaptive-pooling bins.

    Args:
        n (int | torch.Tensor): Input length (0-dim tensor while tracing).
        p (int): Number of bins.
        device (torch.device, optional): Device of the result.
    """
    pos = torch.arange(n, device=device).unsqueeze(0)
    b = torch.arange(p, device=device).unsqueeze(1)
    start = torch.div(b * n, p, rounding_mode="floor")
    end = torch.div((b + 1) * n + p - 1, p, rounding_mode="floor")  # ceil((b + 1) * n / p)
    return (pos >= start) & (pos < end)


def _binned_max(x: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Max of `x` over each bin of its last dimension: (..., n) with bins (p, n) -> (..., p)."""
    masked = torch.where(bins, x.unsqueeze(-2), torch.finfo(x.dtype).min)
    return masked.amax(-1)


def _binned_mean(x: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Mean of `x` over each bin of its last dimension: (..., n) with bins (p, n) -> (..., p)."""
    weights = bins.to(x.dtype)
    return x @ (weights / weights.sum(1, keepdim=True)).transpose(0, 1)


def pooled_relu_sum(x: torch.Tensor, p: int, mode: str) -> torch.Tensor:
    """Return Σ over the p x p grid of relu(adaptive_{max|avg}_pool_p(x)), shaped N x C x 1 x 1.

    Args:
        x (torch.Tensor): Input of shape N x C x H x W.
        p (int): Pooling grid size per axis.
        mode (str): 'max' or 'avg'.
    """
    if not torch.onnx.is_in_onnx_export():
        pooled = F.adaptive_max_pool2d(x, p) if mode == "max" else F.adaptive_avg_pool2d(x, p)
    else:
        reduce = _binned_max if mode == "max" else _binned_mean
        h, w = x.shape[-2:]
        pooled = reduce(x, adaptive_bins(w, p, x.device))  # N x C x H x p
        pooled = reduce(pooled.transpose(-1, -2), adaptive_bins(h, p, x.device)).transpose(-1, -2)  # N x C x p x p
    return pooled.relu().sum((2, 3), keepdim=True)
