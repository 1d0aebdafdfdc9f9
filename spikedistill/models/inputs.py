"""The one rule for what a model is fed from a batch.

Loaders yield static images ``[B, C, H, W]`` or event frames batch-first ``[B, T, C, H, W]``. An SNN
takes frames time-first ``[T, B, C, H, W]`` (one frame per step); an ANN (a teacher) takes their
time-mean ``[B, C, H, W]`` (the FR code's ANN input for DVS data). Training, its
per-epoch test, ``fullrange_accuracy``, ``spikedistill eval`` and the benchmarks all go through
:func:`model_input`, so an ANN scores the same everywhere, and each network gets the batch in its own
precision (float64 data for float32 weights is cast, not an error).
"""

from __future__ import annotations

import itertools

import torch


def model_input(batch: torch.Tensor, spiking: bool, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``[B, C, H, W]`` passes through; ``[B, T, C, H, W]`` frames become ``[T, B, C, H, W]`` for an
    SNN and their mean over T for an ANN. ``dtype``: the network's precision (:func:`input_dtype`); a float
    batch of another precision is cast to it (float64 data for float32 weights, or the reverse)."""
    if dtype is not None and batch.is_floating_point() and batch.dtype != dtype:
        batch = batch.to(dtype)
    if batch.dim() != 5:
        return batch
    return batch.transpose(0, 1) if spiking else batch.mean(1)


def input_dtype(network) -> torch.dtype | None:
    """The precision ``network`` computes in: the dtype of its first floating-point parameter or buffer;
    ``None`` for a network without one (a plain callable), whose input is left as it is."""
    if isinstance(network, torch.nn.Module):
        for tensor in itertools.chain(network.parameters(), network.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
    return None
