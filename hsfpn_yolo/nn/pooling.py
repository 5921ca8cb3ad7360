"""Sum over a p x p adaptive-pooling grid of ReLU'd bin statistics, in operations every export format supports.

Adaptive pooling is no operation of ONNX, TFLite or NCNN, and its bins overlap when p does not divide the size. The
bins follow PyTorch's start/end rule in every case:

- sizes known as numbers that p divides (eager mode, torch.export, an export at a fixed size): the bins are the
  windows of a plain max/avg pooling with kernel = stride = size / p, which every runtime has;
- eager mode, other sizes: PyTorch's adaptive pooling itself (the definition, and the fastest in training);
- while exporting (traced, compiled, or inside `nn.tracing.exporting()`), other sizes and sizes that may change
  (`dynamic=True`): the bins are p x n matrices built from the size; the mean is a product with bin weights, the max
  adds 0 inside a bin and the dtype's minimum outside before a max over the axis. Within 4-D tensors, the batch axis
  apart, exact at every input size of a dynamic-shape export.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .tracing import in_export, static_sizes


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


def bin_matrices(n, p: int, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (n x p averaging weights, p x n max offsets: 0 inside a bin, the dtype's minimum outside).

    Args:
        n (int | torch.Tensor): Input length (0-dim tensor while tracing).
        p (int): Number of bins.
        device (torch.device, optional): Device of the results.
        dtype (torch.dtype): Dtype of the results.
    """
    inside = adaptive_bins(n, p, device).to(dtype)
    weights = (inside / inside.sum(1, keepdim=True)).transpose(0, 1)
    offsets = (1.0 - inside) * torch.finfo(dtype).min
    return weights, offsets


def binned_max(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Max of N x C x H x W `x` over each bin of its last axis, as N x (C·H) x p; `offsets` is p x W."""
    return (x.flatten(1, 2).unsqueeze(2) + offsets).amax(-1)  # N x C·H x p x W, then the max over W


def exported_pooling(x: torch.Tensor, p: int, mode: str) -> torch.Tensor:
    """Adaptive max/avg pooling to p x p in 4-D matrix operations, the grid transposed: N x C x p x p."""
    n, c, h, w = x.shape
    (ww, ow), (wh, oh) = (bin_matrices(s, p, x.device, x.dtype) for s in (w, h))
    if mode == "max":
        pooled = binned_max(x, ow).view(n, c, h, p).transpose(2, 3)  # N x C x p x H
        return binned_max(pooled, oh).view(n, c, p, p)
    return (x @ ww).transpose(2, 3) @ wh


def pooled_relu_sum(x: torch.Tensor, p: int, mode: str) -> torch.Tensor:
    """Return Σ over the p x p grid of relu(adaptive_{max|avg}_pool_p(x)), shaped N x C x 1 x 1.

    Args:
        x (torch.Tensor): Input of shape N x C x H x W.
        p (int): Pooling grid size per axis.
        mode (str): 'max' or 'avg'.
    """
    h, w = static_sizes(*x.shape[-2:])
    if isinstance(h, int) and isinstance(w, int) and h % p == 0 and w % p == 0:
        pooled = (F.max_pool2d if mode == "max" else F.avg_pool2d)(x, (h // p, w // p))
    elif in_export():
        pooled = exported_pooling(x, p, mode)  # the sum below does not depend on the grid's order
    else:
        pooled = (F.adaptive_max_pool2d if mode == "max" else F.adaptive_avg_pool2d)(x, p)
    return pooled.relu().sum((2, 3), keepdim=True)
