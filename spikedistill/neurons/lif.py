"""The LIF module and the one dispatcher: which implementation runs a given input.

The dynamics are in :mod:`spikedistill.neurons.dynamics` (formulas, the reference loop and the
sequence algorithm in torch ops) and BatchNorm folded into the neuron in
:mod:`spikedistill.neurons.batchnorm`; the fused Triton kernels in :mod:`spikedistill.neurons.kernels`.
This is the only module that imports the kernels.

``lif_multistep`` picks the fused Triton kernel on CUDA when it is installed, and elsewhere the same
algorithm in torch ops (``lif_sequence``); all give the spikes of the reference loop ``lif_reference``.
``batch_norm_lif`` does the same for ``LIF(BN(x) + residual)``, folding BatchNorm into the neuron where
the layer allows it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

import torch
from torch import nn

from ..errors import SpikeDistillError
from .batchnorm import batch_statistics, bn_lif_sequence
from .dynamics import NEURON_OPTIONS, LIFConfig, lif_reference, lif_sequence
from .kernels import bn_lif_fused, lif_fused, triton_available
from .layout import steps_dense

BACKENDS = ("auto", "sequence", "torch", "triton")
FUSIBLE_BACKENDS = ("triton", "sequence")  # the backends that can fold BatchNorm into the neuron


def fused_available(x_seq: torch.Tensor) -> bool:
    """True when the fused Triton kernel can run on ``x_seq``'s device (CUDA, with Triton installed)."""
    return x_seq.is_cuda and triton_available()


def resolve_backend(x_seq: torch.Tensor, backend: str) -> str:
    """The backend ``"auto"`` stands for with this input (see :func:`lif_multistep`)."""
    if backend != "auto":
        return backend
    if fused_available(x_seq):
        return "triton"
    return "torch" if torch.compiler.is_compiling() else "sequence"


def lif_multistep(x_seq: torch.Tensor, cfg: LIFConfig = LIFConfig(), backend: str = "auto") -> torch.Tensor:
    """Spikes ``[T, ...]`` for input currents ``x_seq`` ``[T, ...]``, starting from rest.

    ``backend``: ``"auto"``, ``"triton"`` (the fused GPU kernel), ``"sequence"`` (the same algorithm in
    torch ops, :func:`~spikedistill.neurons.dynamics.lif_sequence`) or ``"torch"`` (the autograd loop,
    :func:`~spikedistill.neurons.dynamics.lif_reference`). ``"auto"`` takes the Triton kernel on CUDA, the
    autograd loop inside ``torch.compile`` (the compiler fuses it) and ``"sequence"`` everywhere else.
    """
    if x_seq.dim() < 2:
        raise SpikeDistillError(f"LIF input must be time-first [T, ...] with at least 2 dims, got {tuple(x_seq.shape)}")
    check_currents(x_seq)
    backend = resolve_backend(x_seq, backend)
    if backend == "sequence":
        return lif_sequence(x_seq, cfg)
    if backend == "torch":
        return lif_reference(x_seq, cfg)
    if backend == "triton":
        return lif_fused(x_seq, cfg)
    raise SpikeDistillError(f"unknown LIF backend '{backend}'; known: {', '.join(BACKENDS)}")


def check_currents(x_seq) -> None:
    """LIF input is floating-point current: integer or boolean tensors (spike counts, raw frames) would
    integrate in integer arithmetic or fail inside a kernel, so they are refused, naming the cast."""
    if isinstance(x_seq, torch.Tensor) and not x_seq.is_floating_point():
        raise SpikeDistillError(f"LIF input must be a floating-point current, got {x_seq.dtype}; cast it first, "
                                "e.g. x.float()")


def batch_norm_lif(
    x_seq: torch.Tensor,
    bn: nn.Module,
    cfg: LIFConfig = LIFConfig(),
    backend: str = "auto",
    residual: Optional[torch.Tensor] = None,
    fold: bool = True,
) -> torch.Tensor:
    """Spikes ``[T, B, C, ...]`` of ``LIF(bn(x_seq) + residual)``, BatchNorm over the ``[T·B]`` view.

    BatchNorm is folded into the neuron (:mod:`spikedistill.neurons.batchnorm`: only its input is kept
    for backward) by the Triton kernel on CUDA and by the torch-ops layer (``backend="sequence"``)
    elsewhere; ``fold=False``, ``backend="torch"``, ``SyncBatchNorm`` and any input it cannot view as
    ``[T·B, C, ...]`` run ``bn`` as its own layer."""
    check_currents(x_seq)
    backend = resolve_backend(x_seq, backend)
    if not (fold and _fusible(x_seq, bn, backend, residual)):
        y = bn(x_seq.flatten(0, 1)).unflatten(0, x_seq.shape[:2])
        return lif_multistep(y if residual is None else y + residual, cfg, backend)
    if residual is not None and residual.stride() != x_seq.stride():
        residual = torch.empty_like(x_seq, dtype=residual.dtype).copy_(residual)
    mean, invstd, use_batch_stats = batch_statistics(x_seq.flatten(0, 1), bn)
    folded = bn_lif_fused if backend == "triton" else bn_lif_sequence
    return folded(x_seq, bn.weight, bn.bias, mean, invstd, residual, use_batch_stats, bn.eps, cfg)


def _fusible(x_seq, bn, backend, residual) -> bool:
    if backend not in FUSIBLE_BACKENDS or type(bn) is not nn.BatchNorm2d or x_seq.dim() != 5:
        return False
    if x_seq.dtype not in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        return False
    if backend == "triton" and x_seq.dtype == torch.float64:
        return False
    if residual is not None and residual.shape != x_seq.shape:
        return False
    if bn.training and x_seq.numel() <= x_seq.shape[2]:  # BatchNorm's own error for one value per channel
        return False
    return steps_dense(x_seq)  # the kernel and BN's backward read x as [T·B, C, H, W]


class LIF(nn.Module):
    """Multi-step LIF module over time-first input ``[T, B, ...]``; stateless between calls.

    ``fold_batchnorm=False`` runs a BatchNorm handed to :meth:`forward` as its own layer (for
    comparisons; the folded layer keeps half as much for backward, see ``neurons/batchnorm.py``)."""

    def __init__(self, backend: str = "auto", fold_batchnorm: bool = True, **options):
        super().__init__()
        unknown = set(options) - set(NEURON_OPTIONS)
        if unknown:
            raise SpikeDistillError(
                f"unknown neuron option(s) {sorted(unknown)}; known: {', '.join(NEURON_OPTIONS)}"
            )
        self.cfg = LIFConfig(**options)
        self.backend = backend
        self.fold_batchnorm = fold_batchnorm

    def forward(self, x_seq: torch.Tensor, bn: Optional[nn.Module] = None,
                residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Spikes for input currents ``x_seq``; with ``bn`` (a BatchNorm2d) for ``bn(x_seq) + residual``,
        BatchNorm folded into the neuron where the backend allows (:func:`batch_norm_lif`)."""
        if bn is not None:
            return batch_norm_lif(x_seq, bn, self.cfg, self.backend, residual, fold=self.fold_batchnorm)
        return lif_multistep(x_seq if residual is None else x_seq + residual, self.cfg, self.backend)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.cfg).items())
