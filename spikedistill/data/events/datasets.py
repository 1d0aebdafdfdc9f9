"""Event datasets as frames: N-MNIST, CIFAR10-DVS, DVS-Gesture, registered in ``DATASETS``.

``load_dataset("nmnist", root, split, timesteps=10)`` returns an :class:`EventDataset`: frames
``[N, T, 2, H, W]`` float32 (per-polarity event counts, no normalisation, as the full-range code; docs/events.md) that
:func:`spikedistill.data.batches` serves batch-first ``[B, T, 2, H, W]`` like any in-memory dataset, plus
the recordings themselves so the same data can be re-binned to any number of frames (the ``"rebin"``
any-T policy, :mod:`.fullrange`).

Layouts on disk (``root``; defaults ``$SPIKEDISTILL_DATA/nmnist_small``, ``.../cifar10dvs``,
``.../DvsGesture``, with ``$SPIKEDISTILL_DATA`` defaulting to ``data/`` in the current directory):

* ``nmnist``: ``train.npz`` / ``test.npz`` in the ``nmnist_small`` layout, or the original release
  ``Train/<digit>/*.bin`` and ``Test/<digit>/*.bin``.
* ``cifar10dvs``: the figshare release extracted: ``<class>/cifar10_<class>_<i>.aedat`` for the 10 classes.
  No official split: ``split_mode="random"`` (default; 9:1 by ``torch.randperm`` with a
  ``torch.Generator`` seeded 42, as ``random_split`` in the FR code) or
  ``"per_class"`` (recordings 0–99 of each class test, 100–999 train; TET tests on 900–999 instead).
* ``dvsgesture``: ``userXX_<lighting>.aedat`` + ``userXX_<lighting>_labels.csv`` (the IBM release's
  ``DvsGesture/`` folder) with ``trials_to_train.txt`` / ``trials_to_test.txt``; without those lists,
  users 1–23 train and 24–29 test (the official split).

Raw datasets are read once and their events cached as npz (``cache_dir``, default
``$SPIKEDISTILL_CACHE/events``); frames are cached there too, keyed by every parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ...errors import SpikeDistillError
from ..dataset import DATASETS, default_cache_dir, default_data_root
from .frames import check_size, check_split_by, check_timesteps
from .readers import read_cifar10dvs, read_dvs_gesture, read_nmnist
from .recordings import EventRecordings

CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
GESTURE_CLASSES = ("hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
                   "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
                   "arm_roll", "air_drums", "air_guitar", "other_gestures")
CIFAR10DVS_SPLITS = ("random", "per_class")


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
            self._device_cache[key] = (self.images.to(device, non_blocking=True), self.labels.to(device, non_blocking=True))
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


# --- helpers --------------------------------------------------------------------------------------

def _root(root: Optional[Path], folder: str, what: str, fix: str) -> Path:
    path = Path(root).expanduser() if root is not None else default_data_root() / folder
    if not path.is_dir():
        raise SpikeDistillError(f"{what} not found at {path}; {fix}")
    return path


def _cache(cache_dir) -> Optional[Path]:
    """``None``/``True`` → the default cache folder; ``False`` → no caching; else that folder."""
    if cache_dir is False:
        return None
    return default_cache_dir() / "events" if cache_dir in (None, True) else Path(cache_dir).expanduser()


def _no_download(name: str, download: bool, fix: str) -> None:
    if download:
        raise SpikeDistillError(f"dataset '{name}' cannot be downloaded by spikedistill; {fix}")


def _check_options(timesteps, split_by, size):
    return check_timesteps(timesteps), check_split_by(split_by), check_size(size)


def _cached_recordings(cache: Optional[Path], key: str, build, name: str, classes) -> EventRecordings:
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


def _listing_key(name: str, files: Sequence[Path]) -> str:
    """Cache key of a raw dataset: its file names, sizes and modification times."""
    import hashlib

    digest = hashlib.sha1()
    for f in files:
        stat = f.stat()
        digest.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return f"{name}-events-{digest.hexdigest()[:16]}"


def _trailing_number(path: Path) -> int:
    match = re.search(r"(\d+)$", path.stem)
    if match is None:
        raise SpikeDistillError(f"cannot read the recording number from '{path.name}'; expected names like cifar10_cat_17.aedat")
    return int(match.group(1))


# --- N-MNIST ----------------------------------------------------------------------------------------

def load_nmnist_recordings(root: Optional[Path] = None, split: str = "train", cache_dir=None) -> EventRecordings:
    base = _root(root, "nmnist_small", "N-MNIST", "pass root= a folder with train.npz/test.npz (nmnist_small) "
                 "or the original Train/ and Test/ folders of .bin files")
    classes = tuple(str(d) for d in range(10))
    npz = base / f"{split}.npz"
    if npz.is_file():
        return EventRecordings.load(npz, f"nmnist-{split}", sensor_size=(34, 34), classes=classes)
    folder = base / split.capitalize()
    if not folder.is_dir():
        raise SpikeDistillError(f"N-MNIST split '{split}' not found under {base}: expected {npz.name} or {folder.name}/<digit>/*.bin")
    files = sorted((f for f in folder.glob("[0-9]/*.bin")), key=lambda f: (int(f.parent.name), _trailing_number(f)))
    if not files:
        raise SpikeDistillError(f"no .bin files under {folder}/<digit>/; extract the N-MNIST archive there")
    build = lambda: EventRecordings.from_list([(read_nmnist(f), int(f.parent.name)) for f in files], (34, 34),
                                              f"nmnist-{split}", classes)
    return _cached_recordings(_cache(cache_dir), _listing_key(f"nmnist-{split}", files), build, f"nmnist-{split}", classes)


@DATASETS.register("nmnist")
def load_nmnist(root: Optional[Path] = None, split: str = "train", download: bool = False, timesteps: int = 10,
                split_by: str = "count", size: Optional[int] = None, cache_dir=None) -> EventDataset:
    """N-MNIST (34×34, 2 polarities, 10 digits) as ``timesteps`` frames per recording."""
    _no_download("nmnist", download, "get it from https://www.garrickorchard.com/datasets/n-mnist and pass root=")
    timesteps, split_by, size = _check_options(timesteps, split_by, size)
    return make_event_dataset(load_nmnist_recordings(root, split, cache_dir), timesteps, split_by, size, _cache(cache_dir))


# --- CIFAR10-DVS ------------------------------------------------------------------------------------

def cifar10dvs_files(base: Path) -> list[tuple[Path, int]]:
    """``(file, label)`` in the order of torchvision's ``DatasetFolder`` (class folders, then file names
    sorted as strings) — the order the FR code's ``random_split`` permuted, so seed 42 picks the same split."""
    missing = [c for c in CIFAR10DVS_CLASSES if not (base / c).is_dir()]
    if missing:
        raise SpikeDistillError(f"CIFAR10-DVS at {base} lacks class folders {missing}; extract the 10 figshare zips there")
    items = []
    for label, cls in enumerate(CIFAR10DVS_CLASSES):
        items += [(f, label) for f in sorted((base / cls).iterdir(), key=lambda f: f.name) if f.suffix == ".aedat"]
    if not items:
        raise SpikeDistillError(f"no .aedat files under {base}/<class>/; extract the CIFAR10-DVS zips there")
    return items


