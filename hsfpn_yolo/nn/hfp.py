"""HFP: High Frequency Perception block of HS-FPN."""

from __future__ import annotations

import torch
import torch.nn as nn

from .conv import ConvReLU, LayerScale, check_gate, group_count, output_conv
from .highpass import DCTHighPass
from .pooling import pooled_relu_sum


class HFP(nn.Module):
    """High Frequency Perception: high-pass driven spatial and channel attention, then an output conv + act + norm.

    With `dct=True` (fine levels) both attentions are driven by one exact DCT high-pass of the input; with `dct=False`
    (coarse levels) the spatial gate is a 1x1 convolution and the channel gate uses global max/avg pooling. GroupNorm
    uses 32 groups, or the largest divisor of `c1` below 32 when `c1` is not a multiple of 32; the grouped 1x1
    convolutions of the channel gate follow the same rule.

    Args:
        c1 (int): Channels in and out.
        dct (bool): Use the DCT high-pass paths.
        patch (int): Pooling grid p of the DCT channel path (p x p bins).
        ratio (float | tuple[float, float]): Low-frequency fraction removed per axis by the high-pass, in (0, 1).
        act (bool | str): Activation after every convolution: True/'relu' as the reference code does, 'silu', or
            False for the activation-free variant often copied from blog posts.
        norm (str): 'gn': conv3x3 -> act -> GroupNorm (the reference); 'bn': conv3x3 -> BatchNorm -> act (YOLO's Conv).
        gate (bool | float): Return x + gamma * HFP(x) with a learnable per-channel gamma (the reference returns
            HFP(x)): True starts gamma at 0, so the block starts as an identity; a number in [0, 1] starts it there.
        out (str): Output convolution: 'full' 3x3 (the reference), or the cheaper 'dw' (depthwise 3x3 + 1x1) or 'pw'
            (1x1) for wide levels (see `output_conv`).
    """

    def __init__(
        self,
        c1: int,
        dct: bool = False,
        patch: int = 8,
        ratio: float | tuple[float, float] = 0.25,
        act: bool | str = True,
        norm: str = "gn",
        gate: bool | float = False,
        out: str = "full",
    ):
        super().__init__()
        if not isinstance(patch, int) or patch < 1:
            raise ValueError(f"patch must be a positive integer, got {patch!r}")
        self.dct, self.patch = bool(dct), patch
        self.highpass = DCTHighPass(ratio) if self.dct else None
        self.spatial = None if self.dct else ConvReLU(c1, 1, 1, act=act)
        g = group_count(c1)
        self.g1 = ConvReLU(c1, c1, 1, groups=g, act=act)  # shared by the max- and avg-pooled vectors
        self.g2 = ConvReLU(c1, c1, 1, groups=g, act=act)
        self.out = output_conv(c1, out, norm, act)
        init = check_gate(gate)
        self.scale = None if init is None else LayerScale(c1, init)

    def __setstate__(self, state: dict) -> None:
        """Restore a block pickled by hsfpn-yolo 0.1 (separate `out` conv and `norm`, no gate) in today's layout."""
        super().__setstate__(state)
        if "norm" in self._modules:
            self.out = nn.Sequential(self._modules.pop("out"), self._modules.pop("norm"))
            self.scale = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return norm(conv(spatial(x) + channel(x))), or x + gamma * that with `gate`."""
        if self.dct:
            gate = self.highpass(x)  # one high-pass feeds both paths
            a, b = pooled_relu_sum(gate, self.patch, "max"), pooled_relu_sum(gate, self.patch, "avg")
        else:
            gate = self.spatial(x).sigmoid()
            a, b = x.amax((2, 3), keepdim=True).relu(), x.mean((2, 3), keepdim=True).relu()
        # One call of the shared G1 for both pooled vectors, side by side along the width (a batch-axis concat would
        # not export to NCNN); the 1x1 convolution and its activation act on each position alone.
        channel = self.g2(self.g1(torch.cat((a, b), 3)).sum(3, keepdim=True)).sigmoid()
        # x * spatial_gate + x * channel_gate as x * (spatial_gate + channel_gate): two full-size passes, not three
        y = self.out(x * (gate + channel))
        return y if self.scale is None else x + self.scale(y)
