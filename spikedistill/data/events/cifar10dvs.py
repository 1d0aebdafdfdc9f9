"""CIFAR10-DVS (128×128 DVS128, 10 classes × 1,000 recordings) as frames, registered as ``cifar10dvs``.

On disk (``root``, default ``$SPIKEDISTILL_DATA/cifar10dvs``): the figshare release extracted,
``<class>/cifar10_<class>_<i>.aedat`` for the 10 classes. No official split: ``split_mode="random"``
(default; 9:1 by ``torch.randperm`` with a ``torch.Generator`` seeded 42, as ``random_split`` in the FR
code) or ``"per_class"`` (recordings 0–99 of each class test, 100–999 train; TET tests on 900–999 instead).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ...errors import SpikeDistillError
from ..dataset import DATASETS
from . import dataset as shared
from .dataset import EventDataset
from .readers import read_cifar10dvs
from .recordings import EventRecordings

CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10DVS_SPLITS = ("random", "per_class")


def cifar10dvs_files(base: Path) -> list[tuple[Path, int]]:
    """``(file, label)`` in the order of torchvision's ``DatasetFolder`` (class folders, then file names
    sorted as strings) — the order the FR code's ``random_split`` permuted, so seed 42 picks the same split."""
    missing = [c for c in CIFAR10DVS_CLASSES if not (base / c).is_dir()]
    if missing:
        raise SpikeDistillError(f"CIFAR10-DVS at {base} lacks class folders {missing}; extract the 10 figshare zips "
                                "there")
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
    numbers = np.array([shared.trailing_number(f) for f, _ in items])
    return np.flatnonzero(numbers >= 100) if split == "train" else np.flatnonzero(numbers < 100)


@DATASETS.register("cifar10dvs")
def load_cifar10dvs(root: Optional[Path] = None, split: str = "train", download: bool = False, timesteps: int = 10,
                    split_by: str = "count", size: Optional[int] = 48, split_mode: str = "random", seed: int = 42,
                    cache_dir=None) -> EventDataset:
    """CIFAR10-DVS (128×128 DVS128, 10 classes × 1,000), resized to ``size`` (48, as the FR code)."""
    get = ("download the 10 class zips of CIFAR10-DVS from figshare (https://figshare.com/articles/dataset/"
           "CIFAR10-DVS_New/4724671), extract them into one folder")
    shared.refuse_download("cifar10dvs", download, get=get)
    timesteps, split_by, size = shared.check_frame_options(timesteps, split_by, size)
    base = shared.dataset_root(root, "cifar10dvs", "CIFAR10-DVS", get=get)
    items = cifar10dvs_files(base)
    cache = shared.cache_folder(cache_dir)
    build = lambda: EventRecordings.from_list([(read_cifar10dvs(f), label) for f, label in items], (128, 128),
                                              "cifar10dvs", CIFAR10DVS_CLASSES)
    recordings = shared.cached_recordings(cache, shared.listing_key("cifar10dvs", [f for f, _ in items]), build,
                                          "cifar10dvs",
                                    CIFAR10DVS_CLASSES)
    chosen = recordings.subset(cifar10dvs_split(items, split, split_mode, seed))
    chosen.name = f"cifar10dvs-{split_mode}{seed if split_mode == 'random' else ''}-{split}"
    return shared.make_event_dataset(chosen, timesteps, split_by, size, cache)
