"""The fused LIF as ``torch.library`` custom ops with a registered autograd formula.

``spikedistill::lif_forward(x_seq, ...) -> (spikes, u)`` and ``spikedistill::lif_backward(grad_spikes,
u, ...) -> grad_x``. Both have fake (meta) implementations, so ``torch.compile`` sees shapes, dtypes and
strides without running Triton. Only ``u`` is saved between the two.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from ...errors import SpikeDistillError
from ..batchnorm import folded_input_grads
from ..dynamics import LIFConfig, lif_reference
from ..layout import dense_strides
from ..surrogates import SURROGATES

BLOCK_SIZE = 1024  # neurons per program on the GPU: 4 warps × 8 per thread (one 16-byte bf16 vector each)
NUM_WARPS = 4
INTERPRETER_BLOCK_SIZE = 16384  # on the CPU the interpreter runs programs one by one: fewer, wider ones
# The custom ops take a surrogate as its kernel branch (an int: a schema-typed, hashable option).
_SURROGATE_BY_CODE = {s.code: s for s in map(SURROGATES.get, SURROGATES.names())}
KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# Largest value stored for u where no spike fired, so that rounding never turns it into −0.0 (which
# would read back as u ≥ 0, a spike): the smallest negative the saved dtype keeps (see lif_triton).
NO_SPIKE_CEILING = {torch.float32: -0.0, torch.bfloat16: -(2.0**-126), torch.float16: -(2.0**-24)}


def _step_numel(x_seq: torch.Tensor) -> int:
    """Elements per step of a [T, ...] tensor (shape arithmetic: no ``x_seq[0]`` view dispatched)."""
    return math.prod(x_seq.shape[1:])


def _step_layout(x_seq: torch.Tensor) -> Optional[int]:
    """The element stride between steps the kernel can read ``x_seq`` with (N, or 0 for an input
    expanded over T), or None when ``x_seq`` needs a copy first."""
    step = x_seq[0]
    if not dense_strides(step.shape, step.stride()):
        return None
    numel = step.numel()
    if x_seq.shape[0] == 1 or x_seq.stride(0) == numel:
        return numel
    return 0 if x_seq.stride(0) == 0 else None


def _outputs_like(x_seq: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A new [T, ...] tensor whose every step has the memory order of ``x_seq[0]``, steps N apart."""
    step = x_seq[0]
    return torch.empty_strided(x_seq.shape, (step.numel(),) + step.stride(), dtype=dtype, device=x_seq.device)


def _prepare(x_seq: torch.Tensor) -> tuple[torch.Tensor, int]:
    stride_t = _step_layout(x_seq)
    if stride_t is None:
        x_seq = x_seq.contiguous()
        stride_t = x_seq[0].numel()
    return x_seq, stride_t


def _kernels():
    from . import lif_triton

    return lif_triton


def _check_launchable(x: torch.Tensor, kernel) -> None:
    if x.device.type == "cuda":
        return
    if type(kernel).__name__ != "InterpretedFunction":
        raise SpikeDistillError(
            f"the Triton LIF kernel got a {x.device.type} tensor but Triton was loaded for the GPU; set "
            "TRITON_INTERPRET=1 before the first kernel launch to run it on the CPU, or use backend='torch'"
        )


def _block_size(x: torch.Tensor) -> int:
    return BLOCK_SIZE if x.device.type == "cuda" else INTERPRETER_BLOCK_SIZE


