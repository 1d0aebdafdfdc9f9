"""Batched augmentation on whatever device the batch is on (airbench style), built from kornia ops.

Training pipeline, in the order the FR and CKDSNN codes use: random crop with zero padding (or, for
ImageNet, a random resized crop) → horizontal flip → AutoAugment (a published CIFAR-10 policy,
:mod:`.autoaugment`) → Cutout → normalise → (optional) random erasing. Each step is switchable per
recipe. ``eval()`` mode only normalises.

Randomness comes from torch's global generator (kornia has no per-op generator);
:func:`~spikedistill.data.loader.batches` seeds it per batch inside ``torch.random.fork_rng``, so an
epoch's augmentation is a function of ``(seed, epoch, rank)`` and the caller's RNG stream is untouched.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SpikeDistillError
from .autoaugment import AutoAugment, get_policy

# What ``autoaugment: true`` means: the FR code's CIFAR-10 policy.
DEFAULT_AUTOAUGMENT = "fr_cifar10"


def _kornia_augmentation():
    """``kornia.augmentation``, or one line saying how to get it (it is the ``augment`` extra)."""
    try:
        import kornia.augmentation as K
    except ImportError:
        raise SpikeDistillError("training augmentation (crop, flip, erasing) needs kornia: "
                                "pip install 'spikedistill[augment]', or turn it off with data.augment.crop_padding=0 "
                                "data.augment.flip=false data.augment.erasing=0") from None
    return K


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (0..255) or float (0..1) ``[B, C, H, W]`` → float32 ``(x - mean) / std``."""
    x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
    shape = (1, -1, 1, 1)
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - mean_t) / std_t


def cutout(images: torch.Tensor, length: int) -> torch.Tensor:
    """Zero one ``length x length`` square per image, centred uniformly in the image and clipped at
    the border (DeVries & Taylor's Cutout, as the papers use it).

    Hand-written because kornia's ``RandomErasing`` only places rectangles fully inside the image,
    which changes the distribution of erased area near the borders.
    """
    batch, _, height, width = images.shape
    cy = torch.randint(0, height, (batch, 1, 1), device=images.device)
    cx = torch.randint(0, width, (batch, 1, 1), device=images.device)
    rows = torch.arange(height, device=images.device).view(1, -1, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, -1)
    half = length // 2
    hole = (rows >= cy - half) & (rows < cy + half) & (cols >= cx - half) & (cols < cx + half)
    return images.masked_fill(hole.unsqueeze(1), 0.0)


