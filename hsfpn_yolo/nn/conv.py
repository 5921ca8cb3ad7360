"""Plain convolution with an optional ReLU, and the GroupNorm group count used by the HS-FPN blocks."""

from __future__ import annotations

import torch.nn as nn


def group_count(channels: int, max_groups: int = 32) -> int:
    """Return the largest divisor of `channels` that is <= `max_groups` (32 when `channels` is a multiple of 32).

    Args:
        channels (int): Number of channels to split into groups.
        max_groups (int): Upper bound on the group count.
    """
    return next(g for g in range(min(max_groups, channels), 0, -1) if channels % g == 0)


class ConvReLU(nn.Module):
    """Convolution followed by an optional ReLU, the reference code's `ConvModule` without a norm layer.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        k (int): Kernel size (padding keeps the spatial size).
        groups (int): Convolution groups.
        bias (bool): Whether the convolution has a bias.
        act (bool): Whether a ReLU follows the convolution.
    """

    def __init__(self, c1: int, c2: int, k: int = 1, groups: int = 1, bias: bool = False, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, padding=k // 2, groups=groups, bias=bias)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x):
        """Apply convolution then activation."""
        return self.act(self.conv(x))
