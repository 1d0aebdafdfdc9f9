"""The fused multi-step LIF in Triton: one program per block of neurons loops over the T steps.

Imported lazily by :mod:`spikedistill.neurons.kernels` (Triton picks compiled or interpreted kernels
when ``@triton.jit`` runs, so ``TRITON_INTERPRET=1`` must be set before this module is imported).

Memory layout. Each step ``x[t]`` is one dense block of N elements (any dense order: contiguous or
channels_last); step t starts ``stride_xt`` elements after step t−1 — N, or 0 for an input expanded
over T. Outputs (spikes, saved u, input gradient) are always N apart per step, in the same order.

Forward (fp32 state, the input read once, two writes per neuron and step):

    x ← x·scale[c] + shift[c] (+ r)     only with BatchNorm folded in (AFFINE, RESIDUAL; see below)
    h = v − leak·(v − v_rest) + x        (x ← leak·x with decay_input; same op order as lif_reference)
    u = h − V_th;  S = 1[u ≥ 0]
    v = h − V_th·S (soft reset) or h·(1 − S) + v_reset·S (hard reset), written as selects on S

Saved for the backward pass: ``u = H − V_th`` only, in the input dtype; the spike is recomputed as
``u ≥ 0`` and H = u + V_th. Rounding to bf16/fp16 keeps the sign, but a tiny negative u could become
−0.0, which would read back as a spike: where no spike fired, u is stored as at most ``no_spike_ceiling``
(−2⁻²⁴ for fp16, −2⁻¹²⁶ for bf16: negatives that survive the rounding, a change far below anything
a surrogate can resolve; −0.0, a no-op, for fp32, which stores u exactly).

Backward, from t = T−1 down to 0 with the gradient gv that flows into V[t] from step t+1:

    gS' = gS + ∂V/∂S·gv      (∂V/∂S = −V_th soft, v_reset − H hard; dropped with detach_reset)
    gH  = ∂V/∂H·gv + gS'·σ'(u)      (∂V/∂H = 1 soft, 1 − S hard)
    gX  = gH (or leak·gH with decay_input);  gv ← gH − leak·gH

BatchNorm folded in (``neurons/batchnorm.py``). With AFFINE the kernel reads the BatchNorm *input* and
applies the per-channel affine ``scale = γ·invstd``, ``shift = −mean·scale + β`` itself (computed here from
the fp32 γ, β, mean and invstd, in the order of ``batchnorm.affine_of``) (c = the element's
channel: ``(offset // channel_stride) % C``, right for any dense layout); with RESIDUAL it adds a second
input (the block's shortcut) before charging. Then the forward writes only the spikes (STORE_U off)
and the backward pass re-runs this kernel with STORE_SPIKES off to get u back, transiently, one layer
at a time: what is kept between the passes is the BatchNorm input, which the unfused BatchNorm keeps too.

The surrogates σ' are the ``formula``s of :mod:`spikedistill.neurons.surrogates`, on the same two
constants ``(sg_a, sg_b) = Surrogate.constants(param)`` (computed on the host, in double precision) and
selected by ``SURROGATE = Surrogate.code``; the parameter table exists only there.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit(do_not_specialize=["T"])
def lif_forward_kernel(
    x_ptr, residual_ptr, weight_ptr, bias_ptr, mean_ptr, invstd_ptr, spike_ptr, u_ptr,
    T, N, stride_xt, stride_rt, C, channel_stride,
    leak, threshold, v_reset, v_rest, no_spike_ceiling,
    SOFT_RESET: tl.constexpr, DECAY_INPUT: tl.constexpr,
    AFFINE: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, RESIDUAL: tl.constexpr,
    STORE_SPIKES: tl.constexpr, STORE_U: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < N
    x_ptrs = x_ptr + offsets
    residual_ptrs = residual_ptr + offsets
    if AFFINE:  # BatchNorm folded in: x ← x·scale[c] + shift[c], c the channel of each element
        channel = (offsets // channel_stride) % C
        scale = tl.load(invstd_ptr + channel, mask=mask, other=0.0)
        if HAS_WEIGHT:
            scale = tl.load(weight_ptr + channel, mask=mask, other=0.0) * scale
        shift = -tl.load(mean_ptr + channel, mask=mask, other=0.0) * scale
        if HAS_BIAS:
            shift = shift + tl.load(bias_ptr + channel, mask=mask, other=0.0)
    out_offsets = offsets
    v = tl.zeros([BLOCK], dtype=tl.float32) + v_rest
    for _ in range(T):
        x = tl.load(x_ptrs, mask=mask, other=0.0).to(tl.float32)
        if AFFINE:
            x = x * scale + shift
        if RESIDUAL:
            x = x + tl.load(residual_ptrs, mask=mask, other=0.0).to(tl.float32)
            residual_ptrs += stride_rt
        if DECAY_INPUT:
            x = leak * x
        h = v - leak * (v - v_rest) + x
        u = h - threshold
        fired = u >= 0.0
        if STORE_SPIKES:
            spike = tl.where(fired, 1.0, 0.0)  # via fp32: the interpreter cannot cast int1 to bf16
            tl.store(spike_ptr + out_offsets, spike.to(spike_ptr.dtype.element_ty), mask=mask)
        if STORE_U:
            u_saved = tl.where(fired, u, tl.minimum(u, no_spike_ceiling))
            tl.store(u_ptr + out_offsets, u_saved.to(u_ptr.dtype.element_ty), mask=mask)
        if SOFT_RESET:
            v = tl.where(fired, h - threshold, h)  # == h − V_th·S for S ∈ {0, 1}
        else:
            v = tl.where(fired, v_reset, h)  # == h·(1 − S) + v_reset·S
        x_ptrs += stride_xt
        out_offsets += N


@triton.jit(do_not_specialize=["T"])
def lif_backward_kernel(
    grad_spike_ptr, u_ptr, grad_x_ptr,
    T, N,
    leak, threshold, v_reset, sg_a, sg_b,
    SOFT_RESET: tl.constexpr, DECAY_INPUT: tl.constexpr, DETACH_RESET: tl.constexpr,
    SURROGATE: tl.constexpr, BLOCK: tl.constexpr,
):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < N
    step_offsets = offsets + (T - 1).to(tl.int64) * N
    grad_v = tl.zeros([BLOCK], dtype=tl.float32)
    for _ in range(T):
        grad_spike = tl.load(grad_spike_ptr + step_offsets, mask=mask, other=0.0).to(tl.float32)
        u = tl.load(u_ptr + step_offsets, mask=mask, other=0.0).to(tl.float32)
        fired = u >= 0.0

        # SURROGATE is Surrogate.code; each branch is that surrogate's formula(u, sg_a, sg_b)
        if SURROGATE == 0:  # sigmoid
            sig = tl.sigmoid(sg_a * u)
            surrogate = sg_a * sig * (1.0 - sig)
        elif SURROGATE == 1:  # atan
            scaled = sg_b * u
            surrogate = sg_a / (1.0 + scaled * scaled)
        elif SURROGATE == 2:  # triangle
            surrogate = sg_b * tl.maximum(sg_a - tl.abs(u), 0.0)
        else:  # rectangular
            surrogate = tl.where(tl.abs(u) < sg_a, 1.0, 0.0) / sg_b

        if SOFT_RESET:  # V = H − V_th·S
            grad_h_reset = grad_v
            grad_s_reset = -grad_v * threshold
        else:  # V = H·(1 − S) + v_reset·S
            h = u + threshold
            grad_h_reset = tl.where(fired, 0.0, grad_v)
            grad_s_reset = grad_v * v_reset - grad_v * h
        if not DETACH_RESET:
            grad_spike = grad_spike + grad_s_reset
        grad_h = grad_h_reset + grad_spike * surrogate
        grad_x = grad_h
        if DECAY_INPUT:
            grad_x = leak * grad_h
        tl.store(grad_x_ptr + step_offsets, grad_x.to(grad_x_ptr.dtype.element_ty), mask=mask)
        grad_v = grad_h - leak * grad_h  # H = V − leak·(V − v_rest) + X
        step_offsets -= N
