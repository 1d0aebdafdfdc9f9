"""Data: datasets as uint8 tensors, batched augmentation on the device, deterministic sharded batches.

    dataset = load_dataset("cifar10", root, split="train", download=True)
    augment = GpuAugment(crop_padding=4, flip=True, autoaugment=True, cutout=16)
    for images, labels in batches(dataset, 128, shuffle=True, augment=augment, device="cuda", epoch=e):
        ...

Registered datasets: cifar10, cifar100, cifar10_jpeg, npz, imagefolder, digits (see docs/data.md).
kornia, Pillow and scikit-learn are imported only when a function needs them.
"""

from .dataset import (
    DATASETS,
    ArrayDataset,
    StreamingDataset,
    channel_stats,
    default_cache_dir,
    default_data_root,
    load_dataset,
    stratified_indices,
)
from . import arrays, cifar, imagefolder  # noqa: F401  (registers the datasets)
from .augment import GpuAugment, cutout, normalize
from .cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from .download import download_and_extract
from .loader import batches, num_batches, shard_indices


def register_dataset(name: str):
    """Register a dataset loader as ``name`` (decorator): ``loader(root, split, download, **options)`` returns
    an :class:`ArrayDataset` (uint8 images ``[N, C, H, W]``, labels, num_classes, mean/std); recipes
    (``data.name``) and ``spikedistill eval --data`` then find it."""
    return DATASETS.register(name)

__all__ = [
    "DATASETS",
    "register_dataset",
    "ArrayDataset",
    "StreamingDataset",
    "load_dataset",
    "default_data_root",
    "default_cache_dir",
    "channel_stats",
    "GpuAugment",
    "normalize",
    "cutout",
    "batches",
    "num_batches",
    "shard_indices",
    "download_and_extract",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
]
