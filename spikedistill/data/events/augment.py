"""Batched augmentation of event frames ``[B, T, C, H, W]`` — the full-range code's CIFAR10-DVS
recipe (docs/events.md#augmentation-eventaugment).

Per sample: horizontal flip with p = 0.5, then ONE operation drawn uniformly from
  * roll by integer offsets in [−``roll``, ``roll``] on both spatial axes (wrapping around),
  * rotation by an angle uniform in [−``rotate``, ``rotate``] degrees (nearest neighbour, zero fill,
    about the centre, as ``torchvision.transforms.RandomRotation``),
  * Cutout: one ``cutout``×``cutout`` square zeroed, centred uniformly and clipped at the border.
A sample's T frames always get the same transform (the recording moves as one image), which is why
time is folded into channels ``[B, T·C, H, W]`` before every op. Pure torch, so it runs on the device the
batch is on; randomness comes from the global generator (``batches`` seeds it per batch) or from
``generator``.

Same call signature as :class:`~spikedistill.data.GpuAugment` (``augment(frames, mean, std)``) so the
training loop's ``batches(..., augment=...)`` takes either; ``eval()`` mode returns the frames unchanged
(counts are not normalised).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import SpikeDistillError


def _uniform(n: int, low: float, high: float, device, generator) -> torch.Tensor:
    return torch.rand(n, device=device, generator=generator) * (high - low) + low


def flip_frames(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror (left↔right) the samples where ``mask`` [B] is True."""
    return torch.where(mask.view(-1, *([1] * (frames.dim() - 1))), frames.flip(-1), frames)


def roll_frames(frames: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor) -> torch.Tensor:
    """Roll each sample by its own integer ``(shift_y, shift_x)`` [B] (``torch.roll`` semantics)."""
    height, width = frames.shape[-2:]
    rows = (torch.arange(height, device=frames.device).view(1, -1) - shift_y.view(-1, 1)) % height  # [B, H]
    cols = (torch.arange(width, device=frames.device).view(1, -1) - shift_x.view(-1, 1)) % width    # [B, W]
    flat = frames.flatten(1, -3)  # [B, T·C, H, W]
    flat = flat.gather(2, rows.view(-1, 1, height, 1).expand(-1, flat.shape[1], height, width))
    flat = flat.gather(3, cols.view(-1, 1, 1, width).expand(-1, flat.shape[1], height, width))
    return flat.view(frames.shape)


def rotate_frames(frames: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each sample about its centre by its own angle [B] (nearest neighbour, zeros outside)."""
    radians = degrees.to(torch.float32) * (math.pi / 180.0)
    cos, sin, zero = torch.cos(radians), torch.sin(radians), torch.zeros_like(radians)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)  # [B, 2, 3]
    flat = frames.flatten(1, -3).float()
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out.to(frames.dtype).view(frames.shape)


def cutout_frames(frames: torch.Tensor, length: int, center_y: torch.Tensor, center_x: torch.Tensor) -> torch.Tensor:
    """Zero a ``length``-square around each sample's centre (clipped at the border), in every frame."""
    height, width = frames.shape[-2:]
    half = length // 2
    rows = torch.arange(height, device=frames.device).view(1, -1, 1)
    cols = torch.arange(width, device=frames.device).view(1, 1, -1)
    cy, cx = center_y.view(-1, 1, 1), center_x.view(-1, 1, 1)
    hole = (rows >= cy - half) & (rows < cy + half) & (cols >= cx - half) & (cols < cx + half)  # [B, H, W]
    return frames.masked_fill(hole.view(hole.shape[0], *([1] * (frames.dim() - 3)), height, width), 0)


class EventAugment(nn.Module):
    """Flip, then one of roll / rotate / Cutout per sample (the FR CIFAR10-DVS recipe). Zero disables an op."""

    mean = std = None  # event counts are not normalised; `batches` reads these like GpuAugment's

    def __init__(self, flip: bool = True, roll: int = 5, rotate: float = 30.0, cutout: int = 16):
        super().__init__()
        if roll < 0 or rotate < 0 or cutout < 0:
            raise SpikeDistillError(f"event augmentation: roll, rotate and cutout must be >= 0, got {roll}, {rotate}, "
                                    f"{cutout}")
        self.flip, self.roll, self.rotate, self.cutout = bool(flip), int(roll), float(rotate), int(cutout)

    def extra_repr(self) -> str:
        return f"flip={self.flip}, roll={self.roll}, rotate={self.rotate}, cutout={self.cutout}"

    def forward(self, frames: torch.Tensor, mean=None, std=None,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if frames.dim() != 5:
            raise SpikeDistillError(f"event augmentation takes frames [B, T, C, H, W], got shape {tuple(frames.shape)}")
        frames = frames.float()
        if not self.training:
            return frames
        batch, device = frames.shape[0], frames.device
        height, width = frames.shape[-2:]
        if self.flip:
            frames = flip_frames(frames, torch.rand(batch, device=device, generator=generator) < 0.5)
        ops = [op for op, on in (("roll", self.roll), ("rotate", self.rotate), ("cutout", self.cutout)) if on]
        if not ops:
            return frames
        choice = torch.randint(0, len(ops), (batch,), device=device, generator=generator)
        # Draw every op's parameters for every sample (fixed RNG consumption), apply each to its samples.
        shifts = torch.randint(-self.roll, self.roll + 1, (2, batch), device=device, generator=generator)
        angles = _uniform(batch, -self.rotate, self.rotate, device, generator)
        centre_y = torch.randint(0, height, (batch,), device=device, generator=generator)
        centre_x = torch.randint(0, width, (batch,), device=device, generator=generator)
        out = frames.clone()
        for number, op in enumerate(ops):
            chosen = (choice == number).nonzero().squeeze(1)
            if chosen.numel() == 0:
                continue
            part = frames[chosen]
            if op == "roll":
                part = roll_frames(part, shifts[0, chosen], shifts[1, chosen])
            elif op == "rotate":
                part = rotate_frames(part, angles[chosen])
            else:
                part = cutout_frames(part, self.cutout, centre_y[chosen], centre_x[chosen])
            out[chosen] = part
        return out
