"""The dataset type every loader returns, the dataset registry, and where data lives on disk.

A dataset is a pair of tensors: ``images`` uint8 ``[N, C, H, W]`` and ``labels`` int64 ``[N]``, plus
the per-channel ``mean``/``std`` (0..1 units) that normalise it. Small datasets stay that way from disk
to the GPU (see :mod:`spikedistill.data.loader`); large ones are a :class:`StreamingDataset` that a
DataLoader decodes in worker processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import DataNotFoundError, SpikeDistillError, did_you_mean
from ..registry import Registry

# load_dataset fills in root, split and download; a loader's other keywords are its options.
DATASETS: Registry[Callable[..., "ArrayDataset"]] = Registry("dataset", given=("root", "split", "download"),
                                                            recipe_key="data.options")

Stats = Tuple[float, ...]


def default_data_root() -> Path:
    """``$SPIKEDISTILL_DATA``, else ``data/`` in the current directory (where ``download=True`` puts it)."""
    env = os.environ.get("SPIKEDISTILL_DATA")
    if env:
        return Path(env).expanduser()
    return Path("data")


def default_cache_dir() -> Path:
    """``$SPIKEDISTILL_CACHE``, else ``$XDG_CACHE_HOME/spikedistill`` (``~/.cache/spikedistill``)."""
    env = os.environ.get("SPIKEDISTILL_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "spikedistill"


def channel_stats(images: torch.Tensor) -> Tuple[Stats, Stats]:
    """Per-channel mean and std of uint8 ``[N, C, H, W]`` images, in 0..1 units (float64 sums)."""
    flat = images.transpose(0, 1).reshape(images.shape[1], -1).to(torch.float64) / 255.0
    return tuple(flat.mean(1).tolist()), tuple(flat.std(1).tolist())


@dataclass(eq=False, repr=False)
class ArrayDataset:
    """Images and labels held in memory as tensors.

    ``images`` is uint8 ``[N, C, H, W]``; ``labels`` int64 ``[N]``; ``mean``/``std`` are per channel in
    0..1 units (normalisation is ``(x / 255 - mean) / std``).
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: Stats
    std: Stats
    name: str
    classes: Optional[Sequence[str]] = None
    # One copy of images/labels per device, filled by `on_device` (the move happens once).
    _device_cache: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise SpikeDistillError(
                f"dataset '{self.name}': images must be uint8 [N, C, H, W], got {self.images.dtype} "
                f"{list(self.images.shape)}"
            )
        self.labels = self.labels.to(torch.int64)
        if self.labels.shape != (self.images.shape[0],):
            raise SpikeDistillError(
                f"dataset '{self.name}': {self.images.shape[0]} images but labels of shape "
                f"{list(self.labels.shape)}"
            )
        channels = self.images.shape[1]
        self.mean, self.std = tuple(map(float, self.mean)), tuple(map(float, self.std))
        if len(self.mean) != channels or len(self.std) != channels:
            raise SpikeDistillError(
                f"dataset '{self.name}': {channels} channels but mean/std of length "
                f"{len(self.mean)}/{len(self.std)}"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        return (
            f"ArrayDataset(name={self.name!r}, {len(self)} images of {list(self.image_shape)}, "
            f"{self.num_classes} classes)"
        )

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """``(C, H, W)`` of every image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, n_or_indices: Union[int, Sequence[int], torch.Tensor, np.ndarray]) -> "ArrayDataset":
        """The first ``n`` samples, or the samples at ``indices``; same classes and normalisation."""
        if isinstance(n_or_indices, (int, np.integer)):
            index: Union[slice, torch.Tensor] = slice(0, int(n_or_indices))
        else:
            index = as_indices(n_or_indices)
        return replace(
            self, images=self.images[index], labels=self.labels[index], _device_cache={}
        )

    def on_device(self, device: Union[str, torch.device]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)`` resident on ``device``; moved once, then cached (airbench style)."""
        key = str(_canonical_device(device))
        if key not in self._device_cache:
            target = torch.device(key)
            self._device_cache[key] = (
                self.images.to(target, non_blocking=True),
                self.labels.to(target, non_blocking=True),
            )
        return self._device_cache[key]


def with_normalisation(dataset, mean: Optional[Sequence[float]], std: Optional[Sequence[float]]):
    """``dataset`` normalised with ``mean``/``std`` (0..1 units, one per channel) instead of its own: a
    shallow copy sharing the images; unchanged when both are ``None`` (a recipe's ``data.mean``/``data.std``)."""
    if mean is None and std is None:
        return dataset
    channels = len(dataset.mean)
    if mean is None or std is None or len(mean) != channels or len(std) != channels:
        raise SpikeDistillError(f"data.mean/data.std need one value per channel of '{dataset.name}' ({channels}), got "
                                f"{list(mean or [])} and {list(std or [])}; fix them or drop both to use the dataset's")
    import copy

    renormalised = copy.copy(dataset)
    renormalised.mean, renormalised.std = tuple(map(float, mean)), tuple(map(float, std))
    return renormalised


def stratified_indices(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of ``n`` samples with every class in its share of the split, in stored order, whatever that
    order is (a split stored grouped by class gives the same mix as a shuffled one). Deterministic: the
    i-th of a class's c samples is ranked at (i + ½) / c, and the n lowest ranks are kept."""
    labels = torch.as_tensor(labels).cpu()
    n = min(int(n), len(labels))
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    order = torch.argsort(inverse, stable=True)  # grouped by class, stored order within each class
    position = torch.empty_like(order)
    starts = torch.cumsum(counts, 0) - counts
    position[order] = torch.arange(len(labels)) - starts.repeat_interleave(counts)
    rank = (position.double() + 0.5) / counts[inverse].double()
    chosen = torch.argsort(rank, stable=True)[:n]
    return chosen.sort().values


def as_indices(selection: Union[Sequence[int], torch.Tensor, np.ndarray]) -> torch.Tensor:
    """int64 indices from a list, array or tensor of indices, or from a boolean mask."""
    array = np.asarray(selection.cpu() if isinstance(selection, torch.Tensor) else selection)
    if array.dtype == np.bool_:
        array = np.flatnonzero(array)
    return torch.from_numpy(array.astype(np.int64).reshape(-1))


def _canonical_device(device: Union[str, torch.device]) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


class StreamingDataset(torch.utils.data.Dataset):
    """A dataset too large for memory: items are decoded on demand (in DataLoader workers).

    ``dataset[i]`` is ``(uint8 tensor [C, H, W], label)``. It carries the same metadata as
    :class:`ArrayDataset` (``labels``, ``num_classes``, ``mean``, ``std``, ``name``), so
    :func:`~spikedistill.data.loader.batches` treats both alike and augments after the transfer.
    """

    def __init__(
        self,
        read: Callable[[int], torch.Tensor],
        labels: torch.Tensor,
        num_classes: int,
        mean: Stats,
        std: Stats,
        name: str,
        classes: Optional[Sequence[str]] = None,
        num_workers: int = 4,
    ) -> None:
        self.read = read
        self.labels = labels.to(torch.int64)
        self.num_classes = num_classes
        self.mean, self.std = tuple(map(float, mean)), tuple(map(float, std))
        self.name = name
        self.classes = classes
        self.num_workers = num_workers

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, key: Union[int, Tuple[int, int]]) -> Tuple[torch.Tensor, int]:
        """``dataset[i]``, or ``dataset[(i, draw_seed)]`` for a reader that draws random numbers (a crop
        taken while decoding): the draws then depend on ``draw_seed`` only, in whatever worker reads it."""
        index, draw_seed = key if isinstance(key, tuple) else (key, 0)
        image = self.read(int(index), int(draw_seed)) if self.draws else self.read(int(index))
        return image, int(self.labels[index])

    @property
    def draws(self) -> bool:
        """Whether reading an item draws random numbers (see ``__getitem__``)."""
        return bool(getattr(self.read, "draws", False))

    def __repr__(self) -> str:
        return f"StreamingDataset(name={self.name!r}, {len(self)} images, {self.num_classes} classes)"

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """``(C, H, W)`` of the first image (all images share it once decoded)."""
        return tuple(self.read(0).shape)  # type: ignore[return-value]

    def subset(self, n_or_indices: Union[int, Sequence[int], torch.Tensor, np.ndarray]) -> "StreamingDataset":
        if isinstance(n_or_indices, (int, np.integer)):
            indices = torch.arange(min(int(n_or_indices), len(self)))
        else:
            indices = as_indices(n_or_indices)
        read = self.read
        return StreamingDataset(
            _IndexedReader(read, indices), self.labels[indices], self.num_classes, self.mean, self.std,
            self.name, self.classes, self.num_workers,
        )


class _IndexedReader:
    """Picklable ``i -> read(indices[i])`` (DataLoader workers need to pickle the reader)."""

    def __init__(self, read: Callable[..., torch.Tensor], indices: torch.Tensor) -> None:
        self.read, self.indices = read, indices
        self.draws = bool(getattr(read, "draws", False))

    def __call__(self, index: int, *draw_seed: int) -> torch.Tensor:
        return self.read(int(self.indices[index]), *draw_seed)


def load_dataset(
    name: str,
    root: Union[str, Path, None] = None,
    split: str = "train",
    download: bool = False,
    **options,
) -> Union[ArrayDataset, "StreamingDataset"]:
    """Load a registered dataset (``DATASETS.names()``) by name.

    ``root`` defaults to :func:`default_data_root`; ``split`` is ``"train"`` or ``"test"``; ``download``
    fetches the files when the dataset supports it (only then). Other ``options`` go to the loader.
    Returns an :class:`ArrayDataset`, or a :class:`StreamingDataset` for ``imagefolder`` with
    ``stream=True``.
    """
    _import_plugins()
    DATASETS.get(name)  # an unknown name first, before the split
    if split not in ("train", "test"):
        raise SpikeDistillError(f"unknown split '{split}' for dataset "
                                f"'{name}';{did_you_mean(split, ['train', 'test'])} use 'train' or 'test'")
    root = Path(root).expanduser() if root is not None else None
    return DATASETS.build(name, given={"root": root, "split": split, "download": download}, **options)


def _import_plugins() -> None:
    """Import dataset modules owned by other rooms (event data), so their names are registered."""
    import importlib
    import importlib.util

    for module in ("spikedistill.data.events",):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def _damaged_npz_errors() -> tuple:
    import zipfile
    import zlib

    return (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)


# What numpy raises reading a truncated or damaged .npz (the zip directory or a member is cut short).
DAMAGED_NPZ = _damaged_npz_errors()


def require_dir(path: Path, what: str, holds: str = "", downloadable: bool = False) -> Path:
    """``path`` if it is a directory, else a :class:`DataNotFoundError` naming it; ``holds``: what the
    data's place (the ``root`` option) must hold."""
    if not path.is_dir():
        raise DataNotFoundError(f"{what} not found at {path}", path, holds=holds, downloadable=downloadable)
    return path
