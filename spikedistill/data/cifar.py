"""CIFAR-10 and CIFAR-100: the official python format, and the shared JPEG-q75 copy of CIFAR-10.

Official format (https://www.cs.toronto.edu/~kriz/cifar.html): pickled dicts whose ``b"data"`` is uint8
``N x 3072`` channel-planar (1024 red, 1024 green, 1024 blue, each row-major 32x32), so a reshape to
``[N, 3, 32, 32]`` gives the images with no copy of the pixels.

Normalisation constants are the ones the papers' codes use (docs/data.md#datasets), not recomputed.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import DataNotFoundError, SpikeDistillError
from .dataset import DAMAGED_NPZ, DATASETS, ArrayDataset, default_cache_dir, default_data_root, require_dir
from .download import download_and_extract, file_hash

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise SpikeDistillError(f"CIFAR file missing: {path}; delete {path.parent} and pass download=True")
    with open(path, "rb") as f:
        try:
            return _ArraysOnlyUnpickler(f, encoding="bytes").load()
        except Exception as exc:  # truncated, corrupt, or a pickle that wants to run code
            raise SpikeDistillError(f"CIFAR file {path} is corrupt ({type(exc).__name__}); delete {path.parent} "
                                    "and pass download=True (CLI: data.download=true)") from None


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """The official batches hold dicts, lists, bytes and numpy arrays: nothing else may be built, so a
    tampered file cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}  # how Python 3 writes bytes at pickle protocol 2: str -> bytes only

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _planar_to_tensor(data: np.ndarray, path: Path) -> torch.Tensor:
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise SpikeDistillError(f"{path}: b'data' has shape {data.shape}, expected N x 3072 (official CIFAR layout)")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())


def _cifar_root(root: Optional[Path], folder: str, url: str, md5: str, download: bool) -> Path:
    root = root if root is not None else default_data_root()
    if download:
        return download_and_extract(url, md5, root, folder)
    return require_dir(root / folder, "CIFAR folder", holds=f"the folder that holds {folder}", downloadable=True)


@DATASETS.register("cifar10")
def load_cifar10(
    root: Optional[Path] = None,
    split: str = "train",
    download: bool = False,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
) -> ArrayDataset:
    """CIFAR-10 from ``root/cifar-10-batches-py`` (``data_batch_1..5``, ``test_batch``)."""
    folder = _cifar_root(root, "cifar-10-batches-py", url, md5, download)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        batch = _unpickle(folder / name)
        images.append(_planar_to_tensor(batch[b"data"], folder / name))
        labels.append(torch.as_tensor(batch[b"labels"], dtype=torch.int64))
    classes: Sequence[str] = CIFAR10_CLASSES
    if (folder / "batches.meta").is_file():
        classes = [c.decode() for c in _unpickle(folder / "batches.meta")[b"label_names"]]
    return ArrayDataset(
        torch.cat(images), torch.cat(labels), 10, CIFAR10_MEAN, CIFAR10_STD, "cifar10", classes
    )


@DATASETS.register("cifar100")
def load_cifar100(
    root: Optional[Path] = None,
    split: str = "train",
    download: bool = False,
    url: str = CIFAR100_URL,
    md5: str = CIFAR100_MD5,
    labels: str = "fine",
) -> ArrayDataset:
    """CIFAR-100 from ``root/cifar-100-python`` (``train``, ``test``); ``labels="coarse"`` for the 20 superclasses."""
    if labels not in ("fine", "coarse"):
        raise SpikeDistillError(f"cifar100 labels must be 'fine' or 'coarse', got '{labels}'")
    folder = _cifar_root(root, "cifar-100-python", url, md5, download)
    batch = _unpickle(folder / split)
    classes = None
    if (folder / "meta").is_file():
        classes = [c.decode() for c in _unpickle(folder / "meta")[f"{labels}_label_names".encode()]]
    return ArrayDataset(
        _planar_to_tensor(batch[b"data"], folder / split),
        torch.as_tensor(batch[f"{labels}_labels".encode()], dtype=torch.int64),
        100 if labels == "fine" else 20,
        CIFAR100_MEAN,
        CIFAR100_STD,
        "cifar100" if labels == "fine" else "cifar100_coarse",
        classes,
    )


