"""Fused GPU kernels for the LIF neuron (Triton); the design is in docs/speed.md.

``lif_fused(x_seq, cfg)`` computes exactly what :func:`spikedistill.neurons.dynamics.lif_reference` does —
identical spikes, the same surrogate gradients — in one pass over the input forward and one backward,
saving only ``u = H − V_th`` in the input dtype. It runs through two ``torch.library`` custom ops,
``spikedistill::lif_forward`` and ``spikedistill::lif_backward``, so ``torch.compile`` traces it without a
graph break. Triton is imported only when a kernel launches; on the CPU the kernels run under Triton's
interpreter when ``TRITON_INTERPRET=1`` is set before that first launch (the tests do this).

``bn_lif_fused`` is the same neuron with BatchNorm folded in (``spikedistill::bn_lif_forward`` /
``bn_lif_backward``; see :mod:`spikedistill.neurons.batchnorm`).
"""

from __future__ import annotations

import os

import torch

from .ops import bn_lif_fused, lif_fused

__all__ = ["bn_lif_fused", "lif_fused", "triton_available"]


def triton_available() -> bool:
    """True when Triton imports and can run here: a CUDA GPU, or its CPU interpreter (TRITON_INTERPRET=1)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET", "0") == "1"
