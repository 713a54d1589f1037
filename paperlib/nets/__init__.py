"""EDM-compatible network architectures (no training logic here)."""

from paperlib.nets.dhariwal import DhariwalUNet
from paperlib.nets.songunet import SongUNet

ARCHITECTURES = {"SongUNet": SongUNet, "DhariwalUNet": DhariwalUNet}

__all__ = ["ARCHITECTURES", "DhariwalUNet", "SongUNet"]
