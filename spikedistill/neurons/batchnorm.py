"""BatchNorm folded into the LIF, as pure functions: statistics, affine, and the folded backward.

In a conv → BN → LIF layer, the unfused pair keeps two tensors per neuron and step between the
passes: the BatchNorm input (for BN's backward) and the LIF's ``u``. BatchNorm is a per-channel affine
``y = x·scale + shift`` (``scale = γ·invstd``, ``shift = β − mean·scale``) once its statistics are known,
so the neuron can apply it while it reads ``x``: the forward pass writes only the spikes, and the
backward pass recomputes ``y`` and ``u`` one layer at a time, then runs BatchNorm's own backward formula
on ``x``. What is kept is what BatchNorm alone keeps — the same count as the ReLU network's
conv → BN → ReLU, which is the floor of the speed issue (docs/speed.md). ``r`` (a residual block's
shortcut, added before the neuron charges) is kept too; for an identity shortcut it is the block's
input, which the block's first convolution keeps anyway.

Statistics and running averages follow ``nn.BatchNorm2d`` (momentum, ``momentum=None`` cumulative
average, ``track_running_stats``, eval mode). Spikes equal the unfused layer's up to the rounding of
the affine (``x·scale + shift`` instead of ``(x − mean)·invstd·γ + β``): a neuron within a rounding
error of the threshold may flip.

This module holds the math shared by the torch-ops layer below (``bn_lif_sequence``) and the Triton
kernel (``neurons/kernels``); which one runs, or whether BatchNorm stays its own layer, is decided by
:func:`spikedistill.neurons.lif.batch_norm_lif`.
"""

from __future__ import annotations

import torch
from torch import nn

from .dynamics import sequence_backward, sequence_forward
from .surrogates import sigmoid_backward_


