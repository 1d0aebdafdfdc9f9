"""Spiking neurons: LIF dynamics (functional + module), surrogate gradients, fused kernels."""

from .lif import LIF, LIFConfig, NEURON_OPTIONS, lif_multistep, lif_reference
from .surrogates import SURROGATES, SpikeFunction, get_surrogate, spike

__all__ = [
    "LIF",
    "LIFConfig",
    "NEURON_OPTIONS",
    "lif_multistep",
    "lif_reference",
    "SURROGATES",
    "SpikeFunction",
    "get_surrogate",
    "spike",
]
