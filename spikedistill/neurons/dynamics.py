"""LIF dynamics as pure functions: the configuration, the reference loop and the sequence algorithm.

Dynamics per step t (state in fp32, v starts at 0 on every call — there is no hidden state):

    charge   H[t] = V[t−1] − (1−d)·(V[t−1] − V_rest) + X[t]          decay_input=False (FR code, TET)
             H[t] = V[t−1] − (1−d)·(V[t−1] − V_rest) + (1−d)·X[t]    decay_input=True  (SpikingJelly)
    fire     S[t] = Θ(H[t] − V_th)
    reset    V[t] = H[t]·(1 − S) + v_reset·S                          hard reset (v_reset a number)
             V[t] = H[t] − V_th·S                                     soft reset (v_reset=None)

d is the decay (d = 0.5 ⇔ τ_m = 1/(1−d) = 2, the full-range paper's neuron:
docs/conventions.md#the-neuron); V_rest = v_reset for hard reset, 0 for soft reset. With V_rest = 0
the charge is H = d·V + X. ``detach_reset`` stops the gradient through S in the reset term.
Surrogates: :mod:`spikedistill.neurons.surrogates`.

``lif_reference`` is the autograd loop every implementation is tested against; ``lif_sequence`` is the
fused kernel's algorithm in torch ops (one autograd node that keeps only u). Choosing between them and
the Triton kernel is :func:`spikedistill.neurons.lif.lif_multistep`'s job; nothing here dispatches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..checks import check_bool, check_number, must_be
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
        check_number("LIF decay", self.decay, 0.0, 1.0, inclusive=False,
                     say=lambda name, value, _: f"{must_be(name, value, 'in (0, 1]')}; d = 0.5 means τ_m = 2")
        check_number("LIF threshold", self.threshold, 0.0, inclusive=False)
        if self.v_reset is not None:
            check_number("LIF v_reset", self.v_reset, say=lambda name, value, rule: f"{must_be(name, value, rule)}; "
                         "None means soft reset")
        check_bool("LIF detach_reset", self.detach_reset)
        check_bool("LIF decay_input", self.decay_input)
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


def sequence_forward(x_seq, cfg: LIFConfig, keep_u: bool, affine=None, residual=None, keep_spikes=True):
    """The dynamics without autograd: ``(spikes, u)`` with ``u = H − V_th`` per step in the state dtype
    (None unless ``keep_u``; spikes None unless ``keep_spikes`` — a backward pass that recomputes u
    needs no T-sized spike tensor). ``affine = (scale, shift)`` applies ``x·scale[c] + shift[c]`` to each
    step first (BatchNorm folded in, channel dim 1 of a step) and ``residual`` is added after it — the
    arithmetic, in order, of the Triton kernel's forward.

    Written for a CPU, where each op is a pass over memory: the loop works step by step on buffers that
    stay in cache (no T-sized temporaries: fresh large buffers cost page faults), writes in place and
    with ``out=``, and takes four ops per step in the common case — charge (one ``add``, see
    :func:`_charge`), fire (``ge`` straight into the spikes), reset (one ``addcmul``), and u. The values
    are the reference's, bit for bit: ``H ≥ V_th`` ⇔ ``H − V_th ≥ 0`` in IEEE arithmetic, and each reset
    gives what the reference's multiply-add gives for S ∈ {0, 1}."""
    state_dtype = torch.promote_types(x_seq.dtype, torch.float32)
    leak = 1.0 - cfg.decay
    v_rest = 0.0 if cfg.soft_reset else cfg.v_reset
    timesteps = x_seq.shape[0]
    spikes = torch.empty_like(x_seq) if keep_spikes else None
    spike_step = None if keep_spikes else torch.empty_like(x_seq[0])
    u_seq = torch.empty_like(x_seq, dtype=state_dtype) if keep_u else None
    step_buffer = None if keep_u else torch.empty_like(x_seq[0], dtype=state_dtype)
    v = torch.empty_like(x_seq[0], dtype=state_dtype) if timesteps > 1 else None
    scratch = None if _charge_is_one_op(leak, v_rest) else torch.empty_like(x_seq[0], dtype=state_dtype)
    prepared = affine is not None or residual is not None or cfg.decay_input
    if affine is not None:
        shape = (-1,) + (1,) * (x_seq.dim() - 3)
        scale, shift = (a.to(state_dtype).view(shape) for a in affine)
    for t in range(timesteps):
        h = u_seq[t] if keep_u else step_buffer
        x = x_seq[t]
        if prepared:  # the neuron's input, in h: x·scale + shift (two roundings, as the kernel), + r, · leak
            if affine is not None:
                torch.mul(x, scale, out=h).add_(shift)
            else:
                h.copy_(x)
            if residual is not None:
                h.add_(residual[t])
            if cfg.decay_input:
                h.mul_(leak)
            x = h
        if t == 0:  # from rest: H = V_rest − leak·0 + X
            if v_rest != 0.0:
                torch.add(x, v_rest, out=h)
            elif not prepared:
                h.copy_(x)
        else:
            _charge(v, x, leak, v_rest, h, scratch)
        s = torch.ge(h, cfg.threshold, out=spikes[t] if keep_spikes else spike_step)  # S: exact 0 or 1
        if t < timesteps - 1:
            if cfg.soft_reset:  # V = H − V_th·S
                torch.add(h, s, alpha=-cfg.threshold, out=v)
            else:               # V = H·(1 − S) + v_reset·S = H − H·S (+ v_reset·S)
                torch.addcmul(h, h, s, value=-1.0, out=v)
                if cfg.v_reset != 0.0:
                    v.add_(s, alpha=cfg.v_reset)
        if keep_u:
            h.sub_(cfg.threshold)
    return spikes, u_seq