def cifar10dvs_split(items: Sequence[tuple[Path, int]], split: str, split_mode: str = "random", seed: int = 42,
                     train_fraction: float = 0.9) -> np.ndarray:
    """Indices into ``items`` of ``split``. ``random``: ``torch.randperm(N, generator=seed)``, the first
    ``round(0.9·N)`` train (``random_split([9000, 1000])`` for N = 10,000); ``per_class``: recordings
    numbered 0–99 test, the rest train."""
    if split_mode not in CIFAR10DVS_SPLITS:
        raise SpikeDistillError(f"unknown split_mode '{split_mode}'; known: {', '.join(CIFAR10DVS_SPLITS)}")
    if split_mode == "random":
        order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).numpy()
        cut = int(round(train_fraction * len(items)))
        return np.sort(order[:cut]) if split == "train" else np.sort(order[cut:])
    numbers = np.array([_trailing_number(f) for f, _ in items])
    return np.flatnonzero(numbers >= 100) if split == "train" else np.flatnonzero(numbers < 100)


@DATASETS.register("cifar10dvs")
def load_cifar10dvs(root: Optional[Path] = None, split: str = "train", download: bool = False, timesteps: int = 10,
                    split_by: str = "count", size: Optional[int] = 48, split_mode: str = "random", seed: int = 42,
                    cache_dir=None) -> EventDataset:
    """CIFAR10-DVS (128×128 DVS128, 10 classes × 1,000), resized to ``size`` (48, as the FR code)."""
    fix = ("download the 10 class zips of CIFAR10-DVS from figshare (https://figshare.com/articles/dataset/"
           "CIFAR10-DVS_New/4724671), extract them into one folder and pass root=")
    _no_download("cifar10dvs", download, fix)
    timesteps, split_by, size = _check_options(timesteps, split_by, size)
    base = _root(root, "cifar10dvs", "CIFAR10-DVS", fix)
    items = cifar10dvs_files(base)
    cache = _cache(cache_dir)
    build = lambda: EventRecordings.from_list([(read_cifar10dvs(f), label) for f, label in items], (128, 128),
                                              "cifar10dvs", CIFAR10DVS_CLASSES)
    recordings = _cached_recordings(cache, _listing_key("cifar10dvs", [f for f, _ in items]), build, "cifar10dvs",
                                    CIFAR10DVS_CLASSES)
    chosen = recordings.subset(cifar10dvs_split(items, split, split_mode, seed))
    chosen.name = f"cifar10dvs-{split_mode}{seed if split_mode == 'random' else ''}-{split}"
    return make_event_dataset(chosen, timesteps, split_by, size, cache)