def batch_statistics(x: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(mean, invstd) in fp32 as ``nn.BatchNorm2d.forward`` would use them, updating its running
    averages in training mode; and whether they are batch statistics."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch_stats = bn.training or bn.running_mean is None
    if not use_batch_stats:
        state = torch.promote_types(bn.running_mean.dtype, torch.float32)  # fp32, or fp64 buffers kept
        return bn.running_mean.to(state), torch.rsqrt(bn.running_var.to(state) + bn.eps), False
    with torch.no_grad():
        if x.is_cuda and x.dtype != torch.float64:
            mean, invstd = torch.batch_norm_stats(x, bn.eps)  # fp32, one pass, any layout
            mean, invstd = mean.float(), invstd.float()
            var = invstd.pow(-2) - bn.eps
        elif x.dtype in (torch.float32, torch.float64):  # BatchNorm's own CPU statistics kernel: 3× var_mean's speed
            mean, var = torch.ops.aten.batch_norm_update_stats(x, None, None, 0.0)
            invstd = torch.rsqrt(var + bn.eps)
        else:
            state = torch.promote_types(x.dtype, torch.float32)
            var, mean = torch.var_mean(x.to(state), dim=(0, 2, 3), correction=0)
            invstd = torch.rsqrt(var + bn.eps)
        if bn.training and bn.running_mean is not None:
            count = x.numel() // x.shape[1]
            unbiased = var * (count / max(count - 1, 1))
            running = [bn.running_mean, bn.running_var]  # foreach: one launch for both, not two each
            torch._foreach_mul_(running, 1.0 - factor)
            torch._foreach_add_(running, [mean.to(bn.running_mean.dtype), unbiased.to(bn.running_var.dtype)],
                                alpha=factor)
    return mean, invstd, True


def affine_of(weight, bias, mean, invstd) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``scale, shift`` with ``BN(x) = x·scale + shift``, in the statistics' dtype."""
    scale = invstd if weight is None else weight.to(invstd.dtype) * invstd
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias.to(invstd.dtype)
    return scale, shift


def folded_input_grads(grad_y, x_seq, weight, bias, mean, invstd, residual, use_batch_stats, eps, needs):
    """``(∂L/∂x, ∂L/∂γ, ∂L/∂β, ∂L/∂residual)`` of the folded layer from ``grad_y`` (the gradient at the
    neuron's input); ``needs`` is autograd's ``needs_input_grad`` for (x, γ, β, mean, invstd, residual, …)."""
    grad_x, grad_w, grad_b = batch_norm_backward(
        grad_y, x_seq, weight, mean, invstd, use_batch_stats, eps,
        (needs[0], needs[1] and weight is not None, needs[2] and bias is not None))
    grad_residual = grad_y.to(residual.dtype) if residual is not None and needs[5] else None
    return grad_x, grad_w, grad_b, grad_residual


def batch_norm_backward(grad_y, x_seq, weight, mean, invstd, use_batch_stats, eps, needs):
    """∂L/∂x, ∂L/∂γ, ∂L/∂β of ``y = BN(x)`` from ``grad_y`` — BatchNorm's own formula (batch statistics
    carry the gradient through the mean and variance); ``needs`` = which of the three to compute."""
    x = x_seq.flatten(0, 1)
    grad_y = grad_y.flatten(0, 1)
    if use_batch_stats:
        grad_x, grad_w, grad_b = torch.ops.aten.native_batch_norm_backward(
            grad_y, x, weight, None, None, mean, invstd, True, eps, list(needs))
    else:  # running statistics are constants: y = x·scale + shift
        shape = (1, -1) + (1,) * (x.dim() - 2)
        dims = [0] + list(range(2, x.dim()))
        g = grad_y.to(invstd.dtype)
        scale = invstd if weight is None else weight.to(invstd.dtype) * invstd
        grad_x = (g * scale.view(shape)).to(x.dtype) if needs[0] else None
        grad_w = (g * (x.to(invstd.dtype) - mean.view(shape)) * invstd.view(shape)).sum(dims) if needs[1] else None
        grad_b = g.sum(dims) if needs[2] else None
    if grad_x is not None:
        grad_x = grad_x.unflatten(0, x_seq.shape[:2])
    if grad_w is not None and weight is not None:
        grad_w = grad_w.to(weight.dtype)
    if grad_b is not None and weight is not None:
        grad_b = grad_b.to(weight.dtype)
    return grad_x, grad_w, grad_b


class _BatchNormLIFSequence(torch.autograd.Function):
    """The fused layer in torch ops: keeps x (and the residual), recomputes y and u in backward."""

    @staticmethod
    def forward(ctx, x_seq, weight, bias, mean, invstd, residual, use_batch_stats, eps, cfg):
        scale, shift = affine_of(weight, bias, mean, invstd)
        spikes, _ = sequence_forward(x_seq, cfg, keep_u=False, affine=(scale, shift), residual=residual)
        ctx.save_for_backward(x_seq, weight, bias, mean, invstd, residual)
        ctx.options = (use_batch_stats, eps, cfg)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        x_seq, weight, bias, mean, invstd, residual = ctx.saved_tensors
        use_batch_stats, eps, cfg = ctx.options
        scale, shift = affine_of(weight, bias, mean, invstd)
        if x_seq.shape[0] == 1 and cfg.surrogate == "sigmoid":
            grad_y = _one_step_sigmoid_grad(grad_spikes, x_seq, scale, shift, residual, cfg).to(x_seq.dtype)
        else:
            _, u_seq = sequence_forward(x_seq, cfg, keep_u=True, affine=(scale, shift), residual=residual,
                                        keep_spikes=False)
            grad_y = sequence_backward(grad_spikes, u_seq, cfg).to(x_seq.dtype)
            del u_seq
        grad_x, grad_w, grad_b, grad_residual = folded_input_grads(
            grad_y, x_seq, weight, bias, mean, invstd, residual, use_batch_stats, eps, ctx.needs_input_grad)
        return grad_x, grad_w, grad_b, None, None, grad_residual, None, None, None


def _one_step_sigmoid_grad(grad_spikes, x_seq, scale, shift, residual, cfg):
    """∂L/∂y of one step (T = 1) with the sigmoid surrogate, in four passes over the step where the
    general path takes eight (recompute y, H and u, then α·u, σ, σ' and the product).

    At T = 1 nothing resets and H = V_rest + m·y (m = leak with decay_input, else 1), so α·u =
    α·(m·(x·scale + shift + r) + V_rest − V_th) is one ``addcmul`` over x with the per-channel constants
    α·m·scale and α·(m·shift + V_rest − V_th) (+ α·m·r); then σ in place, ∂S·(1 − σ)·σ in one pass
    (``sigmoid_backward``) and ·α·m (∂u/∂y = m). Equal to the general path up to rounding (the affine is associated
    differently; the spikes, computed forward, do not depend on it)."""
    alpha = cfg.surrogate_param
    m = (1.0 - cfg.decay) if cfg.decay_input else 1.0
    v_rest = 0.0 if cfg.soft_reset else cfg.v_reset
    shape = (-1,) + (1,) * (x_seq.dim() - 3)
    z = torch.addcmul((shift * (alpha * m) + alpha * (v_rest - cfg.threshold)).view(shape), x_seq,
                      (scale * (alpha * m)).view(shape))
    if residual is not None:
        z.add_(residual, alpha=alpha * m)
    return sigmoid_backward_(z.sigmoid_(), grad_spikes.to(z.dtype)).mul_(alpha * m)


def bn_lif_sequence(x_seq, weight, bias, mean, invstd, residual, use_batch_stats: bool, eps: float, cfg):
    """Spikes of ``LIF(BN(x_seq) + residual)`` in torch ops, keeping only x (and the residual) for backward."""
    return _BatchNormLIFSequence.apply(x_seq, weight, bias, mean, invstd, residual, use_batch_stats, eps, cfg)
