"""Leaky integrate-and-fire neurons: a functional core and a thin module.

Dynamics per step t (state in fp32, v starts at 0 on every call — there is no hidden state):

    charge   H[t] = V[t−1] − (1−d)·(V[t−1] − V_rest) + X[t]          decay_input=False (FR code, TET)
             H[t] = V[t−1] − (1−d)·(V[t−1] − V_rest) + (1−d)·X[t]    decay_input=True  (SpikingJelly)
    fire     S[t] = Θ(H[t] − V_th)
    reset    V[t] = H[t]·(1 − S) + v_reset·S                          hard reset (v_reset a number)
             V[t] = H[t] − V_th·S                                     soft reset (v_reset=None)

d is the decay (d = 0.5 ⇔ τ_m = 1/(1−d) = 2, METHODS.md §1.4); V_rest = v_reset for hard reset, 0 for
soft reset. With V_rest = 0 the charge is H = d·V + X. ``detach_reset`` stops the gradient through S in
the reset term. Surrogates: :mod:`spikedistill.neurons.surrogates`.

``lif_multistep`` picks the fused Triton kernel on CUDA when it is installed and the torch reference
everywhere else; both give identical spikes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import nn

from ..errors import SpikeDistillError
from .surrogates import SpikeFunction, get_surrogate


@dataclass(frozen=True)
class LIFConfig:
    decay: float = 0.5
    threshold: float = 1.0
    v_reset: Optional[float] = 0.0  # None → soft reset (subtract threshold)
    surrogate: str = "sigmoid"
    surrogate_param: Optional[float] = None  # None → the surrogate's default
    detach_reset: bool = False
    decay_input: bool = False

    def __post_init__(self):
        if not 0.0 < self.decay <= 1.0:
            raise SpikeDistillError(f"LIF decay must be in (0, 1] (got {self.decay}); d = 0.5 means τ_m = 2")
        if not self.threshold > 0:
            raise SpikeDistillError(f"LIF threshold must be > 0 (got {self.threshold})")
        _, param = get_surrogate(self.surrogate, self.surrogate_param)
        object.__setattr__(self, "surrogate_param", param)

    @property
    def soft_reset(self) -> bool:
        return self.v_reset is None


NEURON_OPTIONS = tuple(LIFConfig.__dataclass_fields__)


def lif_reference(x_seq: torch.Tensor, cfg: LIFConfig) -> torch.Tensor:
    """Plain PyTorch multi-step LIF: a loop over T with autograd. The reference for every kernel."""
    v_rest = 0.0 if cfg.soft_reset else cfg.v_reset
    leak = 1.0 - cfg.decay
    state_dtype = torch.promote_types(x_seq.dtype, torch.float32)  # fp32 state for bf16/fp16 input
    v = torch.full_like(x_seq[0], v_rest, dtype=state_dtype)
    spikes = []
    for x in x_seq:
        x = x.to(state_dtype)
        h = v - leak * (v - v_rest) + (leak * x if cfg.decay_input else x)
        s = SpikeFunction.apply(h - cfg.threshold, cfg.surrogate, cfg.surrogate_param)
        s_reset = s.detach() if cfg.detach_reset else s
        if cfg.soft_reset:
            v = h - cfg.threshold * s_reset
        else:
            v = h * (1.0 - s_reset) + cfg.v_reset * s_reset
        spikes.append(s)
    return torch.stack(spikes).to(x_seq.dtype)


def _fused_available(x_seq: torch.Tensor) -> bool:
    if not x_seq.is_cuda:
        return False
    from .kernels import triton_available

    return triton_available()


def lif_multistep(x_seq: torch.Tensor, cfg: LIFConfig = LIFConfig(), backend: str = "auto") -> torch.Tensor:
    """Spikes ``[T, ...]`` for input currents ``x_seq`` ``[T, ...]``, starting from rest.

    ``backend``: ``"auto"`` (fused kernel on CUDA, reference elsewhere), ``"torch"`` or ``"triton"``.
    """
    if x_seq.dim() < 2:
        raise SpikeDistillError(f"LIF input must be time-first [T, ...] with at least 2 dims, got {tuple(x_seq.shape)}")
    if backend == "auto":
        backend = "triton" if _fused_available(x_seq) else "torch"
    if backend == "torch":
        return lif_reference(x_seq, cfg)
    if backend == "triton":
        from .kernels import lif_fused

        return lif_fused(x_seq, cfg)
    raise SpikeDistillError(f"unknown LIF backend '{backend}'; known: auto, torch, triton")


class LIF(nn.Module):
    """Multi-step LIF module over time-first input ``[T, B, ...]``; stateless between calls."""

    def __init__(self, backend: str = "auto", **options):
        super().__init__()
        unknown = set(options) - set(NEURON_OPTIONS)
        if unknown:
            raise SpikeDistillError(
                f"unknown neuron option(s) {sorted(unknown)}; known: {', '.join(NEURON_OPTIONS)}"
            )
        self.cfg = LIFConfig(**options)
        self.backend = backend

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return lif_multistep(x_seq, self.cfg, self.backend)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.cfg).items())
