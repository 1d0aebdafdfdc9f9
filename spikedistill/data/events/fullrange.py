"""Event data at any T: what "run at k < T_max timesteps" means when the input is a recording.

This module cuts the frames (:func:`frames_at`); the scoring is
:func:`spikedistill.evaluate.fullrange_accuracy_events`.

Two policies (``policy=``):

* ``"prefix"`` (default) — the network sees the first k of the T_max frames. This is the deployment
  the library is built for: frames arrive in time order, and stopping after k of them means both less
  compute AND less waiting for the sensor (latency k/T_max of the recording). Because the network is
  causal in eval mode, top-1 at every k comes from ONE forward pass at T_max (cumulative mean of the
  per-step logits). Each frame keeps the statistics the network
  was trained on (≈ n/T_max events).
* ``"rebin"`` — the whole recording is re-cut into k frames. It sees every event whatever k is, so it
  cuts compute but not latency (the recording must be complete before frame 1 exists), and frames hold
  T_max/k times more events than in training. It is what papers that "evaluate at T = k" with
  ``frames_number = k`` report (docs/events.md#any-t-policy-default-prefix). It needs one pass per k
  (T_max passes in all).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import torch

from ...checks import check_positive_int
from ...errors import SpikeDistillError
from .dataset import EventDataset

ANY_T_POLICIES = ("prefix", "rebin")
DEFAULT_ANY_T_POLICY = "prefix"


def check_policy(policy: str) -> str:
    if policy not in ANY_T_POLICIES:
        from ...errors import did_you_mean

        raise SpikeDistillError(f"unknown any-T policy '{policy}';{did_you_mean(policy, ANY_T_POLICIES)} known: "
                                "prefix, rebin")
    return policy


def frames_at(dataset: EventDataset, timesteps: int, policy: str = DEFAULT_ANY_T_POLICY) -> EventDataset:
    """The dataset as ``timesteps`` frames per sample under ``policy``."""
    check_policy(policy)
    check_positive_int("timesteps", timesteps)
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