# --- DVS-Gesture ------------------------------------------------------------------------------------

def gesture_trials(base: Path, split: str) -> list[Path]:
    listing = base / f"trials_to_{split}.txt"
    if listing.is_file():
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        files = [base / name for name in names]
    else:
        users = range(1, 24) if split == "train" else range(24, 30)
        numbered = ((f, re.match(r"user(\d+)_", f.name)) for f in base.glob("user*.aedat"))
        files = sorted(f for f, match in numbered if match and int(match.group(1)) in users)
    missing = [f.name for f in files if not f.is_file()]
    if missing or not files:
        raise SpikeDistillError(
            f"DVS-Gesture {split} trials missing under {base} ({', '.join(missing[:3]) or 'no user*.aedat files'}); "
            "extract DvsGesture.tar.gz there and pass root=")
    return files


@DATASETS.register("dvsgesture")
def load_dvs_gesture(root: Optional[Path] = None, split: str = "train", download: bool = False, timesteps: int = 16,
                     split_by: str = "count", size: Optional[int] = None, cache_dir=None) -> EventDataset:
    """IBM DVS-Gesture (128×128, 11 classes): one recording per labelled gesture of each trial."""
    fix = "download DvsGesture.tar.gz from IBM (https://research.ibm.com/interactive/dvsgesture/), extract it and pass root="
    _no_download("dvsgesture", download, fix)
    timesteps, split_by, size = _check_options(timesteps, split_by, size)
    base = _root(root, "DvsGesture", "DVS-Gesture", fix)
    trials = gesture_trials(base, split)

    def build() -> EventRecordings:
        items = []
        for aedat in trials:
            labels = aedat.with_name(aedat.stem + "_labels.csv")
            if not labels.is_file():
                raise SpikeDistillError(f"DVS-Gesture labels {labels} missing for {aedat.name}; re-extract the dataset")
            items += read_dvs_gesture(aedat, labels)
        return EventRecordings.from_list(items, (128, 128), f"dvsgesture-{split}", GESTURE_CLASSES)

    key = _listing_key(f"dvsgesture-{split}", trials + [t.with_name(t.stem + "_labels.csv") for t in trials])
    recordings = _cached_recordings(_cache(cache_dir), key, build, f"dvsgesture-{split}", GESTURE_CLASSES)
    return make_event_dataset(recordings, timesteps, split_by, size, _cache(cache_dir))


EVENT_DATASETS = ("nmnist", "cifar10dvs", "dvsgesture")


def load_event_dataset(name: str, root: Optional[Path] = None, split: str = "train", timesteps: int = 10,
                       **options) -> EventDataset:
    """``load_dataset`` for the event datasets, with ``timesteps`` up front."""
    from ..dataset import load_dataset

    if name not in EVENT_DATASETS:
        from ...errors import unknown_name

        raise unknown_name("event dataset", name, EVENT_DATASETS)
    return load_dataset(name, root, split=split, timesteps=timesteps, **options)
