"""A user's own data for ``sd.fit``: any torch ``Dataset`` or iterable of ``(x, y)``, gathered once into tensors.

Samples are taken as they are — already transformed and normalised floats, images ``[C, H, W]`` or
frames ``[T, C, H, W]`` (tonic's ``ToFrame`` output converted with ``.float()``) — and held in memory, so
:func:`~spikedistill.data.loader.batches` draws the same deterministic, resumable order from them as
from a registered dataset. An iterable may also yield whole batches ``(x [B, ...], y [B])`` (a DataLoader).
"""

from __future__ import annotations

from typing import Dict, Tuple, Union

import torch

from ..errors import SpikeDistillError

IN_MEMORY = "in-memory"  # the data.name of a run whose data came from Python (sd.fit)


class TensorData:
    """Float inputs ``[N, C, H, W]`` (or frames ``[N, T, C, H, W]``) and int64 labels ``[N]``, used as they
    are: normalisation is the identity (``mean`` 0, ``std`` 1)."""

    mean = (0.0,)
    std = (1.0,)

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int, name: str = IN_MEMORY):
        self.images, self.labels, self.num_classes, self.name = images, labels, num_classes, name
        self._device_cache: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __repr__(self) -> str:
        return f"TensorData({len(self)} samples of {list(self.images.shape[1:])}, {self.num_classes} classes)"

    @property
    def frames(self) -> bool:
        return self.images.dim() == 5

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """``(C, H, W)`` of one image (of one frame)."""
        return tuple(self.images.shape[-3:])  # type: ignore[return-value]

    def subset(self, n: int) -> "TensorData":
        return TensorData(self.images[:n], self.labels[:n], self.num_classes, self.name)

    def on_device(self, device: Union[str, torch.device]) -> Tuple[torch.Tensor, torch.Tensor]:
        key = str(torch.device(device))
        if key not in self._device_cache:
            self._device_cache[key] = (self.images.to(device), self.labels.to(device))
        return self._device_cache[key]


def gather(data, what: str = "train_data") -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, labels)`` tensors from a ``TensorDataset``, a map-style ``Dataset`` or an iterable of
    samples or batches; one line naming ``what`` for anything else."""
    if isinstance(data, torch.utils.data.TensorDataset) and len(data.tensors) >= 2:
        inputs, labels = data.tensors[0], data.tensors[1]
    else:
        if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (list, tuple)):
            items = (data[i] for i in range(len(data)))
        elif hasattr(data, "__iter__"):
            items = iter(data)
        else:
            raise SpikeDistillError(f"{what} must be a torch Dataset or an iterable of (x, y), got "
                                    f"{type(data).__name__}")
        xs, ys = [], []
        for item in items:
            if not isinstance(item, (tuple, list)) or len(item) < 2:
                raise SpikeDistillError(f"{what} must yield (x, y) pairs, got {type(item).__name__}; wrap it, "
                                        "e.g. [(x, y) for x, y, *_ in data]")
            x, y = torch.as_tensor(item[0]), torch.as_tensor(item[1])
            batched = y.dim() == 1  # a DataLoader's (x [B, ...], y [B])
            xs.append(x if batched else x.unsqueeze(0))
            ys.append(y if batched else y.reshape(1))
        if not xs:
            raise SpikeDistillError(f"{what} holds no samples")
        try:
            inputs, labels = torch.cat(xs), torch.cat(ys)
        except RuntimeError:
            shapes = sorted({tuple(x.shape[1:]) for x in xs})
            raise SpikeDistillError(f"{what}: samples differ in shape ({shapes[:3]}); resize or pad them to one "
                                    "shape") from None
    return check_samples(inputs, labels, what)


def check_samples(inputs: torch.Tensor, labels: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not inputs.is_floating_point():
        raise SpikeDistillError(f"{what}: inputs are {inputs.dtype}; pass floats as the model takes them: images "
                                "x.float() / 255 then normalised, event frames (counts) x.float()")
    if inputs.dim() not in (4, 5):
        raise SpikeDistillError(f"{what}: a sample must be an image [C, H, W] or frames [T, C, H, W], got "
                                f"{list(inputs.shape[1:])}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool or labels.dim() != 1:
        raise SpikeDistillError(f"{what}: labels must be one integer class index per sample, got {labels.dtype} "
                                f"{list(labels.shape)}; pass y.long()")
    if labels.shape[0] != inputs.shape[0]:
        raise SpikeDistillError(f"{what}: {inputs.shape[0]} inputs but {labels.shape[0]} labels")
    if labels.numel() and int(labels.min()) < 0:
        raise SpikeDistillError(f"{what}: labels must be class indices 0..K-1, found {int(labels.min())}")
    return inputs.float() if inputs.dtype != torch.float32 else inputs, labels.long()
