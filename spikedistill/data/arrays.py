"""Datasets that are numpy arrays: an ``.npz`` file, and scikit-learn's bundled digits (the demo data).

Digits was chosen for the offline demo because it is real data (1,797 handwritten digits, 10 classes)
that ships inside the scikit-learn wheel itself, so ``pip install`` is all a fresh machine needs; it is
small enough (8x8, one channel) for an ANN teacher and two SNN students to train in minutes on two CPU
cores, and hard enough that accuracy at one timestep visibly differs between methods. Fashion-MNIST
needs a download or a Debian package; torchvision's datasets all download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import DataNotFoundError, SpikeDistillError
from .dataset import DAMAGED_NPZ, DATASETS, ArrayDataset, channel_stats


def _nhwc_to_tensor(x: np.ndarray, where: str) -> torch.Tensor:
    if x.ndim == 3:  # [N, H, W] greyscale
        x = x[..., None]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise SpikeDistillError(
            f"{where}: 'x' must be uint8 [N, H, W, C] with C in 1/3/4, got {x.dtype} {list(x.shape)}"
        )
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()


def _open_npz(file: Path):
    try:
        return np.load(file, allow_pickle=False)
    except DAMAGED_NPZ as exc:  # not a zip of .npy arrays, cut short (or it needs pickle)
        raise SpikeDistillError(f"{file} is not a readable .npz archive ({type(exc).__name__}); "
                                "write it with numpy.savez(path, x=images, y=labels)") from None


@DATASETS.register("npz")
def load_npz(
    root: Optional[Path] = None,
    split: str = "train",
    download: bool = False,
    path: Optional[Path] = None,
    num_classes: Optional[int] = None,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    name: Optional[str] = None,
) -> ArrayDataset:
    """A ``.npz`` with ``x`` (uint8 NHWC) and ``y`` (integer labels) — or ``x_train``/``y_train`` and
    ``x_test``/``y_test`` picked by ``split``. ``path`` (or ``root``) is the file.

    ``mean``/``std`` default to the statistics of the training images (``x_train`` if present).
    """
    file = Path(path if path is not None else root) if (path or root) else None
    if file is None:
        raise DataNotFoundError("dataset 'npz' needs a file", place="FILE.npz")
    if download:
        raise SpikeDistillError("dataset 'npz' cannot be downloaded; pass an existing .npz file")
    if not file.is_file():
        raise DataNotFoundError(f"npz file not found at {file}", file, place="FILE.npz")
    with _open_npz(file) as npz:
        keys = ("x", "y") if "x" in npz.files else (f"x_{split}", f"y_{split}")
        if not set(keys) <= set(npz.files):
            raise SpikeDistillError(
                f"{file}: needs arrays 'x' and 'y' (or '{keys[0]}' and '{keys[1]}'), found {sorted(npz.files)}"
            )
        try:
            images = _nhwc_to_tensor(npz[keys[0]], f"{file}['{keys[0]}']")
            y = npz[keys[1]]
            stats_images = images
            if (mean is None or std is None) and keys[0] != "x_train" and "x_train" in npz.files:
                stats_images = _nhwc_to_tensor(npz["x_train"], f"{file}['x_train']")
        except SpikeDistillError:
            raise
        except DAMAGED_NPZ as exc:  # the directory was whole, an array inside is cut short
            raise SpikeDistillError(f"{file} is truncated or damaged ({type(exc).__name__}); copy or write it again "
                                    "(numpy.savez(path, x=images, y=labels))") from None
    if y.ndim != 1 or len(y) != len(images) or not np.issubdtype(y.dtype, np.integer):
        raise SpikeDistillError(
            f"{file}['{keys[1]}']: labels must be integers of shape [{len(images)}], got {y.dtype} {list(y.shape)}"
        )
    if len(y) and y.min() < 0:
        raise SpikeDistillError(f"{file}['{keys[1]}']: labels must be >= 0, found {int(y.min())}")
    if num_classes is not None and len(y) and int(y.max()) >= num_classes:
        raise SpikeDistillError(f"{file}['{keys[1]}']: labels go up to {int(y.max())} but num_classes={num_classes}; "
                                f"pass num_classes >= {int(y.max()) + 1} or leave it out")
    if mean is None or std is None:
        data_mean, data_std = channel_stats(stats_images)
        mean, std = mean or data_mean, std or data_std
    return ArrayDataset(
        images,
        torch.from_numpy(y.astype(np.int64)),
        int(num_classes or (int(y.max()) + 1 if len(y) else 0)),
        tuple(mean),
        tuple(std),
        name or file.stem,
    )


@DATASETS.register("digits")
def load_digits(
    root: Optional[Path] = None,
    split: str = "train",
    download: bool = False,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ArrayDataset:
    """scikit-learn's bundled handwritten digits: 1,797 images, 1x8x8, 10 classes (offline demo data).

    The 17 grey levels (0..16) are scaled to 0..255. The train/test split is stratified and fixed by
    ``seed`` (default 0: 1,437 train / 360 test); mean/std come from the training split.
    """
    if not isinstance(test_fraction, (int, float)) or isinstance(test_fraction, bool) or not 0 < test_fraction < 1:
        raise SpikeDistillError("dataset 'digits': test_fraction must be between 0 and 1 (exclusive), got "
                                f"{test_fraction!r}")
    try:
        from sklearn.datasets import load_digits as sklearn_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise SpikeDistillError(
            "dataset 'digits' needs scikit-learn: pip install 'spikedistill[demo]'"
        ) from None
    bunch = sklearn_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # [N, 1, 8, 8]
    indices = np.arange(len(pixels))
    train, test = train_test_split(
        indices, test_size=test_fraction, stratify=bunch.target, random_state=seed
    )
    train, test = np.sort(train), np.sort(test)
    images = torch.from_numpy(pixels)
    mean, std = channel_stats(images[torch.from_numpy(train)])
    chosen = torch.from_numpy(train if split == "train" else test)
    return ArrayDataset(
        images[chosen],
        torch.from_numpy(bunch.target.astype(np.int64))[chosen],
        10,
        mean,
        std,
        "digits",
        [str(d) for d in range(10)],
    )
