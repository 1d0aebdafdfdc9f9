"""Per-sample early exit: stop at the first step whose running prediction is confident enough.

The running prediction after k steps is the cumulative mean of the logits, ``z^(k) = (1/k)·Σ_{t≤k} z[t]``
(the same one full-range top-1 scores). A sample exits at the first k with ``max softmax(z^(k)) ≥
threshold``, or at T_max when no step is confident enough. Because eval mode is causal, one pass at
T_max gives every sample's exit step for every threshold at once; the sweep reports accuracy against
mean timesteps (and mean energy per sample, counted up to each sample's own exit step).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..errors import SpikeDistillError

DEFAULT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)


def exit_steps(confidence: torch.Tensor, threshold: float) -> torch.Tensor:
    """``[N]`` 0-based exit step per sample from ``[T, N]`` running confidences."""
    confident = confidence >= threshold
    confident[-1] = True  # no confident step: run to T_max
    return confident.to(torch.int8).argmax(0)  # first True


def early_exit_sweep(
    confidence: torch.Tensor,
    correct: torch.Tensor,
    energy_mj: torch.Tensor | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict:
    """Accuracy (%), mean timesteps and mean energy (mJ per sample) at each confidence threshold.

    ``confidence`` ``[T, N]``: max softmax of the running prediction; ``correct`` ``[T, N]``: whether
    it is right; ``energy_mj`` ``[T, N]``: each sample's cumulative energy after steps 1..k.
    """
    if confidence.shape != correct.shape or confidence.dim() != 2 or confidence.shape[1] == 0:
        raise SpikeDistillError("early exit needs matching non-empty [T, N] confidence and correctness, got "
                                f"{tuple(confidence.shape)} and {tuple(correct.shape)}")
    bad = [t for t in thresholds if not 0.0 < float(t) <= 1.0]
    if bad:
        raise SpikeDistillError(f"early-exit thresholds must be in (0, 1] (got {bad}); e.g. --early-exit 0.8,0.9,0.99")
    samples = torch.arange(confidence.shape[1])
    rows = {"thresholds": [], "top1": [], "mean_timesteps": [], "energy_mj": []}
    for threshold in thresholds:
        steps = exit_steps(confidence, float(threshold)).long()
        rows["thresholds"].append(float(threshold))
        rows["top1"].append(100.0 * correct[steps, samples].float().mean().item())
        rows["mean_timesteps"].append((steps + 1).double().mean().item())
        if energy_mj is not None:
            rows["energy_mj"].append(energy_mj[steps, samples].double().mean().item())
    if energy_mj is None:
        del rows["energy_mj"]
    return rows


def format_early_exit(sweep: dict) -> str:
    """A plain-text table of an early-exit sweep."""
    has_energy = "energy_mj" in sweep
    lines = ["threshold  top-1 %  mean T" + ("  energy mJ" if has_energy else "")]
    for i, threshold in enumerate(sweep["thresholds"]):
        line = f"{threshold:9.3f}  {sweep['top1'][i]:7.2f}  {sweep['mean_timesteps'][i]:6.3f}"
        if has_energy:
            line += f"  {sweep['energy_mj'][i]:9.4g}"
        lines.append(line)
    return "\n".join(lines)