def _grid(numel: int, block: int) -> tuple[int]:
    return ((numel + block - 1) // block,)


# needs_exact_strides: torch.compile hands the op its inputs in the strides it was traced with, so the
# outputs' layout (which follows the input's) is the one the fake implementation promised.
@torch.library.custom_op("spikedistill::lif_forward", mutates_args=(), tags=(torch.Tag.needs_exact_strides,))
def lif_forward(
    x_seq: torch.Tensor,
    decay: float,
    threshold: float,
    v_reset: float,
    soft_reset: bool,
    decay_input: bool,
    detach_reset: bool,
    surrogate_code: int,
    surrogate_param: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and the saved u = H − V_th, both [T, ...] in the input dtype. The last three arguments
    only matter to the backward pass; they are here so that autograd can hand them to it."""
    x_seq, stride_t = _prepare(x_seq)
    spikes = _outputs_like(x_seq, x_seq.dtype)
    u_saved = _outputs_like(x_seq, x_seq.dtype)
    if spikes.numel() == 0:
        return spikes, u_saved
    _launch_forward(x_seq, stride_t, spikes, u_saved, decay, threshold, v_reset, soft_reset, decay_input)
    return spikes, u_saved


def _launch_forward(x_seq, stride_t, spikes, u_saved, decay, threshold, v_reset, soft_reset, decay_input,
                    batch_norm=None, channel_stride=1, residual=None, stride_rt=0):
    """Run ``lif_forward_kernel``; writes the spikes and/or u where those tensors are given. With
    ``batch_norm = (weight, bias, mean, invstd)`` (fp32 per channel; weight and bias may be None) it
    folds BatchNorm's affine into the input, and adds ``residual``."""
    weight, bias, mean, invstd = batch_norm if batch_norm is not None else (None,) * 4
    numel = _step_numel(x_seq)
    kernel, block = _kernels().lif_forward_kernel, _block_size(x_seq)
    _check_launchable(x_seq, kernel)
    out = spikes if spikes is not None else u_saved
    kernel[_grid(numel, block)](
        x_seq, x_seq if residual is None else residual,
        *(x_seq if t is None else t for t in (weight, bias, mean, invstd)),
        out if spikes is None else spikes, out if u_saved is None else u_saved,
        x_seq.shape[0], numel, stride_t, stride_rt, 1 if mean is None else mean.numel(), channel_stride,
        1.0 - decay, threshold, 0.0 if soft_reset else v_reset, 0.0 if soft_reset else v_reset,
        0.0 if u_saved is None else NO_SPIKE_CEILING[u_saved.dtype],
        SOFT_RESET=soft_reset, DECAY_INPUT=decay_input, AFFINE=mean is not None, HAS_WEIGHT=weight is not None,
        HAS_BIAS=bias is not None, RESIDUAL=residual is not None,
        STORE_SPIKES=spikes is not None, STORE_U=u_saved is not None, BLOCK=block,
        num_warps=NUM_WARPS, enable_fp_fusion=False,  # no FMA contraction: spikes bit-equal to torch
    )


@lif_forward.register_fake
def _lif_forward_fake(x_seq, decay, threshold, v_reset, soft_reset, decay_input, detach_reset,
                      surrogate_code, surrogate_param):
    if _step_layout(x_seq) is None:
        x_seq = x_seq.contiguous()
    return _outputs_like(x_seq, x_seq.dtype), _outputs_like(x_seq, x_seq.dtype)


@torch.library.custom_op("spikedistill::lif_backward", mutates_args=(), tags=(torch.Tag.needs_exact_strides,))
def lif_backward(
    grad_spikes: torch.Tensor,
    u_saved: torch.Tensor,
    decay: float,
    threshold: float,
    v_reset: float,
    soft_reset: bool,
    decay_input: bool,
    detach_reset: bool,
    surrogate_code: int,
    surrogate_param: float,
) -> torch.Tensor:
    """∂loss/∂x_seq, [T, ...] in the layout and dtype of ``u_saved``."""
    if grad_spikes.stride() != u_saved.stride():
        grad_spikes = torch.empty_like(u_saved, dtype=grad_spikes.dtype).copy_(grad_spikes)
    grad_x = torch.empty_like(u_saved)
    numel = _step_numel(u_saved)
    if grad_x.numel() == 0:
        return grad_x
    kernel, block = _kernels().lif_backward_kernel, _block_size(u_saved)
    _check_launchable(u_saved, kernel)
    sg_a, sg_b = _SURROGATE_BY_CODE[surrogate_code].constants(surrogate_param)
    kernel[_grid(numel, block)](
        grad_spikes, u_saved, grad_x,
        u_saved.shape[0], numel,
        1.0 - decay, threshold, 0.0 if soft_reset else v_reset, sg_a, sg_b,
        SOFT_RESET=soft_reset, DECAY_INPUT=decay_input, DETACH_RESET=detach_reset,
        SURROGATE=surrogate_code, BLOCK=block,
        num_warps=NUM_WARPS, enable_fp_fusion=True,  # gradients need only be close: FMAs welcome
    )
    return grad_x


@lif_backward.register_fake
def _lif_backward_fake(grad_spikes, u_saved, *options):
    return torch.empty_like(u_saved)


def _setup_context(ctx, inputs, output):
    ctx.options = inputs[1:]
    ctx.save_for_backward(output[1])
    ctx.mark_non_differentiable(output[1])


def _backward(ctx, grad_spikes, grad_u):
    (u_saved,) = ctx.saved_tensors
    grad_x = torch.ops.spikedistill.lif_backward(grad_spikes, u_saved, *ctx.options)
    return (grad_x,) + (None,) * len(ctx.options)


lif_forward.register_autograd(_backward, setup_context=_setup_context)


def lif_fused(x_seq: torch.Tensor, cfg: LIFConfig = LIFConfig()) -> torch.Tensor:
    """Spikes ``[T, ...]`` of the LIF with options ``cfg``, through the fused Triton kernels.

    Identical to :func:`~spikedistill.neurons.dynamics.lif_reference` (spikes bit-equal, gradients to fp32
    rounding). fp32/bf16/fp16 inputs run the kernel with fp32 state; float64 (tests, finite differences)
    goes to the torch reference, which keeps float64 state.
    """
    if x_seq.dim() < 2:
        raise SpikeDistillError(f"LIF input must be time-first [T, ...] with at least 2 dims, got {tuple(x_seq.shape)}")
    if x_seq.dtype not in KERNEL_DTYPES:
        if x_seq.dtype == torch.float64:
            return lif_reference(x_seq, cfg)
        raise SpikeDistillError(f"the fused LIF takes float32, bfloat16 or float16 input, got {x_seq.dtype}")
    spikes, _ = torch.ops.spikedistill.lif_forward(x_seq, *_op_options(cfg))
    return spikes


def _op_options(cfg: LIFConfig) -> tuple:
    """The LIF options as the custom ops take them (decay … surrogate_param, in schema order)."""
    return (cfg.decay, cfg.threshold, 0.0 if cfg.soft_reset else cfg.v_reset, cfg.soft_reset, cfg.decay_input,
            cfg.detach_reset, SURROGATES.get(cfg.surrogate).code, cfg.surrogate_param)


# ---- BatchNorm folded into the neuron (neurons/batchnorm.py): keeps x, recomputes u in backward ----------
def _launch_affine(x_seq, weight, bias, mean, invstd, residual, spikes, u, decay, threshold, v_reset,
                   soft_reset, decay_input):
    """The forward kernel with BatchNorm folded in; its per-channel affine is computed in the kernel
    (no extra launches), from fp32 vectors — ``.float().contiguous()`` is free for the usual fp32 ones."""
    batch_norm = tuple(None if t is None else t.float().contiguous() for t in (weight, bias, mean, invstd))
    numel = _step_numel(x_seq)
    _launch_forward(x_seq, numel, spikes, u, decay, threshold, v_reset, soft_reset, decay_input,
                    batch_norm=batch_norm, channel_stride=x_seq.stride(2), residual=residual, stride_rt=numel)


@torch.library.custom_op("spikedistill::bn_lif_forward", mutates_args=(), tags=(torch.Tag.needs_exact_strides,))
def bn_lif_forward(
    x_seq: torch.Tensor,
    weight: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    mean: torch.Tensor,
    invstd: torch.Tensor,
    residual: Optional[torch.Tensor],
    use_batch_stats: bool,
    eps: float,
    decay: float,
    threshold: float,
    v_reset: float,
    soft_reset: bool,
    decay_input: bool,
    detach_reset: bool,
    surrogate_code: int,
    surrogate_param: float,
) -> torch.Tensor:
    """Spikes of ``LIF(x·scale + shift + residual)`` for ``x_seq`` [T, B, C, ...] (steps dense and N apart,
    ``residual`` in the same strides — checked by the caller); writes no u."""
    spikes = torch.empty_like(x_seq)
    if spikes.numel():
        _launch_affine(x_seq, weight, bias, mean, invstd, residual, spikes, None, decay, threshold, v_reset,
                       soft_reset, decay_input)
    return spikes


@bn_lif_forward.register_fake
def _bn_lif_forward_fake(x_seq, *args):
    return torch.empty_like(x_seq)


@torch.library.custom_op("spikedistill::bn_lif_backward", mutates_args=(), tags=(torch.Tag.needs_exact_strides,))
def bn_lif_backward(
    grad_spikes: torch.Tensor,
    x_seq: torch.Tensor,
    weight: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    mean: torch.Tensor,
    invstd: torch.Tensor,
    residual: Optional[torch.Tensor],
    decay: float,
    threshold: float,
    v_reset: float,
    soft_reset: bool,
    decay_input: bool,
    detach_reset: bool,
    surrogate_code: int,
    surrogate_param: float,
) -> torch.Tensor:
    """∂loss/∂(the neuron's input) — recomputes u (transient, one layer) and runs the LIF backward."""
    u = torch.empty_like(x_seq)
    if u.numel() == 0:
        return u
    _launch_affine(x_seq, weight, bias, mean, invstd, residual, None, u, decay, threshold, v_reset,
                   soft_reset, decay_input)
    return torch.ops.spikedistill.lif_backward(grad_spikes, u, decay, threshold, v_reset, soft_reset, decay_input,
                                               detach_reset, surrogate_code, surrogate_param)


@bn_lif_backward.register_fake
def _bn_lif_backward_fake(grad_spikes, x_seq, *args):
    return torch.empty_like(x_seq)


def _bn_setup_context(ctx, inputs, output):
    x_seq, weight, bias, mean, invstd, residual, use_batch_stats, eps = inputs[:8]
    ctx.save_for_backward(x_seq, weight, bias, mean, invstd, residual)
    ctx.batch_norm = (use_batch_stats, eps)
    ctx.options = inputs[8:]


def _bn_backward(ctx, grad_spikes):
    x_seq, weight, bias, mean, invstd, residual = ctx.saved_tensors
    use_batch_stats, eps = ctx.batch_norm
    grad_y = torch.ops.spikedistill.bn_lif_backward(grad_spikes, x_seq, weight, bias, mean, invstd, residual,
                                                    *ctx.options)
    grad_x, grad_w, grad_b, grad_residual = folded_input_grads(
        grad_y, x_seq, weight, bias, mean, invstd, residual, use_batch_stats, eps, ctx.needs_input_grad)
    return (grad_x, grad_w, grad_b, None, None, grad_residual, None, None) + (None,) * len(ctx.options)


bn_lif_forward.register_autograd(_bn_backward, setup_context=_bn_setup_context)


def bn_lif_fused(x_seq, weight, bias, mean, invstd, residual, use_batch_stats: bool, eps: float,
                 cfg: LIFConfig = LIFConfig()) -> torch.Tensor:
    """Spikes of ``LIF(BN(x_seq) + residual)`` through the fused kernels, BN given by its affine
    parameters and (mean, invstd); see :mod:`spikedistill.neurons.batchnorm`."""
    return torch.ops.spikedistill.bn_lif_forward(
        x_seq, weight, bias, mean, invstd, residual, use_batch_stats, eps, *_op_options(cfg))