def _charge_is_one_op(leak: float, v_rest: float) -> bool:
    """With V_rest = 0 and leak ∈ {½, 0}, ``V − leak·V`` is exactly ``(1 − leak)·V`` (a multiplication
    by ½ or 1 does not round), so H = X + d·V is one ``add`` — the same bits, fused or not."""
    return v_rest == 0.0 and leak in (0.5, 0.0)


def _charge(v, x, leak: float, v_rest: float, out, scratch) -> None:
    """``out = V − leak·(V − V_rest) + X``, rounded as :func:`lif_reference` rounds it (``out`` may be ``x``)."""
    if scratch is None:
        torch.add(x, v, alpha=1.0 - leak, out=out)
        return
    if v_rest != 0.0:
        torch.sub(v, v_rest, out=scratch).mul_(leak)
    else:
        torch.mul(v, leak, out=scratch)
    torch.sub(v, scratch, out=scratch)
    torch.add(scratch, x, out=out)


def sequence_backward(grad_spikes, u_seq, cfg: LIFConfig) -> torch.Tensor:
    """∂L/∂X from ∂L/∂S and the saved u (state dtype): the recurrence in reverse.

    With gV[t] = d·gH[t+1] the gradient that flows into V[t] (``H = V − leak·(V − V_rest) + X``):

        gH[t] = σ'(u[t])·gS[t] + d·c[t]·gH[t+1],   c = ∂V/∂H + ∂V/∂S·σ'(u)   (∂V/∂S dropped with detach_reset)

    with ∂V/∂H = 1 − S, ∂V/∂S = v_reset − H for a hard reset and 1, −V_th for a soft one; gX = gH (leak·gH
    with decay_input). Step by step on cache-sized buffers, as the forward: two one-step buffers (σ' and
    c) serve every step, gH[t+1] is read from the output, and the decay rides in the ``addcmul``. Equal to
    the kernel's formulas up to rounding (d·gH for gH − leak·gH, the products reassociated)."""
    surrogate, param = get_surrogate(cfg.surrogate, cfg.surrogate_param)
    timesteps = u_seq.shape[0]
    grad_x = torch.empty_like(u_seq)
    surrogate_grad = torch.empty_like(u_seq[0])
    coupling_buffer = torch.empty_like(u_seq[0]) if timesteps > 1 and not cfg.soft_reset else None
    for t in range(timesteps - 1, -1, -1):
        u = u_seq[t]
        surrogate.grad(u, param, out=surrogate_grad)
        grad_h = torch.mul(grad_spikes[t], surrogate_grad, out=grad_x[t])
        if t < timesteps - 1:
            coupling = _coupling(u, surrogate_grad, cfg, coupling_buffer)  # None: c = 1
            if coupling is None:
                grad_h.add_(grad_x[t + 1], alpha=cfg.decay)
            else:
                grad_h.addcmul_(coupling, grad_x[t + 1], value=cfg.decay)
    return grad_x.mul_(1.0 - cfg.decay) if cfg.decay_input else grad_x


