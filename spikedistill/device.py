"""Which device a command runs on: the one resolution every room uses (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""

from __future__ import annotations

import torch

from .errors import SpikeDistillError


def resolve_device(name: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` → the GPU when one is visible, else the CPU; ``cuda`` → ``cuda:<local_rank>`` (one GPU per
    process under torchrun). A CUDA device without a visible GPU is one clear error."""
    if isinstance(name, torch.device):
        name = str(name)
    if name in (None, "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise SpikeDistillError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SpikeDistillError(f"device '{name}' was asked but no CUDA GPU is visible; use device cpu or auto")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device
