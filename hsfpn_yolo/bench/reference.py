"""Straightforward reference versions of HFP and SDP, the yardstick of the block benchmarks.

They compute what the original HS-FPN code computes, the way it computes it: an FFT-based DCT -> mask -> IDCT per
path (twice per HFP), pooling modules, the shared 1x1 convolution called once per pooled vector, and attention as
explicit softmax(q kᵀ / sqrt(d)) v per block. Each wraps one of our blocks and uses its very parameters, so both
compute the same function from the same weights and the timings compare like with like.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch_dct

from hsfpn_yolo.nn import HFP, SDP
from hsfpn_yolo.nn.sdp import block_attention


def dct_highpass(x: torch.Tensor, ratio: tuple[float, float]) -> torch.Tensor:
    """Return IDCT2(M ⊙ DCT2(x)) with the floor(ratio·H) x floor(ratio·W) low-frequency corner of M zeroed."""
    h, w = x.shape[-2:]
    mask = torch.ones(h, w, device=x.device, dtype=x.dtype)
    mask[: math.floor(ratio[0] * h), : math.floor(ratio[1] * w)] = 0
    return torch_dct.idct_2d(torch_dct.dct_2d(x, norm="ortho") * mask, norm="ortho")


class ReferenceHFP(nn.Module):
    """HFP the original way, on the weights of `block`.

    Args:
        block (HFP): Block whose parameters and options are used.
    """

    def __init__(self, block: HFP):
        super().__init__()
        self.block = block
        p = block.patch if block.dct else 1
        self.max_pool, self.avg_pool = nn.AdaptiveMaxPool2d(p), nn.AdaptiveAvgPool2d(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return GN(conv3x3(spatial(x) + channel(x))) with one high-pass per path."""
        b = self.block
        if b.dct:
            spatial = x * dct_highpass(x, b.highpass.ratio)
            h = dct_highpass(x, b.highpass.ratio)  # the channel path filters again, as the original code does
            a = self.max_pool(h).relu().sum((2, 3), keepdim=True)
            c = self.avg_pool(h).relu().sum((2, 3), keepdim=True)
        else:
            spatial = x * torch.sigmoid(b.spatial(x))
            a, c = self.max_pool(x).relu(), self.avg_pool(x).relu()
        channel = x * torch.sigmoid(b.g2(b.g1(a) + b.g1(c)))
        return b.out(spatial + channel)


class ReferenceSDP(nn.Module):
    """SDP the original way, on the weights of `block`: per-block attention in explicit loops, or batched.

    Args:
        block (SDP): Block whose parameters and grid are used.
        batched (bool): Cut all blocks at once and use one batched matmul + softmax instead of Python loops.
    """

    def __init__(self, block: SDP, batched: bool = False):
        super().__init__()
        self.block, self.batched = block, batched

    @staticmethod
    def attend(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Return softmax(q kᵀ / sqrt(d)) k for (..., L, d) token sequences."""
        return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1) @ k

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        """Return block-wise attention from x[0] to x[1], plus x[0]."""
        low, high = x
        q, k = self.block.q(low), self.block.k(high)
        n, d, h, w = q.shape
        g = self.block.grid
        bh, bw = h // g, w // g
        if self.batched:  # the block's own explicit (unfused) path
            return block_attention(q, k, g, fused=False) + low
        out = torch.empty_like(q)
        for i in range(g):
            for j in range(g):
                rows, cols = slice(i * bh, (i + 1) * bh), slice(j * bw, (j + 1) * bw)
                qb, kb = (t[:, :, rows, cols].flatten(2).transpose(1, 2) for t in (q, k))  # n x L x d
                out[:, :, rows, cols] = self.attend(qb, kb).transpose(1, 2).reshape(n, d, bh, bw)
        return out + low


class HFPCore(nn.Module):
    """The part of HFP no implementation can skip: its 3x3 convolution + ReLU + GroupNorm, on the weights of `block`.

    Args:
        block (HFP): Block whose output convolution and norm are used.
    """

    def __init__(self, block: HFP):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return GN(relu(conv3x3(x)))."""
        return self.block.out(x)