def _coupling(u, surrogate_grad, cfg: LIFConfig, buffer):
    """``∂V/∂H + ∂V/∂S·σ'(u)`` for one step (see :func:`sequence_backward`); None when it is 1. Written
    into ``buffer`` (hard reset) or ``surrogate_grad`` (soft reset, which it overwrites)."""
    if cfg.soft_reset:
        return None if cfg.detach_reset else surrogate_grad.mul_(-cfg.threshold).add_(1.0)
    not_fired = torch.lt(u, 0.0, out=buffer)  # 1 − S, written as floats (no bool pass)
    if cfg.detach_reset:
        return not_fired
    # (1 − S) − (H − v_reset)·σ' with H − v_reset = u + (V_th − v_reset): two passes, no temporary
    not_fired.addcmul_(u, surrogate_grad, value=-1.0)
    offset = cfg.threshold - cfg.v_reset
    return not_fired.add_(surrogate_grad, alpha=-offset) if offset != 0.0 else not_fired


class _LIFSequence(torch.autograd.Function):
    """The fused kernel's algorithm in torch ops, for CPUs and GPUs without Triton.

    Forward runs the dynamics without autograd and keeps only ``u = H − V_th`` per step (in the state
    dtype), or the input itself when it is expanded over T (u is then recomputed in backward); backward
    runs the recurrence in reverse, carrying ∂L/∂V — the formulas of ``kernels/lif_triton.py``. Spikes
    are bit-identical to :func:`lif_reference` and gradients equal it up to rounding (hard reset recovers
    H as u + V_th). The autograd loop keeps three tensors per step for a hard reset (u, H, 1 − S) and
    records a dozen graph nodes; this keeps one and records one.
    """

    @staticmethod
    def forward(ctx, x_seq: torch.Tensor, cfg: LIFConfig) -> torch.Tensor:
        keep = ctx.needs_input_grad[0]
        # An input expanded over T (a static-image stem's output, stride 0 over time) is one step of
        # memory: keeping it and recomputing u in backward keeps 1/T of what T steps of u would.
        recompute = keep and x_seq.shape[0] > 1 and x_seq.stride(0) == 0
        spikes, u_seq = sequence_forward(x_seq, cfg, keep_u=keep and not recompute)
        if keep:
            ctx.save_for_backward(x_seq if recompute else u_seq)
            ctx.cfg, ctx.recompute = cfg, recompute
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        (saved,) = ctx.saved_tensors
        u_seq = sequence_forward(saved, ctx.cfg, keep_u=True, keep_spikes=False)[1] if ctx.recompute else saved
        return sequence_backward(grad_spikes, u_seq, ctx.cfg).to(grad_spikes.dtype), None


def lif_sequence(x_seq: torch.Tensor, cfg: LIFConfig) -> torch.Tensor:
    """Multi-step LIF as one autograd node that saves only u (see :class:`_LIFSequence`)."""
    return _LIFSequence.apply(x_seq, cfg)
