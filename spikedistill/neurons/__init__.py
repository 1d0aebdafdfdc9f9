"""Spiking neurons: LIF dynamics (functional + module), surrogate gradients, fused kernels.

Rooms: ``surrogates`` (Θ and its surrogate gradients) ← ``dynamics`` (LIFConfig, the reference loop,
the sequence algorithm) ← ``batchnorm`` (BatchNorm folded into the neuron) ← ``kernels`` (Triton) ←
``lif`` (the module and the one dispatcher). Arrows point to what a module imports; none points back.
"""

from .dynamics import NEURON_OPTIONS, LIFConfig, lif_reference
from .lif import LIF, lif_multistep
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
