"""One-pass full-range evaluation (METHODS.md §1.9).

In eval mode BN uses running statistics and every neuron is causal, so the first k steps of a T_max
run equal a separate k-step run. Top-1 at every k ≤ T_max therefore comes from one forward pass at
T_max, scoring the cumulative mean of the per-step logits  z_ens^(k) = (1/k)·Σ_{t≤k} z[t].
Accuracies are percentages.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ..errors import SpikeDistillError


def cumulative_mean(logits: torch.Tensor) -> torch.Tensor:
    """``[T, B, K]`` per-step logits → ``[T, B, K]`` where row k−1 is the mean of the first k steps."""
    steps = torch.arange(1, logits.shape[0] + 1, device=logits.device, dtype=logits.dtype)
    return logits.cumsum(0) / steps.view(-1, *([1] * (logits.dim() - 1)))


def fullrange_correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Number of correct predictions at every k: ``[T]`` counts from ``[T, B, K]`` logits."""
    return (cumulative_mean(logits.float()).argmax(-1) == labels.unsqueeze(0)).sum(1)


def _as_time_first(x: torch.Tensor) -> torch.Tensor:
    # Loaders collate event frames batch-first [B, T, C, H, W]; models take time-first.
    return x.transpose(0, 1) if x.dim() == 5 else x


@torch.no_grad()
def fullrange_accuracy(
    model: torch.nn.Module,
    loader: Iterable,
    max_timesteps: int,
    device: torch.device | str | None = None,
) -> dict[int, float]:
    """``{k: top-1 %}`` for every k in 1..max_timesteps, from one forward pass per batch at max_timesteps.

    ``loader`` yields ``(inputs, labels)``; inputs are images ``[B,C,H,W]`` or frames ``[B,T,C,H,W]``
    (with T = max_timesteps).
    """
    if not isinstance(max_timesteps, int) or max_timesteps < 1:
        raise SpikeDistillError(f"max_timesteps must be a positive integer (got {max_timesteps!r})")
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = torch.zeros(max_timesteps, dtype=torch.long, device=device)
    total = 0
    try:
        for inputs, labels in loader:
            inputs = _as_time_first(inputs.to(device, non_blocking=True))
            labels = labels.to(device, non_blocking=True)
            timesteps = None if inputs.dim() == 5 else max_timesteps
            logits = model(inputs, timesteps=timesteps)
            if logits.shape[0] != max_timesteps:
                raise SpikeDistillError(
                    f"model returned {logits.shape[0]} timesteps, expected {max_timesteps}; "
                    "frame inputs must carry max_timesteps frames"
                )
            correct += fullrange_correct(logits, labels)
            total += labels.numel()
    finally:
        model.train(was_training)
    if total == 0:
        raise SpikeDistillError("the evaluation loader yielded no samples; check the dataset path and split")
    return {k + 1: 100.0 * c / total for k, c in enumerate(correct.tolist())}
