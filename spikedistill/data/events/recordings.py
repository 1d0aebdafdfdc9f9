"""Many event recordings in one flat layout, and their frames cached on disk.

:class:`EventRecordings` holds ``x, y, t, p`` of every recording concatenated, with ``offsets`` (recording
i is ``[offsets[i]:offsets[i+1]]``) and one label each — the layout of ``nmnist_small/*.npz``, which is
also how raw datasets are cached after their first (slow) read. :meth:`EventRecordings.frames` bins them
into ``[N, T, 2, H, W]`` and caches the result as ``.npy`` keyed by a hash of the events and every
binning parameter, so a changed T, split, size or event set never reads a stale file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...errors import SpikeDistillError
from .frames import bin_events, check_size, check_split_by, check_timesteps

CACHE_FORMAT = 1  # bump when the binning rules change, so old cached frames are not reused


@dataclass
class EventRecordings:
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    p: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    sensor_size: tuple[int, int]  # (H, W)
    name: str
    classes: Optional[Sequence[str]] = None
    _fingerprint: Optional[str] = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        n_events = len(self.x)
        where = f"event dataset '{self.name}'"
        if not (len(self.y) == len(self.t) == len(self.p) == n_events):
            raise SpikeDistillError(f"{where}: x, y, t, p have different lengths; the cache or npz file is damaged")
        if (self.offsets.ndim != 1 or len(self.offsets) != len(self.labels) + 1 or self.offsets[0] != 0
                or self.offsets[-1] != n_events or np.any(np.diff(self.offsets) < 0)):
            raise SpikeDistillError(
                f"{where}: offsets must rise from 0 to {n_events} with one entry per recording plus one; "
                "the npz file is damaged")
        height, width = self.sensor_size
        if n_events and (int(self.x.max()) >= width or int(self.y.max()) >= height or int(self.p.max()) > 1):
            raise SpikeDistillError(
                f"{where}: events fall outside the {width}×{height}×2 sensor (max x={int(self.x.max())}, "
                f"y={int(self.y.max())}, p={int(self.p.max())}); the files are damaged or of another dataset")
        if len(self.labels) and self.labels.min() < 0:
            raise SpikeDistillError(f"{where}: labels must be >= 0")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes is not None else int(self.labels.max()) + 1 if len(self) else 0

    def events(self, index: int) -> np.ndarray:
        """Recording ``index`` as a structured array ``(x, y, t, p)``."""
        from .readers import make_events

        lo, hi = self.offsets[index], self.offsets[index + 1]
        return make_events(self.x[lo:hi], self.y[lo:hi], self.t[lo:hi], self.p[lo:hi])

    @classmethod
    def from_list(cls, items: Sequence[tuple[np.ndarray, int]], sensor_size, name: str,
                  classes=None) -> "EventRecordings":
        """From ``[(events, label), ...]`` (structured arrays as the readers return)."""
        lengths = [len(events) for events, _ in items]
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        def column(key, dtype):
            parts = [np.asarray(events[key], dtype=dtype) for events, _ in items]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
        return cls(column("x", np.uint16), column("y", np.uint16), column("t", np.int64), column("p", np.uint8),
                   offsets, np.array([label for _, label in items], dtype=np.int64), tuple(sensor_size), name, classes)

    def subset(self, indices) -> "EventRecordings":
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        starts, ends = self.offsets[indices], self.offsets[indices + 1]
        lengths = ends - starts
        gather = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return EventRecordings(self.x[gather], self.y[gather], self.t[gather], self.p[gather], offsets,
                               self.labels[indices], self.sensor_size, self.name, self.classes)

    def fingerprint(self) -> str:
        """sha1 of the events, offsets, labels and sensor size (the key of cached frames)."""
        if self._fingerprint is None:
            digest = hashlib.sha1(repr((tuple(self.sensor_size), CACHE_FORMAT)).encode())
            for array in (self.x, self.y, self.t, self.p, self.offsets, self.labels):
                digest.update(np.ascontiguousarray(array).view(np.uint8).data)
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # --- on disk: the nmnist_small npz layout ----------------------------------------------------
    def save(self, path: Path) -> None:
        arrays = dict(x=self.x, y=self.y, t=self.t, p=self.p, offsets=self.offsets, label=self.labels,
                      sensor_size=np.array(self.sensor_size))
        _atomic_write(Path(path), lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: Path, name: str, sensor_size=None, classes=None) -> "EventRecordings":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = {"x", "y", "t", "p", "offsets", "label"} - set(npz.files)
                if missing:
                    raise SpikeDistillError(f"event file {path} lacks arrays {sorted(missing)}; it is not an event npz")
                size = tuple(int(v) for v in npz["sensor_size"]) if "sensor_size" in npz.files else sensor_size
                if size is None:
                    raise SpikeDistillError(f"event file {path} has no sensor_size; pass sensor_size")
                return cls(npz["x"], npz["y"], npz["t"], npz["p"], npz["offsets"], npz["label"], size, name, classes)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            if isinstance(exc, SpikeDistillError):
                raise
            raise SpikeDistillError(f"cannot read event file {path} ({type(exc).__name__}); delete or re-create "
                                    "it") from None

    # --- frames ----------------------------------------------------------------------------------
    def frames(self, timesteps: int, split_by: str = "count", size: Optional[int] = None,
               cache_dir: Optional[Path] = None) -> np.ndarray:
        """``[N, T, 2, H, W]`` float32 frames, read from / written to ``cache_dir`` when given."""
        timesteps, split_by, size = check_timesteps(timesteps), check_split_by(split_by), check_size(size)
        path = None
        if cache_dir is not None:
            tag = f"{self.name}-T{timesteps}-{split_by}-{size or 'native'}-{self.fingerprint()[:16]}.npy"
            path = Path(cache_dir) / tag
            if path.is_file():
                try:
                    cached = np.load(path, allow_pickle=False)
                    if cached.shape[:2] == (len(self), timesteps):
                        return cached
                except (OSError, ValueError, EOFError):
                    pass  # a damaged cache file is rebuilt below
        frames = bin_events(self.x, self.y, self.t, self.p, self.offsets, timesteps, self.sensor_size, split_by, size)
        if path is not None:
            _atomic_write(path, lambda f: np.save(f, frames))
        return frames


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
