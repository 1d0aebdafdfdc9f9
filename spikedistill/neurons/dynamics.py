"""LIF dynamics as pure functions: the configuration, the reference loop and the sequence algorithm.

Dynamics per step t (state in fp32, v starts at 0 on every call — there is no hidden state):

    charge   H[t] = V[t−1] − (1−d)·(V[t−1] − V_rest) + X[t]          decay_input=False (FR code, TET)
             H[t] = V[t−1] − (1−d)·(V[t−1] − V_rest) + (1−d)·X[t]    decay_input=True  (SpikingJelly)
    fire     S[t] = Θ(H[t] − V_th)
    reset    V[t] = H[t]·(1 − S) + v_reset·S                          hard reset (v_reset a number)
             V[t] = H[t] − V_th·S                                     soft reset (v_reset=None)

d is the decay (d = 0.5 ⇔ τ_m = 1/(1−d) = 2, METHODS.md §1.4); V_rest = v_reset for hard reset, 0 for
soft reset. With V_rest = 0 the charge is H = d·V + X. ``detach_reset`` stops the gradient through S in
the reset term. Surrogates: :mod:`spikedistill.neurons.surrogates`.

``lif_reference`` is the autograd loop every implementation is tested against; ``lif_sequence`` is the
fused kernel's algorithm in torch ops (one autograd node that keeps only u). Choosing between them and
the Triton kernel is :func:`spikedistill.neurons.lif.lif_multistep`'s job; nothing here dispatches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

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


def sequence_forward(x_seq, cfg: LIFConfig, keep_u: bool, affine=None, residual=None):
    """The dynamics without autograd: ``(spikes, u)`` with ``u = H − V_th`` per step in the state dtype
    (None unless ``keep_u``). ``affine = (scale, shift)`` applies ``x·scale[c] + shift[c]`` to each step
    first (BatchNorm folded in, channel dim 1 of a step) and ``residual`` is added after it — the
    arithmetic, in order, of the Triton kernel's forward."""
    v_rest = 0.0 if cfg.soft_reset else cfg.v_reset
    leak = 1.0 - cfg.decay
    state_dtype = torch.promote_types(x_seq.dtype, torch.float32)
    u_seq = torch.empty(x_seq.shape, dtype=state_dtype, device=x_seq.device) if keep_u else None
    spikes = torch.empty_like(x_seq)
    v = torch.full_like(x_seq[0], v_rest, dtype=state_dtype)
    if affine is not None:
        shape = (1, -1) + (1,) * (x_seq.dim() - 3)
        scale, shift = (a.to(state_dtype).view(shape) for a in affine)
    for t, x in enumerate(x_seq):
        x = x.to(state_dtype)
        if affine is not None:
            x = x * scale + shift
        if residual is not None:
            x = x + residual[t].to(state_dtype)
        h = v - leak * (v - v_rest) + (leak * x if cfg.decay_input else x)
        u = h - cfg.threshold
        s = (u >= 0).to(state_dtype)
        v = h - cfg.threshold * s if cfg.soft_reset else h * (1.0 - s) + cfg.v_reset * s
        spikes[t] = s
        if keep_u:
            u_seq[t] = u
    return spikes, u_seq


def sequence_backward(grad_spikes, u_seq, cfg: LIFConfig) -> torch.Tensor:
    """∂L/∂X from ∂L/∂S and the saved u: the recurrence in reverse, carrying ∂L/∂V (state dtype)."""
    surrogate = get_surrogate(cfg.surrogate, cfg.surrogate_param)[0].grad
    leak = 1.0 - cfg.decay
    grad_x = torch.empty_like(u_seq)
    grad_v = torch.zeros_like(u_seq[0])
    for t in range(u_seq.shape[0] - 1, -1, -1):
        u = u_seq[t]
        grad_s = grad_spikes[t].to(u.dtype)
        if cfg.soft_reset:            # V = H − V_th·S
            grad_h, grad_s_reset = grad_v, -cfg.threshold * grad_v
        else:                         # V = H·(1 − S) + v_reset·S
            grad_h = torch.where(u >= 0, 0.0, grad_v)
            grad_s_reset = grad_v * (cfg.v_reset - (u + cfg.threshold))
        if not cfg.detach_reset:
            grad_s = grad_s + grad_s_reset
        grad_h = grad_h + grad_s * surrogate(u, cfg.surrogate_param)
        grad_x[t] = leak * grad_h if cfg.decay_input else grad_h
        grad_v = grad_h - leak * grad_h   # H = V − leak·(V − V_rest) + X
    return grad_x


class _LIFSequence(torch.autograd.Function):
    """The fused kernel's algorithm in torch ops, for CPUs and GPUs without Triton.

    Forward runs the dynamics without autograd and keeps only ``u = H − V_th`` per step (in the state
    dtype); backward runs the recurrence in reverse, carrying ∂L/∂V — the formulas of
    ``kernels/lif_triton.py``. Spikes are bit-identical to :func:`lif_reference` and gradients equal it
    up to rounding (hard reset recovers H as u + V_th). The autograd loop keeps three tensors per step
    for a hard reset (u, H, 1 − S) and records a dozen graph nodes; this keeps one and records one.
    """

    @staticmethod
    def forward(ctx, x_seq: torch.Tensor, cfg: LIFConfig) -> torch.Tensor:
        keep = ctx.needs_input_grad[0]
        spikes, u_seq = sequence_forward(x_seq, cfg, keep_u=keep)
        if keep:
            ctx.save_for_backward(u_seq)
            ctx.cfg = cfg
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        (u_seq,) = ctx.saved_tensors
        return sequence_backward(grad_spikes, u_seq, ctx.cfg).to(grad_spikes.dtype), None


def lif_sequence(x_seq: torch.Tensor, cfg: LIFConfig) -> torch.Tensor:
    """Multi-step LIF as one autograd node that saves only u (see :class:`_LIFSequence`)."""
    return _LIFSequence.apply(x_seq, cfg)
