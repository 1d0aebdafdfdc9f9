"""Batches for training and evaluation: the whole dataset on the device as uint8, gathered and augmented
there in batches (airbench style); streamed datasets go through a DataLoader and are augmented after
the transfer.

Order is a function of ``(seed, epoch)`` only; ``rank``/``world_size`` shard it for DDP the way
``DistributedSampler`` does (rank r takes every world_size-th index of the epoch's permutation), except
that nothing is padded: across ranks every sample appears exactly once per epoch. Shard sizes then
differ by at most one, so DDP training should use ``drop_last=True``, which gives every rank the same
number of full batches; evaluation uses ``drop_last=False`` and sums counts over ranks.
"""

from __future__ import annotations

from typing import Iterator, Optional, Tuple, Union

import torch

from ..errors import SpikeDistillError
from .augment import GpuAugment, normalize
from .dataset import ArrayDataset, StreamingDataset

Dataset = Union[ArrayDataset, StreamingDataset]


def _seed(*numbers: int) -> int:
    """A generator seed from a tuple of ints (tuple hashing of ints is the same in every process)."""
    return hash(numbers) & 0xFFFF_FFFF_FFFF


def shard_indices(
    length: int,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
) -> torch.Tensor:
    """This rank's sample indices for one epoch (int64, CPU).

    With ``drop_last``, the tail that does not divide by ``world_size`` is dropped so all shards are
    equal; without it every index of ``range(length)`` lands on exactly one rank.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise SpikeDistillError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
    if shuffle:
        generator = torch.Generator().manual_seed(_seed(seed, epoch))
        order = torch.randperm(length, generator=generator)
    else:
        order = torch.arange(length)
    if drop_last:
        order = order[: length - length % world_size]
    return order[rank::world_size]


def num_batches(
    dataset: Union[Dataset, int],
    batch_size: int,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> int:
    """How many batches :func:`batches` yields on this rank (``dataset`` may be its length)."""
    length = dataset if isinstance(dataset, int) else len(dataset)
    shard = len(range(rank, length - (length % world_size if drop_last else 0), world_size))
    return shard // batch_size if drop_last else -(-shard // batch_size)


def batches(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    augment: Optional[GpuAugment] = None,
    device: Union[str, torch.device] = "cpu",
    drop_last: bool = False,
    seed: int = 0,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: Optional[int] = None,
    start: int = 0,
) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images, labels)`` on ``device``: images float32 ``[B, C, H, W]``, normalised (and
    augmented if ``augment`` is in train mode); labels int64 ``[B]``.

    Deterministic given ``(seed, epoch, rank)``: the order and the augmentation draws are the same on
    every call, and the global RNG is left as it was. ``augment=None`` only normalises.
    ``num_workers`` applies to streamed datasets (default: the dataset's own). ``start`` skips the
    epoch's first batches without gathering or augmenting them (resuming mid-epoch); the batches that
    follow are the same as in an uninterrupted epoch.
    """
    if batch_size < 1:
        raise SpikeDistillError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device)
    indices = shard_indices(len(dataset), shuffle, seed, epoch, rank, world_size, drop_last)
    count = num_batches(len(dataset), batch_size, drop_last, rank, world_size)
    start = min(max(start, 0), count)
    indices = indices[start * batch_size : count * batch_size]
    if isinstance(dataset, StreamingDataset):
        if dataset.draws:  # a crop drawn while decoding: seeded per (seed, epoch, sample), in any worker
            keys = [(index, _seed(seed, epoch, index)) for index in indices.tolist()]
        else:
            keys = indices.tolist()
        source = _streamed(dataset, keys, batch_size, device, num_workers, _seed(seed, epoch, rank))
    else:
        images, labels = dataset.on_device(device)
        indices = indices.to(device)
        source = (
            (images[chunk], labels[chunk])
            for chunk in (indices[b * batch_size : (b + 1) * batch_size] for b in range(count - start))
        )
    for number, (x, y) in enumerate(source, start=start):
        yield _finish(x, dataset, augment, seed, epoch, rank, number), y


def _finish(
    images: torch.Tensor,
    dataset: Dataset,
    augment: Optional[GpuAugment],
    seed: int,
    epoch: int,
    rank: int,
    number: int,
) -> torch.Tensor:
    if augment is None:
        return normalize(images, dataset.mean, dataset.std)
    # The augment's own mean/std win (a recipe may normalise CIFAR-100 with CIFAR-10's, as CKDSNN's code does).
    mean, std = (dataset.mean, dataset.std) if augment.mean is None else (augment.mean, augment.std)
    if not augment.training:
        return augment(images, mean, std)
    # Seed the draws of this batch alone, inside a fork so the caller's RNG stream is untouched.
    devices = [images.device.index or 0] if images.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(_seed(seed, epoch, rank, number))
        return augment(images, mean, std)


def _streamed(
    dataset: StreamingDataset,
    indices: list,
    batch_size: int,
    device: torch.device,
    num_workers: Optional[int],
    seed: int,
) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    workers = dataset.num_workers if num_workers is None else num_workers
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=indices,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=False,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(seed),  # its workers' seeds: not drawn from the global RNG
    )
    batches_of_loader = iter(loader)
    while True:
        try:
            x, y = next(batches_of_loader)
        except StopIteration:
            return
        except SpikeDistillError as exc:  # raised in a worker: its text carries the worker's traceback
            raise SpikeDistillError(_last_line(str(exc.args[0]) if exc.args else str(exc))) from None
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _last_line(message: str) -> str:
    """``...Original Traceback...\nspikedistill.errors.SpikeDistillError: cannot read ...`` → ``cannot read ...``."""
    line = [part for part in message.splitlines() if part.strip()][-1] if message.strip() else message
    prefix = "SpikeDistillError: "
    return line.split(prefix, 1)[1] if prefix in line else line
