"""N-MNIST (34×34, 2 polarities, 10 digits) as frames, registered as ``nmnist``.

On disk (``root``, default ``$SPIKEDISTILL_DATA/nmnist_small``): ``train.npz`` / ``test.npz`` in the
``nmnist_small`` layout, or the original release ``Train/<digit>/*.bin`` and ``Test/<digit>/*.bin``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ...errors import SpikeDistillError
from ..dataset import DATASETS
from . import dataset as shared
from .dataset import EventDataset
from .readers import read_nmnist
from .recordings import EventRecordings

HOLDS = "a folder with train.npz and test.npz of nmnist_small, or the original Train/ and Test/ folders of .bin files"


def load_nmnist_recordings(root: Optional[Path] = None, split: str = "train", cache_dir=None) -> EventRecordings:
    base = shared.dataset_root(root, "nmnist_small", "N-MNIST", holds=HOLDS)
    classes = tuple(str(d) for d in range(10))
    npz = base / f"{split}.npz"
    if npz.is_file():
        return EventRecordings.load(npz, f"nmnist-{split}", sensor_size=(34, 34), classes=classes)
    folder = base / split.capitalize()
    if not folder.is_dir():
        raise SpikeDistillError(f"N-MNIST split '{split}' not found under {base}: expected {npz.name} or "
                                f"{folder.name}/<digit>/*.bin")
    files = sorted((f for f in folder.glob("[0-9]/*.bin")),
                   key=lambda f: (int(f.parent.name), shared.trailing_number(f)))
    if not files:
        raise SpikeDistillError(f"no .bin files under {folder}/<digit>/; extract the N-MNIST archive there")
    build = lambda: EventRecordings.from_list([(read_nmnist(f), int(f.parent.name)) for f in files], (34, 34),
                                              f"nmnist-{split}", classes)
    return shared.cached_recordings(shared.cache_folder(cache_dir), shared.listing_key(f"nmnist-{split}", files), build,
                                    f"nmnist-{split}", classes)


@DATASETS.register("nmnist")
def load_nmnist(root: Optional[Path] = None, split: str = "train", download: bool = False, timesteps: int = 10,
                split_by: str = "count", size: Optional[int] = None, cache_dir=None) -> EventDataset:
    """N-MNIST (34×34, 2 polarities, 10 digits) as ``timesteps`` frames per recording."""
    shared.refuse_download("nmnist", download, get="get it from https://www.garrickorchard.com/datasets/n-mnist",
                           holds=HOLDS)
    timesteps, split_by, size = shared.check_frame_options(timesteps, split_by, size)
    return shared.make_event_dataset(load_nmnist_recordings(root, split, cache_dir), timesteps, split_by, size,
                                     shared.cache_folder(cache_dir))
