"""Fused GPU kernels for the LIF neuron (Triton). Filled by the kernel work; see issue 5."""

from __future__ import annotations


def triton_available() -> bool:
    return False


def lif_fused(x_seq, cfg):
    from ...errors import SpikeDistillError

    raise SpikeDistillError("the fused Triton LIF kernel is not available yet; use backend='torch'")
