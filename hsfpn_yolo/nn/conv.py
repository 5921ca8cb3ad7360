"""Convolution + activation + norm units of the HS-FPN blocks, in the reference's order or in YOLO's order."""

from __future__ import annotations

import torch
import torch.nn as nn

NORMS = ("gn", "bn")
# HFP's output convolution: full 3x3, depthwise 3x3 + pointwise 1x1, or pointwise 1x1 alone. Not spelled '3x3' or
# '1x1': Ultralytics' parser runs ast.literal_eval on string args, and those are Python syntax errors to it.
OUT_CONVS = ("full", "dw", "pw")
ACTS = {True: nn.ReLU, "relu": nn.ReLU, "silu": nn.SiLU, False: nn.Identity}


def group_count(channels: int, max_groups: int = 32) -> int:
    """Return the largest divisor of `channels` that is <= `max_groups` (32 when `channels` is a multiple of 32).

    Args:
        channels (int): Number of channels to split into groups.
        max_groups (int): Upper bound on the group count.
    """
    return next(g for g in range(min(max_groups, channels), 0, -1) if channels % g == 0)


def check_norm(norm: str) -> str:
    """Return `norm` after checking it names a supported normalisation ('gn' or 'bn').

    Args:
        norm (str): 'gn' (GroupNorm, the reference) or 'bn' (BatchNorm, as in every YOLO Conv).
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return norm


def activation(act: bool | str) -> nn.Module:
    """Return the activation module for a block's `act` option.

    Args:
        act (bool | str): True or 'relu' (the reference), 'silu' (YOLO's), False for none.
    """
    if not isinstance(act, (bool, str)) or act not in ACTS:  # the type check keeps 1 and 0 (== True/False) out
        raise ValueError(f"act must be True, False, 'relu' or 'silu', got {act!r}")
    return ACTS[act](inplace=True)  # nn.Identity ignores the argument


class ConvReLU(nn.Module):
    """Convolution followed by an optional activation, the reference code's `ConvModule` without a norm layer.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        k (int): Kernel size (padding keeps the spatial size).
        groups (int): Convolution groups.
        bias (bool): Whether the convolution has a bias.
        act (bool | str): True/'relu' (default), 'silu', or False for none.
    """

    def __init__(self, c1: int, c2: int, k: int = 1, groups: int = 1, bias: bool = False, act: bool | str = True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, padding=k // 2, groups=groups, bias=bias)
        self.act = activation(act)

    def forward(self, x):
        """Apply convolution then activation."""
        return self.act(self.conv(x))


class ConvBNAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> activation (YOLO's `Conv` order) that `fuse()` folds into one biased convolution.

    A Sequential, so its weights keep the keys of the plain Sequential it replaces (0.weight, 1.running_mean, ...).
    """

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the BatchNorm (index 1) into the convolution (index 0) and replace it by an identity (eval use)."""
        conv, bn = self[0], self[1]
        if not isinstance(bn, nn.BatchNorm2d):
            return  # already fused
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
            bias=True,
        ).to(conv.weight.device, conv.weight.dtype)
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
        fused.requires_grad_(False)
        self[0], self[1] = fused, nn.Identity()


def fuse_blocks(model: nn.Module) -> int:
    """Fold the BatchNorm of every `ConvBNAct` in `model`; return how many were folded."""
    units = [m for m in model.modules() if isinstance(m, ConvBNAct) and isinstance(m[1], nn.BatchNorm2d)]
    for m in units:
        m.fuse()
    return len(units)


def conv_act_norm(c1: int, c2: int, k: int, norm: str, act: bool | str, bias: bool = False) -> nn.Sequential:
    """Return conv -> act -> GroupNorm (the reference's order) or conv -> BatchNorm -> act (YOLO's `Conv` order).

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels.
        k (int): Kernel size.
        norm (str): 'gn' or 'bn'.
        act (bool | str): Activation option (see `activation`).
        bias (bool): Convolution bias (dropped with BatchNorm, which has its own).
    """
    if check_norm(norm) == "gn":
        return nn.Sequential(ConvReLU(c1, c2, k, bias=bias, act=act), nn.GroupNorm(group_count(c2), c2))
    return ConvBNAct(nn.Conv2d(c1, c2, k, padding=k // 2, bias=False), nn.BatchNorm2d(c2), activation(act))


def output_conv(c: int, kind: str, norm: str, act: bool | str) -> nn.Sequential:
    """Return a block's output convolution (c -> c channels) with its activation and norm.

    'full' is the reference's 3x3 convolution (9·c² weights). 'dw' replaces it by a depthwise 3x3 then a 1x1 (c² + 9·c
    weights: the same 3x3 reach for about a ninth of the work on wide levels), 'pw' by a 1x1 alone (c² weights).
    With `norm: bn` the part that carries the BatchNorm is a `ConvBNAct`, which `model.fuse()` folds.

    Args:
        c (int): Channels in and out.
        kind (str): 'full', 'dw' or 'pw'.
        norm (str): 'gn' or 'bn' (see `conv_act_norm`).
        act (bool | str): Activation option (see `activation`).
    """
    if kind not in OUT_CONVS:
        raise ValueError(f"out must be one of {OUT_CONVS}, got {kind!r}")
    if kind == "dw":
        return nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), conv_act_norm(c, c, 1, norm, act))
    return conv_act_norm(c, c, 3 if kind == "full" else 1, norm, act, bias=True)


def check_gate(gate: bool | float) -> float | None:
    """Return the initial value of a block's residual gate, or None for no gate.

    Args:
        gate (bool | float): False: no gate; True: a gate that starts at 0 (the block starts as an identity);
            a number: a gate that starts at that value (1.0: a plain residual branch with a learnable scale).
    """
    if gate is False or gate is None:
        return None
    if gate is True:
        return 0.0
    if not isinstance(gate, (int, float)) or not 0.0 <= gate <= 1.0:
        raise ValueError(f"gate must be true, false or a starting value in [0, 1], got {gate!r}")
    return float(gate)


class LayerScale(nn.Module):
    """Learnable per-channel scale of a residual branch, by default initialised to zero (the block starts as identity).

    Args:
        c (int): Channels.
        init (float): Starting value of every channel's scale.
    """

    def __init__(self, c: int, init: float = 0.0):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((1, c, 1, 1), float(init)))

    def forward(self, x):
        """Return gamma * x."""
        return self.gamma * x
