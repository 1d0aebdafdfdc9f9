"""AutoAugment's CIFAR-10 policies as batched tensor ops (any device), one sub-policy drawn per image.

Two published op tables, named in recipes as ``data.augment.autoaugment``:

- ``fr_cifar10``: the ``CIFAR10Policy`` of the FR code (its AutoAugment table for CIFAR-10): PIL ops
  on uint8 images, grey fill (128, 128, 128), bicubic shears, translations of up to 150/331 of the side
  (fractional, nearest neighbour), rotations counter-clockwise only; the other signed ops draw their
  sign per call.
- ``torchvision_cifar10``: ``torchvision.transforms.AutoAugment(AutoAugmentPolicy.CIFAR10)`` on PIL
  images, as the CKDSNN code runs it: nearest-neighbour geometry with black fill, whole-pixel
  translations, shears about the top-left corner, a random sign for every signed op including rotation.

Every op is written from its PIL definition and works on integer pixel levels 0..255, so a batch gives
the same pixels as the policy run image by image on uint8 images:

- brightness / color / contrast / sharpness blend the image with a degenerate one (black; its grey
  version ``L = (19595 R + 38470 G + 7471 B + 2¹⁵) >> 16``; its rounded mean grey; its 3×3 smoothing
  with kernel ``[1 1 1; 1 5 1; 1 1 1] / 13`` and the border kept) as ``degenerate + f·(image −
  degenerate)`` in single precision, truncated and clipped to 0..255, with ``f = 1 ± magnitude``;
- posterize keeps the top ``bits`` bits; solarize inverts levels ``≥ threshold``; invert is ``255 − x``;
- autocontrast maps each channel's ``[min, max]`` onto ``[0, 255]`` (truncating); equalize maps each
  channel through its cumulative histogram (PIL's step rule);
- translate / shear / rotate resample through PIL's affine convention (output pixel centre
  ``(x + ½, y + ½)`` maps to input ``(a·x + b·y + c, d·x + e·y + f)``), nearest neighbour in PIL's
  16.16 fixed point, or bicubic (PIL's cubic with a = −1 and clamped taps), and fill what falls outside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import torch
from torch import nn

from ..errors import SpikeDistillError, did_you_mean

# One sub-policy: two (op, probability, magnitude bin) entries, applied in order.
SubPolicy = Tuple[Tuple[str, float, int], Tuple[str, float, int]]

FR_CIFAR10_TABLE: Tuple[SubPolicy, ...] = (
    (("invert", 0.1, 7), ("contrast", 0.2, 6)),
    (("rotate", 0.7, 2), ("translate_x", 0.3, 9)),
    (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)),
    (("shear_y", 0.5, 8), ("translate_y", 0.7, 9)),
    (("autocontrast", 0.5, 8), ("equalize", 0.9, 2)),
    (("shear_y", 0.2, 7), ("posterize", 0.3, 7)),
    (("color", 0.4, 3), ("brightness", 0.6, 7)),
    (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
    (("equalize", 0.6, 5), ("equalize", 0.5, 1)),
    (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
    (("color", 0.7, 7), ("translate_x", 0.5, 8)),
    (("equalize", 0.3, 7), ("autocontrast", 0.4, 8)),
    (("translate_y", 0.4, 3), ("sharpness", 0.2, 6)),
    (("brightness", 0.9, 6), ("color", 0.2, 8)),
    (("solarize", 0.5, 2), ("invert", 0.0, 3)),
    (("equalize", 0.2, 0), ("autocontrast", 0.6, 0)),
    (("equalize", 0.2, 8), ("equalize", 0.8, 4)),  # 0.8 in the FR code (0.6 in the AutoAugment paper's table)
    (("color", 0.9, 9), ("equalize", 0.6, 6)),
    (("autocontrast", 0.8, 4), ("solarize", 0.2, 8)),
    (("brightness", 0.1, 3), ("color", 0.7, 0)),
    (("solarize", 0.4, 5), ("autocontrast", 0.9, 3)),
    (("translate_y", 0.9, 9), ("translate_y", 0.7, 9)),
    (("autocontrast", 0.9, 2), ("solarize", 0.8, 3)),
    (("equalize", 0.8, 8), ("invert", 0.1, 3)),
    (("translate_y", 0.7, 9), ("autocontrast", 0.9, 1)),
)

TORCHVISION_CIFAR10_TABLE: Tuple[SubPolicy, ...] = (
    (("invert", 0.1, 0), ("contrast", 0.2, 6)),
    (("rotate", 0.7, 2), ("translate_x", 0.3, 9)),
    (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)),
    (("shear_y", 0.5, 8), ("translate_y", 0.7, 9)),
    (("autocontrast", 0.5, 0), ("equalize", 0.9, 0)),
    (("shear_y", 0.2, 7), ("posterize", 0.3, 7)),
    (("color", 0.4, 3), ("brightness", 0.6, 7)),
    (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
    (("equalize", 0.6, 0), ("equalize", 0.5, 0)),
    (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
    (("color", 0.7, 7), ("translate_x", 0.5, 8)),
    (("equalize", 0.3, 0), ("autocontrast", 0.4, 0)),
    (("translate_y", 0.4, 3), ("sharpness", 0.2, 6)),
    (("brightness", 0.9, 6), ("color", 0.2, 8)),
    (("solarize", 0.5, 2), ("invert", 0.0, 0)),
    (("equalize", 0.2, 0), ("autocontrast", 0.6, 0)),
    (("equalize", 0.2, 0), ("equalize", 0.6, 0)),
    (("color", 0.9, 9), ("equalize", 0.6, 0)),
    (("autocontrast", 0.8, 0), ("solarize", 0.2, 8)),
    (("brightness", 0.1, 3), ("color", 0.7, 0)),
    (("solarize", 0.4, 5), ("autocontrast", 0.9, 0)),
    (("translate_y", 0.9, 9), ("translate_y", 0.7, 9)),
    (("autocontrast", 0.9, 0), ("solarize", 0.2, 3)),
    (("equalize", 0.3, 0), ("invert", 0.1, 0)),
    (("translate_y", 0.7, 9), ("autocontrast", 0.9, 0)),
)

BINS = 10
ENHANCE_OPS = ("brightness", "color", "contrast", "sharpness")


@dataclass(frozen=True)
class Policy:
    """An op table with its magnitude rule: ``fill`` is the grey level of areas moved in from outside,
    ``signed`` the ops whose magnitude takes a random sign, ``whole_pixel_translate`` truncates
    translations to whole pixels (torchvision) instead of keeping the fraction (FR), ``shear_resample``
    is ``"bicubic"`` or ``"nearest"``, ``single_precision_bins`` says the magnitude bins are float32."""

    name: str
    table: Tuple[SubPolicy, ...]
    fill: int
    signed: Tuple[str, ...]
    whole_pixel_translate: bool
    shear_resample: str
    solarize_from: float  # threshold at bin 0 (falls linearly to 0 at the last bin)
    single_precision_bins: bool
    translate_offset: float  # the PIL matrix offset per unit of translate magnitude (FR: +1, torchvision: −1)

    def magnitude(self, op: str, bin: int, size: Tuple[int, int]) -> float:
        """The unsigned magnitude of ``op`` at ``bin`` for images of ``size = (height, width)``."""
        if op in ("shear_x", "shear_y"):
            return self._bin(0.0, 0.3, bin)
        if op in ("translate_x", "translate_y"):
            side = size[1] if op == "translate_x" else size[0]
            if self.whole_pixel_translate:
                return float(int(self._bin(0.0, 150.0 / 331.0 * side, bin)))
            return self._bin(0.0, 150 / 331, bin) * side
        if op == "rotate":
            return self._bin(0.0, 30.0, bin)
        if op in ENHANCE_OPS:
            return self._bin(0.0, 0.9, bin)
        if op == "posterize":
            return float(round(8 - 4 * bin / (BINS - 1)))  # bits: 8, 8, 7, 7, 6, 6, 5, 5, 4, 4
        if op == "solarize":
            return self._bin(self.solarize_from, 0.0, bin)
        return 0.0  # autocontrast, equalize, invert take no magnitude

    def _bin(self, start: float, stop: float, bin: int) -> float:
        """Bin ``bin`` of ``linspace(start, stop, 10)``: in single precision as ``torch.linspace`` (torchvision's
        bins), else in double precision as ``numpy.linspace`` (the FR code's)."""
        if self.single_precision_bins:
            return float(torch.linspace(start, stop, BINS)[bin])
        return stop if bin == BINS - 1 else bin * ((stop - start) / (BINS - 1)) + start


POLICIES: Dict[str, Policy] = {
    "fr_cifar10": Policy("fr_cifar10", FR_CIFAR10_TABLE, fill=128,
                         signed=("shear_x", "shear_y", "translate_x", "translate_y") + ENHANCE_OPS,
                         whole_pixel_translate=False, shear_resample="bicubic", solarize_from=256.0,
                         single_precision_bins=False, translate_offset=1.0),
    "torchvision_cifar10": Policy("torchvision_cifar10", TORCHVISION_CIFAR10_TABLE, fill=0,
                                  signed=("shear_x", "shear_y", "translate_x", "translate_y", "rotate") + ENHANCE_OPS,
                                  whole_pixel_translate=True, shear_resample="nearest", solarize_from=255.0,
                                  single_precision_bins=True, translate_offset=-1.0),
}


def get_policy(name: str) -> Policy:
    """The policy called ``name``, or one line naming the known ones."""
    if name not in POLICIES:
        raise SpikeDistillError(f"unknown AutoAugment policy '{name}';{did_you_mean(name, list(POLICIES))} "
                                f"known: {', '.join(POLICIES)} (or true/false)")
    return POLICIES[name]


# --- pixel ops: x holds integer levels 0..255 as float [N, C, H, W]; per-image arguments are [N] ---------

def _per_image(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def blend(degenerate: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's ``Image.blend(degenerate, x, factor)``: ``degenerate + factor·(x − degenerate)`` in single
    precision, truncated toward zero and clipped to 0..255."""
    alpha = _per_image(factor.to(torch.float32))
    degenerate = degenerate.to(torch.float32)
    mixed = degenerate + alpha * (x.to(torch.float32) - degenerate)
    return mixed.clamp(0, 255).trunc()


def grey(x: torch.Tensor) -> torch.Tensor:
    """PIL's RGB → L conversion ``(19595 R + 38470 G + 7471 B + 2¹⁵) >> 16``, as ``[N, 1, H, W]``."""
    levels = x.to(torch.int64)
    weighted = levels[:, 0:1] * 19595 + levels[:, 1:2] * 38470 + levels[:, 2:3] * 7471 + 0x8000
    return torch.div(weighted, 65536, rounding_mode="floor").to(x.dtype)


def brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(torch.zeros_like(x), x, factor)


def color(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(grey(x).expand_as(x), x, factor)


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = torch.floor(grey(x).to(torch.float64).mean((1, 2, 3)) + 0.5)  # int(mean of L + 0.5)
    return blend(_per_image(mean).to(x.dtype).expand_as(x), x, factor)


def smooth(x: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageFilter.SMOOTH`` (3×3 kernel ``[1 1 1; 1 5 1; 1 1 1] / 13``, rounded, border pixels kept).

    In integers: ``n / 13`` is never within float error of a half, so rounding the exact quotient gives
    PIL's single-precision result, on any device and under any convolution precision setting."""
    levels = x.to(torch.int64)
    height, width = x.shape[-2:]
    total = 4 * levels[..., 1:-1, 1:-1]  # 5 × centre, the centre counted once more in the 3×3 sum below
    for dy in range(3):
        for dx in range(3):
            total = total + levels[..., dy:dy + height - 2, dx:dx + width - 2]
    out = x.clone()
    out[..., 1:-1, 1:-1] = torch.div(2 * total + 13, 26, rounding_mode="floor").to(x.dtype)
    return out


def sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(smooth(x), x, factor)


def invert(x: torch.Tensor) -> torch.Tensor:
    return 255 - x


def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the top ``bits`` bits of every level."""
    mask = (255 - (2 ** (8 - bits.to(torch.int64)) - 1)).view(-1, 1, 1, 1)
    return torch.bitwise_and(x.to(torch.int64), mask).to(x.dtype)


def solarize(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Invert every level ``≥ threshold``."""
    return torch.where(x < _per_image(threshold.to(x.dtype)), x, 255 - x)


def _apply_lut(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """``lut[n, c, level]`` applied to every pixel of image n, channel c."""
    batch, channels = x.shape[:2]
    flat = x.to(torch.int64).reshape(batch, channels, -1)
    return lut.gather(2, flat).reshape(x.shape).to(x.dtype)


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """Map each channel's [min, max] onto [0, 255]: ``int(level·s − min·s)``, ``s = 255 / (max − min)``."""
    batch, channels = x.shape[:2]
    flat = x.reshape(batch, channels, -1).to(torch.float64)
    low, high = flat.amin(2, keepdim=True), flat.amax(2, keepdim=True)
    span = (high - low).clamp(min=1)
    scale = torch.full_like(span, 255.0) / span  # a true division (torch computes ``255.0 / t`` as 255·(1/t))
    levels = torch.arange(256, dtype=torch.float64, device=x.device).view(1, 1, -1)
    lut = (levels * scale + (-low * scale)).trunc().clamp(0, 255)
    lut = torch.where(high > low, lut, levels.expand_as(lut))
    return _apply_lut(x, lut.to(torch.int64))


def equalize(x: torch.Tensor) -> torch.Tensor:
    """PIL's histogram equalisation per channel: ``step = (count − count of the top level present) // 255``,
    ``lut[i] = (step // 2 + count below i) // step``; unchanged when one level or ``step = 0``."""
    batch, channels = x.shape[:2]
    flat = x.to(torch.int64).reshape(batch, channels, -1)
    histogram = torch.zeros(batch, channels, 256, dtype=torch.int64, device=x.device)
    histogram.scatter_add_(2, flat, torch.ones_like(flat))
    present = histogram > 0
    levels = torch.arange(256, device=x.device)
    top = torch.where(present, levels, -1).amax(2, keepdim=True)
    step = (flat.shape[2] - histogram.gather(2, top)) // 255
    below = histogram.cumsum(2) - histogram
    lut = torch.div(step // 2 + below, step.clamp(min=1), rounding_mode="floor").clamp(max=255)
    keep = (present.sum(2, keepdim=True) <= 1) | (step == 0)
    return _apply_lut(x, torch.where(keep, levels.view(1, 1, -1), lut))


# --- geometry: PIL's affine convention, per-image matrices [N, 6] (a, b, c, d, e, f) in float64 ------------

def _pixel_grid(height: int, width: int, device) -> Tuple[torch.Tensor, torch.Tensor]:
    rows = torch.arange(height, dtype=torch.float64, device=device).view(1, -1, 1)
    cols = torch.arange(width, dtype=torch.float64, device=device).view(1, 1, -1)
    return rows, cols


def _gather(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``x[n, :, rows[n, i, j], cols[n, i, j]]`` for in-range integer index tensors ``[N, H, W]``."""
    batch, channels, height, width = x.shape
    index = (rows * width + cols).reshape(batch, 1, -1).expand(batch, channels, -1)
    return x.reshape(batch, channels, -1).gather(2, index).reshape(batch, channels, *rows.shape[1:])


def affine_nearest(x: torch.Tensor, matrix: torch.Tensor, fill: float) -> torch.Tensor:
    """PIL's nearest-neighbour ``Image.transform(AFFINE, matrix)``. Pure scalings/translations (b = d = 0)
    take the input pixel ``floor(a·(x+½) + c)``; other matrices run in PIL's 16.16 fixed point."""
    batch, _, height, width = x.shape
    rows, cols = _pixel_grid(height, width, x.device)
    a, b, c, d, e, f = (matrix[:, i].view(-1, 1, 1) for i in range(6))
    # b = d = 0: the input coordinate in double precision, floored (negative → outside)
    exact_x = torch.floor(a * (cols + 0.5) + c)
    exact_y = torch.floor(e * (rows + 0.5) + f)

    def fix(value):
        return torch.floor(value * 65536.0 + 0.5).to(torch.int64)

    fixed_x = fix(c + a * 0.5 + b * 0.5) + rows.to(torch.int64) * fix(b) + cols.to(torch.int64) * fix(a)
    fixed_y = fix(f + d * 0.5 + e * 0.5) + rows.to(torch.int64) * fix(e) + cols.to(torch.int64) * fix(d)
    scaling = (b == 0) & (d == 0)
    source_x = torch.where(scaling, exact_x.to(torch.int64), torch.div(fixed_x, 65536, rounding_mode="floor"))
    source_y = torch.where(scaling, exact_y.to(torch.int64), torch.div(fixed_y, 65536, rounding_mode="floor"))
    source_x, source_y = source_x.expand(batch, height, width), source_y.expand(batch, height, width)
    inside = (source_x >= 0) & (source_x < width) & (source_y >= 0) & (source_y < height)
    values = _gather(x, source_y.clamp(0, height - 1), source_x.clamp(0, width - 1))
    return torch.where(inside.unsqueeze(1), values, torch.full_like(values, fill))


def _cubic(v1, v2, v3, v4, d):
    """PIL's cubic through four samples at offset ``d`` in [0, 1) from the second (a = −1)."""
    p1 = v2
    p2 = -v1 + v3
    p3 = 2 * (v1 - v2) + v3 - v4
    p4 = -v1 + v2 - v3 + v4
    return p1 + d * (p2 + d * (p3 + d * p4))


def affine_bicubic(x: torch.Tensor, matrix: torch.Tensor, fill: float) -> torch.Tensor:
    """PIL's bicubic ``Image.transform(AFFINE, matrix)``: 4×4 taps clamped at the border, the result
    truncated to 0..255; output pixels whose source point lies outside the image take ``fill``."""
    batch, _, height, width = x.shape
    rows, cols = _pixel_grid(height, width, x.device)
    a, b, c, d, e, f = (matrix[:, i].view(-1, 1, 1) for i in range(6))
    source_x = a * (cols + 0.5) + b * (rows + 0.5) + c
    source_y = d * (cols + 0.5) + e * (rows + 0.5) + f
    inside = (source_x >= 0) & (source_x < width) & (source_y >= 0) & (source_y < height)
    source_x, source_y = source_x - 0.5, source_y - 0.5
    left, top = torch.floor(source_x), torch.floor(source_y)
    dx, dy = source_x - left, source_y - top
    left, top = left.to(torch.int64) - 1, top.to(torch.int64) - 1
    x64 = x.to(torch.float64)
    column_taps = [(left + k).clamp(0, width - 1) for k in range(4)]
    row_values = []
    for k in range(4):
        row = (top + k).clamp(0, height - 1)
        taps = [_gather(x64, row, column) for column in column_taps]
        row_values.append(_cubic(*taps, dx.unsqueeze(1)))
    value = _cubic(*row_values, dy.unsqueeze(1))
    value = value.clamp(0, 255).trunc().to(x.dtype)
    return torch.where(inside.unsqueeze(1), value, torch.full_like(value, fill))


def translate_matrix(pixels: torch.Tensor, axis: str) -> torch.Tensor:
    """Move the content by ``pixels`` (right for x, down for y; negative: left/up)."""
    matrix = _identity(pixels)
    matrix[:, 2 if axis == "x" else 5] = -pixels
    return matrix


def shear_matrix(amount: torch.Tensor, axis: str) -> torch.Tensor:
    """PIL's shear about the top-left corner: ``(1, m, 0, 0, 1, 0)`` along x, ``(1, 0, 0, m, 1, 0)`` along y."""
    matrix = _identity(amount)
    matrix[:, 1 if axis == "x" else 3] = amount
    return matrix


def rotate_matrix(degrees: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """PIL's ``Image.rotate(degrees)`` about the image centre (counter-clockwise for positive degrees)."""
    angle = -torch.deg2rad(torch.remainder(degrees.to(torch.float64), 360.0))
    cos = torch.round(torch.cos(angle) * 1e15) / 1e15
    sin = torch.round(torch.sin(angle) * 1e15) / 1e15
    cx, cy = width / 2.0, height / 2.0
    matrix = _identity(degrees)
    matrix[:, 0], matrix[:, 1], matrix[:, 3], matrix[:, 4] = cos, sin, -sin, cos
    matrix[:, 2] = cos * -cx + sin * -cy + cx
    matrix[:, 5] = -sin * -cx + cos * -cy + cy
    return matrix


def _identity(like: torch.Tensor) -> torch.Tensor:
    matrix = torch.zeros(like.shape[0], 6, dtype=torch.float64, device=like.device)
    matrix[:, 0] = matrix[:, 4] = 1.0
    return matrix


def apply_op(policy: Policy, op: str, x: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``op`` of ``policy`` on levels ``x`` ``[N, C, H, W]`` with one signed magnitude per image ``[N]``."""
    height, width = x.shape[-2:]
    magnitude = magnitude.to(torch.float64)
    if op in ENHANCE_OPS:
        return {"brightness": brightness, "color": color, "contrast": contrast,
                "sharpness": sharpness}[op](x, 1 + magnitude)
    if op == "posterize":
        return posterize(x, magnitude)
    if op == "solarize":
        return solarize(x, magnitude)
    if op in ("invert", "autocontrast", "equalize"):
        return {"invert": invert, "autocontrast": autocontrast, "equalize": equalize}[op](x)
    if op in ("translate_x", "translate_y"):
        return affine_nearest(x, translate_matrix(-policy.translate_offset * magnitude, op[-1]), policy.fill)
    if op in ("shear_x", "shear_y"):
        matrix = shear_matrix(magnitude, op[-1])
        resample = affine_bicubic if policy.shear_resample == "bicubic" else affine_nearest
        return resample(x, matrix, policy.fill)
    if op == "rotate":
        return affine_nearest(x, rotate_matrix(magnitude, height, width), policy.fill)
    raise SpikeDistillError(f"unknown AutoAugment op '{op}'")


class AutoAugment(nn.Module):
    """A published AutoAugment policy on a float batch ``[B, C, H, W]`` of levels / 255, one sub-policy per
    image (uniform over the table), each of its two ops applied with its probability and, for signed ops,
    a random sign. Draws come from torch's global generator on the batch's device."""

    def __init__(self, policy: str = "fr_cifar10") -> None:
        super().__init__()
        self.policy = get_policy(policy)

    def extra_repr(self) -> str:
        return self.policy.name

    def draw(self, batch: int, device=None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per image: the sub-policy index ``[B]``, whether each of its two ops applies ``[B, 2]`` and the
        sign of each (±1, used by signed ops only) ``[B, 2]``."""
        probabilities = torch.tensor([[p for _, p, _ in entry] for entry in self.policy.table], device=device)
        choice = torch.randint(0, len(self.policy.table), (batch,), device=device)
        applies = torch.rand(batch, 2, device=device) < probabilities[choice]
        signs = torch.where(torch.rand(batch, 2, device=device) < 0.5, -1.0, 1.0).to(torch.float64)
        return choice, applies, signs

    def apply(self, images: torch.Tensor, choice: torch.Tensor, applies: torch.Tensor,
              signs: torch.Tensor) -> torch.Tensor:
        """The policy with the given draws (see :meth:`draw`) on float images (levels / 255)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise SpikeDistillError(f"AutoAugment needs RGB images [B, 3, H, W], got {list(images.shape)}; set "
                                    "autoaugment off")
        table, device = self.policy.table, images.device
        x = torch.round(images.float() * 255).clamp(0, 255)  # integer levels, as the policies' PIL ops see them
        size = tuple(images.shape[-2:])
        for stage in range(2):
            ops = [entry[stage] for entry in table]
            magnitude = torch.tensor([self.policy.magnitude(op, b, size) for op, _, b in ops],
                                     dtype=torch.float64, device=device)[choice]
            signed = torch.tensor([op in self.policy.signed for op, _, _ in ops], device=device)[choice]
            magnitude = torch.where(signed, magnitude * signs[:, stage], magnitude)
            for op in sorted({op for op, _, _ in ops}):
                rows = torch.tensor([i for i, entry in enumerate(ops) if entry[0] == op], device=device)
                chosen = (applies[:, stage] & torch.isin(choice, rows)).nonzero().squeeze(1)
                if chosen.numel():
                    x[chosen] = apply_op(self.policy, op, x[chosen], magnitude[chosen]).to(x.dtype)
        return x / 255

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.apply(images, *self.draw(images.shape[0], images.device))
