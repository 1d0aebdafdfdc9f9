"""The one rule for what a model is fed from a batch.

Loaders yield static images ``[B, C, H, W]`` or event frames batch-first ``[B, T, C, H, W]``. An SNN
takes frames time-first ``[T, B, C, H, W]`` (one frame per step); an ANN (a teacher) takes their
time-mean ``[B, C, H, W]`` (the FR code's ANN input for DVS data). Training, its
per-epoch test, ``fullrange_accuracy``, ``spikedistill eval`` and the benchmarks all go through
:func:`model_input`, so an ANN scores the same everywhere.
"""

from __future__ import annotations

import torch


def model_input(batch: torch.Tensor, spiking: bool) -> torch.Tensor:
    """``[B, C, H, W]`` passes through; ``[B, T, C, H, W]`` frames become ``[T, B, C, H, W]`` for an
    SNN and their mean over T for an ANN."""
    if batch.dim() != 5:
        return batch
    return batch.transpose(0, 1) if spiking else batch.mean(1)
