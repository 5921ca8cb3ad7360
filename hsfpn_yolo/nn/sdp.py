"""SDP: Spatial Dependency Perception block of HS-FPN."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .conv import ConvReLU, group_count


def to_blocks(x: torch.Tensor, grid: int) -> torch.Tensor:
    """Cut N x C x H x W into a grid x grid layout of blocks: N x grid² x (H/grid · W/grid) x C token sequences."""
    n, c, h, w = x.shape
    x = x.view(n, c, grid, h // grid, grid, w // grid).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(n, grid * grid, (h // grid) * (w // grid), c)


def from_blocks(x: torch.Tensor, grid: int, h, w) -> torch.Tensor:
    """Inverse of `to_blocks`: N x grid² x L x C back to N x C x H x W."""
    n, c = x.shape[0], x.shape[-1]
    x = x.view(n, grid, grid, h // grid, w // grid, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(n, c, h, w)


class SDP(nn.Module):
    """Spatial Dependency Perception: pixel cross-attention inside every block of a grid, plus a residual.

    Queries come from the finer level, keys and values (identical, as in the reference) from the next coarser level
    upsampled to the same size. The block grid (not a pixel size) is fixed, so any input that is a multiple of the
    model stride works, square or not. Attention runs fused through `scaled_dot_product_attention`, one "head" per
    block.

    Args:
        c1 (int): Channels of both inputs and of the output.
        grid (int): Blocks per axis: 2**j for a level 2**j times finer than the coarsest level.
        act (bool): ReLU after the query/key 1x1 convolutions, as the reference code does.
    """

    def __init__(self, c1: int, grid: int = 2, act: bool = True):
        super().__init__()
        if not isinstance(grid, int) or grid < 1:
            raise ValueError(f"grid must be a positive integer, got {grid!r}")
        self.grid = grid
        self.q = nn.Sequential(ConvReLU(c1, c1, 1, act=act), nn.GroupNorm(group_count(c1), c1))
        self.k = nn.Sequential(ConvReLU(c1, c1, 1, act=act), nn.GroupNorm(group_count(c1), c1))

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        """Attend from x[0] (finer level) to x[1] (coarser level upsampled to x[0]'s size); return out + x[0]."""
        low, high = x
        h, w = low.shape[-2:]
        if not torch.jit.is_tracing() and (high.shape[-2:] != low.shape[-2:] or h % self.grid or w % self.grid):
            raise ValueError(
                f"SDP needs both inputs at one size divisible by grid={self.grid}, got {tuple(low.shape[-2:])} and "
                f"{tuple(high.shape[-2:])}; use an input size that is a multiple of the model stride"
            )
        q, k = to_blocks(self.q(low), self.grid), to_blocks(self.k(high), self.grid)
        out = F.scaled_dot_product_attention(q, k, k)
        return from_blocks(out, self.grid, h, w) + low
