"""Element-wise sum of several same-shaped feature maps (the FPN top-down merge)."""

from __future__ import annotations

import torch
import torch.nn as nn


class Sum(nn.Module):
    """Add all inputs element-wise: the top-down FPN merge `P_i = P_i' + up(P_{i+1})`.

    Args:
        c1 (int): Channels of every input (checked when the model is built) and of the output.
    """

    def __init__(self, c1: int):
        super().__init__()
        self.c1 = c1

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        """Return the sum of the input list."""
        out = x[0]
        for t in x[1:]:
            out = out + t
        return out