def resized_crop_boxes(batch: int, height: int, width: int, scale: Tuple[float, float] = (0.08, 1.0),
                       ratio: Tuple[float, float] = (3 / 4, 4 / 3), tries: int = 10, device=None,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``[B, 4]`` boxes ``(top, left, h, w)`` drawn as torchvision's ``RandomResizedCrop.get_params``, batched.

    Per image: up to ``tries`` draws of an area fraction uniform in ``scale`` and an aspect ratio
    log-uniform in ``ratio``; w = round(√(area·r)), h = round(√(area/r)); the first draw that fits is
    placed uniformly. When none fits, the centre crop of the whole image with its ratio clamped to
    ``ratio``. All draws come from ``generator`` (default: torch's global generator on ``device``).
    """
    area = height * width
    target = area * torch.empty(batch, tries, device=device).uniform_(scale[0], scale[1], generator=generator)
    log_ratio = torch.empty(batch, tries, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]),
                                                                  generator=generator)
    aspect = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # the first draw that fits (0 when none does)
    found = fits.any(1)
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    in_ratio = width / height  # torchvision's fallback: the whole image, ratio clamped, centred
    if in_ratio < min(ratio):
        fallback_w, fallback_h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        fallback_w, fallback_h = round(height * max(ratio)), height
    else:
        fallback_w, fallback_h = width, height
    w = torch.where(found, w, float(fallback_w))
    h = torch.where(found, h, float(fallback_h))
    top = torch.floor(torch.rand(batch, device=device, generator=generator) * (height - h + 1))
    left = torch.floor(torch.rand(batch, device=device, generator=generator) * (width - w + 1))
    top = torch.where(found, top, torch.floor((height - h) / 2))
    left = torch.where(found, left, torch.floor((width - w) / 2))
    return torch.stack([top, left, h, w], 1)


def crop_and_resize(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop every image of ``[B, C, H, W]`` to its box ``(top, left, h, w)`` and resize it to ``size × size``
    (bilinear, as ``F.interpolate(crop, size, mode="bilinear", align_corners=False)``), in one ``grid_sample``."""
    batch, _, height, width = images.shape
    top, left, h, w = boxes.to(images.dtype).unbind(1)
    steps = (torch.arange(size, device=images.device, dtype=images.dtype) + 0.5) / size  # output pixel centres
    # Source coordinates in pixels (edges at integers), clamped to the crop's outermost pixel centres so that
    # no pixel outside the box leaks in: the same numbers as slicing the box out, then F.interpolate.
    def source(start, length):
        inside = start[:, None] + steps[None] * length[:, None]
        return torch.minimum(torch.maximum(inside, (start + 0.5)[:, None]), (start + length - 0.5)[:, None])

    ys, xs = source(top, h), source(left, w)
    grid_y = (2 * ys / height - 1)[:, :, None].expand(batch, size, size)
    grid_x = (2 * xs / width - 1)[:, None, :].expand(batch, size, size)
    grid = torch.stack([grid_x, grid_y], -1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_resized_crop(images: torch.Tensor, size: int, scale: Tuple[float, float] = (0.08, 1.0),
                        ratio: Tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """torchvision's ``RandomResizedCrop(size)`` box sampling for a float batch ``[B, C, H, W]`` of
    same-size images, one box per image, resized bilinearly without PIL's antialiasing: the fast ImageNet
    mode that crops stored squares on the device. The crop from each decoded original, as torchvision
    does it, is the ``imagefolder`` option ``train_random_resized_crop``."""
    boxes = resized_crop_boxes(images.shape[0], images.shape[-2], images.shape[-1], scale, ratio, device=images.device)
    return crop_and_resize(images, boxes, size)


def resolve_autoaugment(setting: Union[bool, str, None]) -> Optional[str]:
    """The policy name a recipe's ``autoaugment`` value asks for (``None``: off); ``True`` is
    :data:`DEFAULT_AUTOAUGMENT`."""
    if setting is None or setting is False:
        return None
    if setting is True:
        return DEFAULT_AUTOAUGMENT
    return get_policy(str(setting)).name


class GpuAugment(nn.Module):
    """Batched train-time augmentation + normalisation; ``eval()`` mode normalises only.

    Input: uint8 (0..255) or float (0..1) ``[B, C, H, W]`` on any device. Output: float32, normalised.
    ``mean``/``std`` may be left ``None`` and given per call (``batches`` passes the dataset's).

    Args:
        crop_padding: random crop back to the input size after zero padding by this many pixels (0: off).
        resized_crop: output side of a random resized crop (torchvision's scale 0.08–1, ratio 3/4–4/3;
            0: off), the ImageNet training crop; replaces ``crop_padding``.
        flip: random horizontal flip with p = 0.5.
        autoaugment: a published AutoAugment policy, one sub-policy per image: ``"fr_cifar10"`` (the FR
            code's ``CIFAR10Policy``) or ``"torchvision_cifar10"`` (torchvision's, as the CKDSNN code uses
            it); ``True`` means ``"fr_cifar10"``, ``False`` turns it off (:mod:`.autoaugment`).
        cutout: side of the Cutout square (0: off), applied before normalisation.
        erasing: probability of kornia ``RandomErasing(scale=(0.02, 0.2))`` after normalisation, the
            CKDSNN recipe's Cutout substitute (0: off).
    """

    def __init__(
        self,
        crop_padding: int = 4,
        flip: bool = True,
        autoaugment: Union[bool, str] = False,
        cutout: int = 0,
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
        erasing: float = 0.0,
        resized_crop: int = 0,
    ) -> None:
        super().__init__()
        if resized_crop and crop_padding:
            raise SpikeDistillError(f"augmentation: resized_crop={resized_crop} replaces the padded crop; set "
                                    "crop_padding=0")
        if crop_padding < 0 or cutout < 0 or resized_crop < 0 or not 0.0 <= erasing <= 1.0:
            raise SpikeDistillError(
                f"augmentation: crop_padding and cutout must be >= 0 and erasing in [0, 1], "
                f"got {crop_padding}, {cutout}, {erasing}"
            )
        if (mean is None) != (std is None):
            raise SpikeDistillError("augmentation: give both mean and std, or neither")
        policy = resolve_autoaugment(autoaugment)
        self.crop_padding, self.flip, self.autoaugment = crop_padding, flip, policy or False
        self.cutout_length, self.erasing, self.resized_crop = cutout, erasing, resized_crop
        self.mean = tuple(mean) if mean is not None else None
        self.std = tuple(std) if std is not None else None
        self._geometry: Optional[nn.Module] = None  # built lazily: crop size depends on the input
        self._policy = AutoAugment(policy) if policy else None
        self._eraser: Optional[nn.Module] = None
        if erasing:
            K = _kornia_augmentation()
            self._eraser = K.RandomErasing(scale=(0.02, 0.2), ratio=(0.3, 3.3), value=0.0, p=erasing)

    def extra_repr(self) -> str:
        return (
            f"crop_padding={self.crop_padding}, flip={self.flip}, autoaugment={self.autoaugment}, "
            f"cutout={self.cutout_length}, erasing={self.erasing}, resized_crop={self.resized_crop}, "
            f"mean={self.mean}, std={self.std}"
        )

    def _geometric(self, height: int, width: int) -> Optional[nn.Module]:
        if not (self.crop_padding or self.flip):
            return None
        key = (height, width)
        if self._geometry is None or getattr(self._geometry, "size_key", None) != key:
            K = _kornia_augmentation()
            ops = []
            if self.crop_padding:
                ops.append(K.RandomCrop((height, width), padding=self.crop_padding, fill=0))
            if self.flip:
                ops.append(K.RandomHorizontalFlip(p=0.5))
            self._geometry = nn.Sequential(*ops)
            self._geometry.size_key = key
        return self._geometry

    def forward(
        self,
        images: torch.Tensor,
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
    ) -> torch.Tensor:
        mean = mean if mean is not None else self.mean
        std = std if std is not None else self.std
        if mean is None or std is None:
            raise SpikeDistillError("augmentation has no mean/std: pass them to GpuAugment(...) or to the call")
        if not self.training:
            return normalize(images, mean, std)
        x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float()
        if self.resized_crop:
            x = random_resized_crop(x, self.resized_crop)
        geometric = self._geometric(x.shape[-2], x.shape[-1])
        if geometric is not None:
            x = geometric(x)
        if self._policy is not None:
            x = self._policy(x)
        if self.cutout_length:
            x = cutout(x, self.cutout_length)
        x = normalize(x, mean, std)
        if self._eraser is not None:
            x = self._eraser(x)
        return x
