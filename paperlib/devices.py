"""Devices and processes: the device a run uses, CUDA's math settings, and torchrun's process group (NCCL on GPUs,
gloo on CPUs, so that multi-process training is tested here)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when a GPU is visible, else the CPU; any other name as torch reads it."""
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def configure_backends(device: torch.device, tf32: bool = False) -> None:
    """CUDA math as the reference sets it: cuDNN autotuning on and TF32 off unless ``tf32`` (PyTorch's own default
    allows TF32 in cuDNN convolutions, which would change the discriminator's numbers). Nothing to do on CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32


@dataclass
class DistInfo:
    """This process's place among torchrun's: its rank, the number of processes and its GPU on the node."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device_kind: str) -> DistInfo:
    """Join the torchrun process group if launched by torchrun (NCCL on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
