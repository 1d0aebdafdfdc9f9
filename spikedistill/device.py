"""Which device a command runs on: the one resolution every room uses (``auto``, ``cpu``, ``cuda``, ``cuda:N``),
the one precision decision (bf16 autocast or fp32) and the device's name in reports."""

from __future__ import annotations

import contextlib

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


def use_bf16(device: str | torch.device, precision: str = "bf16") -> bool:
    """The one precision decision, for training and for every evaluation (the per-epoch test that picks
    ``best.pt``, ``spikedistill eval``): bf16 autocast on a CUDA device when the recipe's ``precision`` is
    ``bf16``; fp32 elsewhere."""
    return torch.device(device).type == "cuda" and precision == "bf16"


def autocast(device: str | torch.device, precision: str = "bf16"):
    """The autocast context :func:`use_bf16` decides: ``torch.autocast`` in bf16, or nothing (fp32)."""
    device = torch.device(device)
    if use_bf16(device, precision):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def device_name(device: str | torch.device) -> str:
    """What a report says a run ran on: the GPU's name, or the CPU's model and torch's thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform
    from pathlib import Path

    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"CPU ({model}, {torch.get_num_threads()} threads)"
