"""SDP: Spatial Dependency Perception block of HS-FPN."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .conv import LayerScale, check_gate, conv_act_norm
from .tracing import in_export, static_sizes


def to_blocks(x: torch.Tensor, grid: int) -> torch.Tensor:
    """Cut N x C x H x W into a grid x grid layout of blocks: N x grid² x (H/grid · W/grid) x C token sequences.

    Blocks are numbered row by row. Eager mode moves the data once (a 6-D view and permute); an export takes three
    4-D steps that keep the batch axis apart, which is all that NCNN, TFLite and the ONNX converters carry.
    """
    n, c, h, w = x.shape
    bh, bw = h // grid, w // grid
    if not in_export():  # one copy instead of three; contiguous, as the fused attention kernel needs
        x = x.view(n, c, grid, bh, grid, bw).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(n, grid * grid, bh * bw, c).contiguous()
    x = x.reshape(n, c * h, grid, bw).transpose(1, 2)  # N x grid_j x (C·grid_i·bh) x bw
    x = x.reshape(n, grid * c, grid, bh * bw).transpose(1, 2)  # N x grid_i x (grid_j·C) x L
    # Contiguous tokens: with a strided view, scaled_dot_product_attention leaves its fused CPU kernel (~1.5x slower)
    return x.reshape(n, grid * grid, c, bh * bw).transpose(2, 3).contiguous()


def from_blocks(x: torch.Tensor, grid: int, h, w) -> torch.Tensor:
    """Inverse of `to_blocks`: N x grid² x L x C back to N x C x H x W, in the same steps."""
    n, c = x.shape[0], x.shape[-1]
    bh, bw = h // grid, w // grid
    if not in_export():
        return x.view(n, grid, grid, bh, bw, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, h, w)
    x = x.transpose(2, 3).reshape(n, grid, grid * c, bh * bw).transpose(1, 2)  # N x (grid_j·C) x grid_i x L
    x = x.reshape(n, grid, c * h, bw).transpose(1, 2)  # N x (C·grid_i·bh) x grid_j x bw
    return x.reshape(n, c, h, w)


def block_attention(q: torch.Tensor, k: torch.Tensor, grid: int, fused: bool = True) -> torch.Tensor:
    """Return softmax(q_b k_bᵀ / sqrt(C)) k_b inside every block of a grid x grid layout, as N x C x H x W.

    Args:
        q (torch.Tensor): Queries, N x C x H x W.
        k (torch.Tensor): Keys, also the values, N x C x H' x W' with the same grid of blocks (H' = H or H / 2).
        grid (int): Blocks per axis.
        fused (bool): Use `scaled_dot_product_attention`; False spells out matmul + softmax (for checks).
    """
    h, w = q.shape[-2:]
    qb, kb = to_blocks(q, grid), to_blocks(k, grid)
    if fused:
        out = F.scaled_dot_product_attention(qb, kb, kb)
    else:
        out = torch.softmax(qb @ kb.transpose(-1, -2) / qb.shape[-1] ** 0.5, -1) @ kb
    return from_blocks(out, grid, h, w)


class SDP(nn.Module):
    """Spatial Dependency Perception: pixel cross-attention inside every block of a grid, plus a residual.

    Queries come from the finer level, keys and values (identical, as in the reference) from the next coarser level.
    The coarser level may be given upsampled to the finer size (the reference) or at its own, half size: its key
    projection then runs before a nearest x2 upsampling, which gives the same keys (a 1x1 conv, the activation and
    the norm's statistics all commute with nearest upsampling) for a quarter of the work; where every block spans
    whole coarse pixels, attention reads those keys without upsampling them (`coarse_keys`). The block grid (not a pixel
    size) is fixed, so any input that is a multiple of the model stride works, square or not. Attention runs fused
    through `scaled_dot_product_attention`, one "head" per block.

    Args:
        c1 (int | Sequence[int]): Channels of both inputs, or [finer, coarser] when they differ; the output has the
            finer level's channels.
        grid (int): Blocks per axis: 2**j for a level 2**j times finer than the coarsest level.
        act (bool | str): Activation after the query/key 1x1 convolutions: True/'relu' as the reference, 'silu',
            or False.
        norm (str): 'gn': conv -> act -> GroupNorm (the reference); 'bn': conv -> BatchNorm -> act.
        gate (bool | float): Return x_low + gamma * attention with a learnable per-channel gamma (the reference adds
            the attention unscaled): True starts gamma at 0, so the block starts as an identity of the finer level; a
            number in [0, 1] starts it there.
    """

    def __init__(
        self,
        c1: int | Sequence[int],
        grid: int = 2,
        act: bool | str = True,
        norm: str = "gn",
        gate: bool | float = False,
    ):
        super().__init__()
        if not isinstance(grid, int) or grid < 1:
            raise ValueError(f"grid must be a positive integer, got {grid!r}")
        c_low, c_high = (c1, c1) if isinstance(c1, int) else c1
        self.grid = grid
        self.fused_attn = True  # False: explicit matmul + softmax, for checks
        self.q = conv_act_norm(c_low, c_low, 1, norm, act)
        self.k = conv_act_norm(c_high, c_low, 1, norm, act)
        init = check_gate(gate)
        self.scale = None if init is None else LayerScale(c_low, init)

    def __setstate__(self, state: dict) -> None:
        """Restore a block pickled by hsfpn-yolo 0.1 (no gate, no `fused_attn`) in today's layout."""
        super().__setstate__(state)
        self.__dict__.setdefault("fused_attn", True)
        if "scale" not in self._modules:
            self.__dict__.setdefault("scale", None)

    def keys(self, high: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Project the coarser level to keys at `size`: as given when it is that size, upsampled x2 when half."""
        k = self.k(high)
        if tuple(high.shape[-2:]) != tuple(size):
            k = F.interpolate(k, scale_factor=2.0, mode="nearest")
        return k

    def coarse_keys(self, high: torch.Tensor, size: tuple) -> bool:
        """Return whether attention may read the keys at the coarser level's own size: it is half of `size`, and each
        block spans whole coarse pixels (even block sides). Each coarse key then stands for the 2 x 2 fine keys that
        nearest upsampling would copy, all with the same logit, so its softmax weight is theirs together and the
        output is the same, for a quarter of the keys' reshapes, products and softmax. Sizes must be numbers (eager
        mode, a fixed-size export); a dynamic export keeps the upsampled keys."""
        h, w = static_sizes(*size)
        hh, hw = static_sizes(*high.shape[-2:])
        numbers = all(isinstance(v, int) for v in (h, w, hh, hw))
        return numbers and (2 * hh, 2 * hw) == (h, w) and (h // self.grid) % 2 == 0 and (w // self.grid) % 2 == 0

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        """Attend from x[0] (finer level) to x[1] (coarser level, same or half size); return out + x[0]."""
        low, high = x
        h, w = low.shape[-2:]
        hh, hw = high.shape[-2:]
        if not torch.jit.is_tracing() and (
            ((hh, hw) != (h, w) and (2 * hh, 2 * hw) != (h, w)) or h % self.grid or w % self.grid
        ):
            raise ValueError(
                f"SDP needs the coarser input at the finer input's size or at half of it, and a size divisible by "
                f"grid={self.grid}; got {tuple(low.shape[-2:])} and {tuple(high.shape[-2:])}: use an input size that "
                "is a multiple of the model stride"
            )
        k = self.k(high) if self.coarse_keys(high, (h, w)) else self.keys(high, (h, w))
        out = block_attention(self.q(low), k, self.grid, self.fused_attn)
        return low + (out if self.scale is None else self.scale(out))
