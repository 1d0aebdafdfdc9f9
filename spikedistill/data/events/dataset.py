"""``EventDataset``: frames of event recordings in the shape of an in-memory dataset, and what the event
dataset files (``nmnist.py``, ``cifar10dvs.py``, ``dvsgesture.py``) share.

``load_dataset("nmnist", root, split, timesteps=10)`` returns an :class:`EventDataset`: frames
``[N, T, 2, H, W]`` float32 (per-polarity event counts, no normalisation, as the full-range code; docs/events.md) that
:func:`spikedistill.data.batches` serves batch-first ``[B, T, 2, H, W]`` like any in-memory dataset, plus
the recordings themselves so the same data can be re-binned to any number of frames (the ``"rebin"``
any-T policy, :mod:`.fullrange`).

``root`` defaults to ``$SPIKEDISTILL_DATA/<folder>`` (``nmnist_small``, ``cifar10dvs``, ``DvsGesture``), with
``$SPIKEDISTILL_DATA`` defaulting to ``data/`` in the current directory. Raw datasets are read once and
their events cached as npz (``cache_dir``, default ``$SPIKEDISTILL_CACHE/events``); frames are cached there
too, keyed by every parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ...errors import DataNotFoundError, SpikeDistillError
from ..dataset import default_cache_dir, default_data_root
from .frames import check_size, check_split_by, check_timesteps
from .recordings import EventRecordings

EVENT_DATASETS = ("nmnist", "cifar10dvs", "dvsgesture")


@dataclass
class EventDataset:
    """Frames of event recordings, in the shape of :class:`~spikedistill.data.ArrayDataset`.

    ``images`` is float32 ``[N, T, 2, H, W]`` (time inside each sample; :func:`~spikedistill.data.batches`
    yields ``[B, T, 2, H, W]`` and the model takes ``frames.transpose(0, 1)``). ``mean``/``std`` are
    0/1: event counts are not normalised.
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    name: str
    recordings: EventRecordings
    split_by: str = "count"
    size: Optional[int] = None
    cache_dir: Optional[Path] = None
    classes: Optional[Sequence[str]] = None
    mean: Tuple[float, ...] = (0.0, 0.0)
    std: Tuple[float, ...] = (1.0, 1.0)
    _device_cache: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def timesteps(self) -> int:
        return self.images.shape[1]

    @property
    def in_channels(self) -> int:
        return self.images.shape[2]

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        return tuple(self.images.shape[2:])  # type: ignore[return-value]

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def subset(self, n_or_indices: Union[int, Sequence[int], np.ndarray, torch.Tensor]) -> "EventDataset":
        if isinstance(n_or_indices, (int, np.integer)):
            indices = np.arange(min(int(n_or_indices), len(self)))
        else:
            indices = np.asarray(torch.as_tensor(np.asarray(n_or_indices)).long())
        index = torch.from_numpy(indices)
        return replace(self, images=self.images[index], labels=self.labels[index],
                       recordings=self.recordings.subset(indices), _device_cache={})

    def on_device(self, device) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(frames, labels)`` on ``device``, moved once and kept (GPU-resident data)."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        key = str(device)
        if key not in self._device_cache:
            self._device_cache[key] = (self.images.to(device, non_blocking=True),
                                       self.labels.to(device, non_blocking=True))
        return self._device_cache[key]

    def rebinned(self, timesteps: int) -> "EventDataset":
        """The same recordings cut into ``timesteps`` frames (same ``split_by``/``size``; cached)."""
        if timesteps == self.timesteps:
            return self
        frames = self.recordings.frames(timesteps, self.split_by, self.size, self.cache_dir)
        return replace(self, images=torch.from_numpy(frames), _device_cache={})


def make_event_dataset(recordings: EventRecordings, timesteps: int, split_by: str = "count", size: Optional[int] = None,
                       cache_dir: Optional[Path] = None) -> EventDataset:
    frames = recordings.frames(timesteps, split_by, size, cache_dir)
    return EventDataset(torch.from_numpy(frames), torch.from_numpy(recordings.labels), recordings.num_classes,
                        recordings.name, recordings, split_by, size, cache_dir, recordings.classes)


# --- what the three dataset files share ---------------------------------------------------------

def dataset_root(root: Optional[Path], folder: str, what: str, **advice) -> Path:
    """``root`` (default ``$SPIKEDISTILL_DATA/folder``) if it is a directory, else a :class:`DataNotFoundError`
    (``advice``: its ``holds`` and ``get``)."""
    path = Path(root).expanduser() if root is not None else default_data_root() / folder
    if not path.is_dir():
        raise DataNotFoundError(f"{what} not found at {path}", path, **advice)
    return path


def cache_folder(cache_dir) -> Optional[Path]:
    """``None``/``True`` → the default cache folder; ``False`` → no caching; else that folder."""
    if cache_dir is False:
        return None
    return default_cache_dir() / "events" if cache_dir in (None, True) else Path(cache_dir).expanduser()


def refuse_download(name: str, download: bool, **advice) -> None:
    """Event datasets are not downloaded: where to get them instead (``advice``: ``holds`` and ``get``)."""
    if download:
        raise DataNotFoundError(f"dataset '{name}' cannot be downloaded by spikedistill", **advice)


def check_frame_options(timesteps, split_by, size):
    return check_timesteps(timesteps), check_split_by(split_by), check_size(size)


def cached_recordings(cache: Optional[Path], key: str, build, name: str, classes) -> EventRecordings:
    """Read the raw files once (``build()``), then reuse their events from ``cache/key.npz``."""
    path = cache / f"{key}.npz" if cache is not None else None
    if path is not None and path.is_file():
        try:
            return EventRecordings.load(path, name, classes=classes)
        except SpikeDistillError:
            pass  # damaged cache: rebuild
    recordings = build()
    if path is not None:
        recordings.save(path)
    return recordings


def listing_key(name: str, files: Sequence[Path]) -> str:
    """Cache key of a raw dataset: its file names, sizes and modification times."""
    import hashlib

    digest = hashlib.sha1()
    for f in files:
        stat = f.stat()
        digest.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return f"{name}-events-{digest.hexdigest()[:16]}"


def trailing_number(path: Path) -> int:
    match = re.search(r"(\d+)$", path.stem)
    if match is None:
        raise SpikeDistillError(f"cannot read the recording number from '{path.name}'; expected names like "
                                "cifar10_cat_17.aedat")
    return int(match.group(1))


def load_event_dataset(name: str, root: Optional[Path] = None, split: str = "train", timesteps: int = 10,
                       **options) -> EventDataset:
    """``load_dataset`` for the event datasets, with ``timesteps`` up front."""
    from ..dataset import load_dataset

    if name not in EVENT_DATASETS:
        from ...errors import unknown_name

        raise unknown_name("event dataset", name, EVENT_DATASETS)
    return load_dataset(name, root, split=split, timesteps=timesteps, **options)
