"""Class-folder image datasets (ImageNet layout): ``root/<split>/<class>/<image>``, decoded with Pillow.

``stream=False`` decodes everything once (in DataLoader workers) into an :class:`ArrayDataset` that can
live on the GPU — right for CIFAR-sized data such as the JPEG CIFAR-10 images. ``stream=True`` returns a
:class:`StreamingDataset` whose items are decoded in worker processes on every epoch, for data too large
for memory; :func:`~spikedistill.data.loader.batches` moves each uint8 batch to the device and augments
it there.

ImageNet's training crop, two ways: ``train_random_resized_crop=224`` draws torchvision's
``RandomResizedCrop(224)`` from each decoded original image while decoding (PIL crop, then PIL bilinear
resize, as torchvision does on PIL images; a fresh box every epoch); or, the fast mode, ``train_size=256``
stores the 256×256 centre square and ``data.augment.resized_crop=224`` crops that square on the device
(the strips beyond it are never seen, and the resize has no antialiasing).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch

from ..errors import DataNotFoundError, SpikeDistillError
from .dataset import DATASETS, ArrayDataset, StreamingDataset, default_data_root, require_dir

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff"}
CLASS_FOLDERS = "a folder with train/ and test/ or val/ class folders"  # what the data's root holds
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

Size = Union[int, Sequence[int], None]


class PillowReader:
    """``i -> uint8 [C, H, W]`` for image file ``paths[i]``; picklable for DataLoader workers.

    With ``size``, the shorter side is resized to ``resize`` (default: ``size``) and the centre
    ``size`` crop kept (ImageNet's test transform is ``resize=256, size=224``). With
    ``random_resized_crop=N`` instead, a ``RandomResizedCrop(N)`` box of the original is drawn from the
    generator seeded with ``draw_seed`` (``reader(i, draw_seed)``; the reader ``draws``), cropped and
    resized to N×N with PIL's bilinear filter.
    """

    def __init__(self, paths: Sequence[Path], channels: int = 3, size: Size = None, resize: Optional[int] = None,
                 random_resized_crop: Optional[int] = None):
        self.paths = [str(p) for p in paths]
        self.mode = {1: "L", 3: "RGB"}[channels]
        self.size = (size, size) if isinstance(size, int) else (tuple(size) if size is not None else None)
        self.resize = resize if resize is not None else (max(self.size) if self.size else None)
        self.random_resized_crop = random_resized_crop

    @property
    def draws(self) -> bool:
        """Whether every read draws random numbers (and takes a ``draw_seed``)."""
        return self.random_resized_crop is not None

    def __call__(self, index: int, draw_seed: int = 0) -> torch.Tensor:
        from PIL import Image

        try:
            with Image.open(self.paths[index]) as image:
                image = image.convert(self.mode)
                if self.random_resized_crop is not None:
                    image = _random_resized_crop(image, self.random_resized_crop, draw_seed)
                elif self.size is not None:
                    image = _resize_center_crop(image, self.resize, self.size)
                array = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
                width, height = image.size
        except (OSError, ValueError, SyntaxError) as exc:  # truncated, not an image, unreadable (PIL raises these)
            raise SpikeDistillError(f"cannot read image {self.paths[index]} ({type(exc).__name__}); "
                                    "remove or replace the file") from None
        return array.view(height, width, -1).permute(2, 0, 1).contiguous()


def _resize_center_crop(image, shorter: int, size: Tuple[int, int]):
    from PIL import Image

    width, height = image.size
    scale = shorter / min(width, height)
    if scale != 1:
        image = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR)
    width, height = image.size
    out_h, out_w = size
    left, top = (width - out_w) // 2, (height - out_h) // 2
    return image.crop((left, top, left + out_w, top + out_h))


def _random_resized_crop(image, size: int, draw_seed: int):
    """torchvision's ``RandomResizedCrop(size)`` on a PIL image: the box of ``resized_crop_boxes`` (scale
    0.08–1, ratio 3/4–4/3), then ``crop`` and a bilinear ``resize`` to ``size × size``."""
    from PIL import Image

    from .augment import resized_crop_boxes

    width, height = image.size
    generator = torch.Generator().manual_seed(draw_seed)
    top, left, box_h, box_w = (int(v) for v in resized_crop_boxes(1, height, width, generator=generator)[0].tolist())
    return image.crop((left, top, left + box_w, top + box_h)).resize((size, size), Image.BILINEAR)


def scan_class_folders(folder: Path) -> Tuple[List[Path], List[int], List[str]]:
    """Image paths, labels and class names (sorted folder names) under ``folder/<class>/``."""
    classes = sorted(entry.name for entry in folder.iterdir() if entry.is_dir())
    paths: List[Path] = []
    labels: List[int] = []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise SpikeDistillError(
            f"no images found under {folder}; expected {folder}/<class>/<image> with suffix in "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}"
        )
    return paths, labels, classes


def _split_folder(root: Path, split: str, split_folder: Optional[str]) -> Path:
    if split_folder is not None:
        return require_dir(root / split_folder, "image folder", holds=f"the folder that holds {split_folder}/")
    candidates = [root / split] + ([root / "val"] if split == "test" else [])
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    require_dir(root, "image folder root", holds=CLASS_FOLDERS)
    raise SpikeDistillError(
        f"no '{split}' folder in {root}; expected {root}/{split}/<class>/<image> "
        f"(or pass split_folder='' to use {root} itself)"
    )


@DATASETS.register("imagefolder")
def load_imagefolder(
    root: Optional[Path] = None,
    split: str = "train",
    download: bool = False,
    stream: bool = False,
    channels: int = 3,
    size: Size = None,
    resize: Optional[int] = None,
    num_workers: int = 4,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    split_folder: Optional[str] = None,
    name: str = "imagefolder",
    train_size: Size = None,
    train_resize: Optional[int] = None,
    train_random_resized_crop: Optional[int] = None,
) -> Union[ArrayDataset, StreamingDataset]:
    """Class folders under ``root/<split>`` (``root/val`` also serves ``split="test"``).

    Without ``size``, all images must have the same size. ``train_size``/``train_resize`` replace
    ``size``/``resize`` for ``split="train"``: ImageNet decodes test images at resize 256 → centre 224
    and training images larger (e.g. ``train_size=256``), for the random resized crop on the device (the
    fast mode). ``train_random_resized_crop=N`` (with ``stream=True``) instead crops every training image
    from its decoded original on each read, as torchvision's ``RandomResizedCrop(N)``.
    ``mean``/``std`` default to ImageNet's, the same for every split; pass your data's own (e.g.
    CIFAR-10's) where they differ.
    """
    if download:
        raise DataNotFoundError("dataset 'imagefolder' cannot be downloaded", holds=CLASS_FOLDERS)
    if channels not in (1, 3):
        raise SpikeDistillError(f"imagefolder channels must be 1 or 3, got {channels}")
    if len(mean) != channels or len(std) != channels:
        raise SpikeDistillError(f"imagefolder: {channels} channels but mean/std of length {len(mean)}/{len(std)}")
    folder = _split_folder(Path(root) if root is not None else default_data_root(), split, split_folder)
    paths, labels, classes = scan_class_folders(folder)
    if train_random_resized_crop is not None:
        if not stream or train_size is not None or train_random_resized_crop < 1:
            raise SpikeDistillError("imagefolder: train_random_resized_crop=N (N >= 1) crops each original while "
                                    "decoding every epoch; it needs stream=true and replaces train_size (drop "
                                    "train_size, or drop train_random_resized_crop for the fast mode)")
    random_crop = train_random_resized_crop if split == "train" else None
    if split == "train" and train_size is not None:
        size, resize = train_size, train_resize
    reader = PillowReader(paths, channels, size, resize, random_crop)
    label_tensor = torch.tensor(labels, dtype=torch.int64)
    if stream:
        return StreamingDataset(reader, label_tensor, len(classes), mean, std, name, classes, num_workers)
    return ArrayDataset(
        decode_all(reader, len(paths), num_workers), label_tensor, len(classes), mean, std, name, classes
    )


def decode_all(reader: PillowReader, count: int, num_workers: int = 4, chunk: int = 256) -> torch.Tensor:
    """Every image of ``reader`` in one uint8 ``[N, C, H, W]`` tensor, decoded by DataLoader workers."""
    loader = torch.utils.data.DataLoader(
        _Items(reader, count), batch_size=chunk, num_workers=num_workers, collate_fn=list
    )
    images: Optional[torch.Tensor] = None
    start = 0
    for items in loader:
        for index, image in items:
            if isinstance(image, str):  # the worker's one-line message
                raise SpikeDistillError(image)
            if images is None:
                images = torch.empty((count, *image.shape), dtype=torch.uint8)
            if image.shape != images.shape[1:]:
                raise SpikeDistillError(
                    f"{reader.paths[index]} is {list(image.shape)} but the first image is {list(images.shape[1:])}; "
                    "pass size=N to resize and centre-crop every image"
                )
            images[start] = image
            start += 1
    assert images is not None
    return images


class _Items(torch.utils.data.Dataset):
    def __init__(self, reader: PillowReader, count: int) -> None:
        self.reader, self.count = reader, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        try:
            return index, self.reader(index)
        except SpikeDistillError as exc:  # raised in a worker it would arrive as a multi-line traceback
            return index, str(exc)
        except Exception as exc:
            return index, (f"cannot read image {self.reader.paths[index]} ({type(exc).__name__}); "
                           "remove or replace the file")
