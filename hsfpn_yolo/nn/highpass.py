"""Exact DCT high-pass filter computed as two thin matrix products instead of DCT -> mask -> IDCT.

With U the n x k matrix of the k lowest orthonormal DCT-II basis vectors, zeroing those k frequencies and inverting
is x - U Uᵀ x, so the 2-D high-pass is x - U_H U_Hᵀ x U_W U_Wᵀ: no FFT, exportable as MatMul, autocast-friendly.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn as nn

from .tracing import static_sizes, traced_or_compiled


def low_frequency_count(n, ratio: float):
    """Return floor(ratio * n), the number of lowest DCT frequencies removed along an axis of size n.

    Args:
        n (int | torch.Tensor): Axis size; a 0-dim tensor while tracing for export, so the count stays symbolic.
        ratio (float): Fraction of the axis treated as low frequency.
    """
    if isinstance(n, torch.Tensor):
        return torch.floor(n.to(torch.float64) * ratio).to(torch.int64)
    return math.floor(n * ratio)


def dct_basis(n, k, device=None, dtype=torch.float32) -> torch.Tensor:
    """Return the n x k matrix whose columns are the k lowest orthonormal DCT-II basis vectors of length n.

    Args:
        n (int | torch.Tensor): Signal length.
        k (int | torch.Tensor): Number of basis vectors (frequencies 0..k-1).
        device (torch.device, optional): Device of the result.
        dtype (torch.dtype): Dtype of the computation and of the result.
    """
    i = torch.arange(n, device=device, dtype=dtype).unsqueeze(1)  # sample index, n x 1
    f = torch.arange(k, device=device, dtype=dtype).unsqueeze(0)  # frequency index, 1 x k
    nf = i.new_ones(()) * n  # n as a tensor of this dtype (stays symbolic when n is traced)
    scale = torch.where(f == 0, torch.sqrt(1.0 / nf), torch.sqrt(2.0 / nf))
    return scale * torch.cos(math.pi * (2 * i + 1) * f / (2 * nf))


@lru_cache(maxsize=64)
def _cached_basis(n: int, k: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Return `dct_basis(n, k)` built once per (size, device, dtype) in float64, outside inference mode."""
    # A basis first built under torch.inference_mode() (predict/val) would be an inference tensor that autograd cannot
    # save in a later training step, so always build normal tensors.
    with torch.inference_mode(False), torch.no_grad():
        return dct_basis(n, k, device=device, dtype=torch.float64).to(dtype)


def _basis(n, k, like: torch.Tensor) -> torch.Tensor:
    """Return the DCT basis for `like`'s device and dtype: cached in eager mode and in a fixed-size export (a constant
    of the graph), built in-graph when traced/compiled with sizes that may change."""
    if traced_or_compiled() and not all(isinstance(v, int) for v in (n, k)):
        # Built from the (symbolic) size, so a dynamic ONNX export stays exact at every input size.
        return dct_basis(n, k, device=like.device, dtype=torch.float32).to(like.dtype)
    return _cached_basis(int(n), int(k), like.device, like.dtype)


def check_ratio(ratio) -> tuple[float, float]:
    """Return `ratio` as an (h, w) pair after checking that both values lie in (0, 1).

    Args:
        ratio (float | Sequence[float]): One value for both axes, or (h, w).
    """
    pair = tuple(float(r) for r in ratio) if isinstance(ratio, (list, tuple)) else (float(ratio),) * 2
    if len(pair) != 2 or not all(0.0 < r < 1.0 for r in pair):
        raise ValueError(f"ratio must be a number or an (h, w) pair with values in (0, 1), got {ratio!r}")
    return pair


class DCTHighPass(nn.Module):
    """Remove the floor(ratio·H) x floor(ratio·W) lowest orthonormal DCT-II frequencies of every channel.

    Equal to IDCT2(M ⊙ DCT2(x)) with M zero on the low-frequency corner, at the cost of four thin matrix products.
    The bases depend only on size, device and dtype; they are cached outside the module so they never become
    parameters or checkpoint entries.

    Args:
        ratio (float | tuple[float, float]): Low-frequency fraction per axis, (0, 1).
    """

    def __init__(self, ratio: float | tuple[float, float] = 0.25):
        super().__init__()
        self.ratio = check_ratio(ratio)

    def _bases(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return U_H (H x kh) and U_W (W x kw) for `x`'s size, device and dtype."""
        h, w = static_sizes(*x.shape[-2:])
        return _basis(h, low_frequency_count(h, self.ratio[0]), x), _basis(w, low_frequency_count(w, self.ratio[1]), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the high-pass x - U_H U_Hᵀ x U_W U_Wᵀ of `x` over its last two dimensions."""
        uh, uw = self._bases(x)
        # x @ U_W first: one large GEMM over all N·C·H rows, after which the H-side products are tiny; starting with
        # U_Hᵀ @ x is a broadcast batched product. With the fused subtraction below: ~25% faster forward+backward.
        t = uh @ (uh.transpose(0, 1) @ (x @ uw))
        # The last product subtracts itself from x inside the GEMM (alpha=-1), saving a full-size pass.
        return torch.addmm(x.flatten(0, -2), t.flatten(0, -2), uw.transpose(0, 1), alpha=-1).view(x.shape)

    def extra_repr(self) -> str:
        """Show the ratio in module printouts."""
        return f"ratio={self.ratio}"
