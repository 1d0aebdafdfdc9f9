"""Any-T evaluation of event data: what "run at k < T_max timesteps" means when the input is a recording.

Two policies (``policy=``):

* ``"prefix"`` (default) — the network sees the first k of the T_max frames. This is the deployment
  the library is built for: frames arrive in time order, and stopping after k of them means both less
  compute AND less waiting for the sensor (latency k/T_max of the recording). Because the network is
  causal in eval mode, top-1 at every k comes from ONE forward pass at T_max (cumulative mean of the
  per-step logits, :func:`spikedistill.fullrange_accuracy`). Each frame keeps the statistics the network
  was trained on (≈ n/T_max events).
* ``"rebin"`` — the whole recording is re-cut into k frames. It sees every event whatever k is, so it
  cuts compute but not latency (the recording must be complete before frame 1 exists), and frames hold
  T_max/k times more events than in training. It is what papers that "evaluate at T = k" with
  ``frames_number = k`` report (METHODS.md §1.9). It needs one pass per k (T_max passes in all).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator, Optional

import torch

from ...errors import SpikeDistillError
from ...evaluate.fullrange import fullrange_accuracy
from .datasets import EventDataset

ANY_T_POLICIES = ("prefix", "rebin")
DEFAULT_ANY_T_POLICY = "prefix"


def check_policy(policy: str) -> str:
    if policy not in ANY_T_POLICIES:
        from ...errors import did_you_mean

        raise SpikeDistillError(f"unknown any-T policy '{policy}';{did_you_mean(policy, ANY_T_POLICIES)} known: prefix, rebin")
    return policy


def frames_at(dataset: EventDataset, timesteps: int, policy: str = DEFAULT_ANY_T_POLICY) -> EventDataset:
    """The dataset as ``timesteps`` frames per sample under ``policy``."""
    check_policy(policy)
    if not isinstance(timesteps, int) or isinstance(timesteps, bool) or timesteps < 1:
        raise SpikeDistillError(f"timesteps must be a positive integer, got {timesteps!r}")
    if timesteps == dataset.timesteps:
        return dataset
    if policy == "rebin":
        return dataset.rebinned(timesteps)
    if timesteps > dataset.timesteps:
        raise SpikeDistillError(
            f"dataset '{dataset.name}' has {dataset.timesteps} frames per sample, so its prefix cannot give "
            f"{timesteps}; load it with timesteps={timesteps} or use policy='rebin'")
    return replace(dataset, images=dataset.images[:, :timesteps], _device_cache={})


def frame_batches(dataset: EventDataset, batch_size: int, device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """In-order ``(frames [B, T, C, H, W], labels)`` on ``device`` (no augmentation, no shuffling)."""
    if batch_size < 1:
        raise SpikeDistillError(f"batch_size must be >= 1, got {batch_size}")
    images, labels = dataset.on_device(device)
    for start in range(0, len(dataset), batch_size):
        yield images[start:start + batch_size].float(), labels[start:start + batch_size]


@torch.no_grad()
def fullrange_accuracy_events(model: torch.nn.Module, dataset: EventDataset, max_timesteps: Optional[int] = None,
                              policy: str = DEFAULT_ANY_T_POLICY, batch_size: int = 64,
                              device=None) -> dict[int, float]:
    """``{k: top-1 %}`` for k = 1..max_timesteps (default: the dataset's T) under the any-T ``policy``.

    ``prefix``: one pass at T_max. ``rebin``: for each k a pass over the recordings re-binned into k
    frames, scored on the mean of all k per-step logits.
    """
    check_policy(policy)
    max_timesteps = dataset.timesteps if max_timesteps is None else max_timesteps
    if device is None:
        device = next(model.parameters()).device
    if policy == "prefix":
        data = frames_at(dataset, max_timesteps, "prefix")
        return fullrange_accuracy(model, frame_batches(data, batch_size, device), max_timesteps, device)
    result = {}
    for k in range(1, max_timesteps + 1):
        data = frames_at(dataset, k, "rebin")
        result[k] = fullrange_accuracy(model, frame_batches(data, batch_size, device), k, device)[k]
    return result