# --- the JPEG-q75 copy of CIFAR-10 (train_jpeg.npz / test_jpeg.npz, docs/data.md) ------------------


def decode_jpeg_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Decode a ``header + scan[offsets[i]:offsets[i+1]]`` JPEG npz into uint8 ``(N, 32, 32, 3)`` RGB and labels."""
    from PIL import Image

    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = {"header", "scan", "offsets", "y"} - set(npz.files)
            if missing:
                raise SpikeDistillError(f"{path} is not a JPEG-array npz: keys {sorted(missing)} are missing")
            header = npz["header"].tobytes()
            scan, offsets, labels = npz["scan"], npz["offsets"], npz["y"]
    except DAMAGED_NPZ as exc:
        if isinstance(exc, SpikeDistillError):
            raise
        raise SpikeDistillError(f"{path} is truncated or damaged ({type(exc).__name__}); copy it again from the "
                                "folder of the JPEG copy (or use cifar10 with data.download=true)") from None
    images = np.empty((len(offsets) - 1, 32, 32, 3), dtype=np.uint8)
    for i in range(len(images)):
        data = header + scan[offsets[i] : offsets[i + 1]].tobytes()
        try:
            with Image.open(io.BytesIO(data)) as image:
                images[i] = np.asarray(image.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's words for a damaged image, not a disk problem
            reason = str(exc).split(" <")[0]  # without PIL's "<_io.BytesIO object at 0x...>"
            raise SpikeDistillError(f"{path}: image {i} of {len(images)} is a damaged JPEG ({reason}); copy the file "
                                    "again from the folder of the JPEG copy") from None
    return images, labels


def load_jpeg_arrays(path: Path, cache_dir: Optional[Path] = None) -> tuple[np.ndarray, np.ndarray]:
    """Decoded images of a JPEG npz, cached as ``.npy`` under ``cache_dir`` (keyed by file hash and Pillow version)."""
    import PIL

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = f"{path.stem}-{file_hash(path, 'sha256')[:16]}-pillow{PIL.__version__}"
    cached_x, cached_y = cache_dir / f"{key}-x.npy", cache_dir / f"{key}-y.npy"
    if cached_x.is_file() and cached_y.is_file():
        return np.load(cached_x), np.load(cached_y)
    images, labels = decode_jpeg_npz(path)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for target, array in ((cached_y, labels), (cached_x, images)):
            partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            with open(partial, "wb") as f:
                np.save(f, array)
            os.replace(partial, target)  # atomic: concurrent readers never see half a file
    except OSError:
        pass  # a read-only home is no reason to fail; we just decode again next time
    return images, labels


@DATASETS.register("cifar10_jpeg")
def load_cifar10_jpeg(
    root: Optional[Path] = None,
    split: str = "train",
    download: bool = False,
    cache_dir: Optional[Path] = None,
) -> ArrayDataset:
    """The shared CIFAR-10 (JPEG-q75 copy): ``root/train_jpeg.npz`` or ``root/cifar10/train_jpeg.npz``.

    Report results on it as "CIFAR-10 (JPEG-q75 copy)". Cannot be downloaded.
    """
    base = root if root is not None else default_data_root()
    name = f"{split}_jpeg.npz"
    path = base / name if (base / name).is_file() else base / "cifar10" / name
    if download:
        raise SpikeDistillError("cifar10_jpeg cannot be downloaded; use cifar10 with download=True instead")
    if not path.is_file():
        raise DataNotFoundError(f"{name} not found at {path}", path,
                                holds="the folder holding train_jpeg.npz and test_jpeg.npz, or set SPIKEDISTILL_DATA "
                                      "to it")
    images, labels = load_jpeg_arrays(path, cache_dir)
    return ArrayDataset(
        torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(labels.astype(np.int64)),
        10,
        CIFAR10_MEAN,
        CIFAR10_STD,
        "cifar10_jpeg",
        CIFAR10_CLASSES,
    )
