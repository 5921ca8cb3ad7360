"""HS-FPN building blocks as YOLO-style modules."""

from .conv import ConvBNAct, ConvReLU, LayerScale, fuse_blocks, group_count
from .hfp import HFP
from .highpass import DCTHighPass, dct_basis
from .merge import Sum
from .sdp import SDP

BLOCKS = {"HFP": HFP, "SDP": SDP, "Sum": Sum}  # the YAML names of the blocks: the one list of them

__all__ = (
    "BLOCKS",
    "ConvBNAct",
    "fuse_blocks",
    "HFP",
    "SDP",
    "Sum",
    "ConvReLU",
    "LayerScale",
    "DCTHighPass",
    "dct_basis",
    "group_count",
)
