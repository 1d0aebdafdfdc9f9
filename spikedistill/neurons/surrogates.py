"""Surrogate gradients for the Heaviside spike function.

Forward is always Θ(x) = 1[x ≥ 0] with x = H − V_th; backward multiplies by ∂S/∂x from the
surrogate below. Each surrogate is selectable by name with one shape parameter:

============  =========  ==========================================================  =============
name          parameter  ∂S/∂x                                                       used by
============  =========  ==========================================================  =============
sigmoid       α = 4      α·σ(αx)·(1 − σ(αx))                                          SpikingJelly default, FR paper
atan          α = 2      (α/2) / (1 + (π/2·α·x)²)                                     SpikingJelly ATan
triangle      γ = 1      (1/γ)²·max(0, γ − |x|)                                       TET / CKDSNN "ZIF"
rectangular   a = 1      (1/a)·1[|x| < a/2]                                           Ding/Zuo group (TSSD)
============  =========  ==========================================================  =============

The Triton kernel writes each formula once more in its own language, on the constants ``(a, b)`` that
``Surrogate.constants`` computes here — the one table of parameters (tests/test_kernel_lif.py checks both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..checks import check_number, must_be
from ..registry import Registry


@dataclass(frozen=True)
class Surrogate:
    """One surrogate: ``grad(x, param) = formula(x, *constants(param))``.

    ``constants`` pre-combines the parameter into two numbers (in double precision, on the host); the
    torch formula below and the Triton kernel (``neurons/kernels/lif_triton.py``, branch ``code``) both
    read those two numbers, so a surrogate's parameterisation is written once, here.
    """

    name: str
    default_param: float
    constants: Callable[[float], tuple[float, float]]  # param → (a, b)
    formula: Callable[..., torch.Tensor]  # (x = H − V_th, a, b, out) → ∂S/∂x, written into out
    code: int  # the kernel's compile-time branch for this formula

    def grad(self, x: torch.Tensor, param: float, out: torch.Tensor | None = None) -> torch.Tensor:
        """∂S/∂x at ``x = H − V_th``, in a new tensor or written into ``out`` (x's shape and dtype; may be
        ``x`` itself) — the backward loops reuse one buffer per step instead of allocating one."""
        return self.formula(x, *self.constants(param), torch.empty_like(x) if out is None else out)


SURROGATES: Registry[Surrogate] = Registry("surrogate")


# The formulas below are written into ``out``, in place and without ``scalar − tensor`` (a slow path on
# the CPU), each rounding as the plain expression in the table would: α·σ·(1 − σ) is α·(1 − σ)·σ, etc.
def _sigmoid_grad(x: torch.Tensor, alpha: float, _: float, out: torch.Tensor) -> torch.Tensor:
    s = torch.mul(x, alpha, out=out).sigmoid_()
    return sigmoid_backward_(s, torch.tensor(alpha, dtype=s.dtype))


def sigmoid_backward_(y: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``y ← grad·(1 − y)·y`` in one in-place pass (aten's ``sigmoid_backward``; ``grad`` broadcasts)."""
    return torch.ops.aten.sigmoid_backward.grad_input(grad, y, grad_input=y)


def _atan_grad(x: torch.Tensor, half_alpha: float, slope: float, out: torch.Tensor) -> torch.Tensor:
    return torch.mul(x, slope, out=out).square_().add_(1.0).reciprocal_().mul_(half_alpha)


def _triangle_grad(x: torch.Tensor, gamma: float, height: float, out: torch.Tensor) -> torch.Tensor:
    return torch.abs(x, out=out).neg_().add_(gamma).clamp_(min=0.0).mul_(height)


def _rectangular_grad(x: torch.Tensor, half_width: float, width: float, out: torch.Tensor) -> torch.Tensor:
    return torch.lt(torch.abs(x, out=out), half_width, out=out).div_(width)


for _s in (
    Surrogate("sigmoid", 4.0, lambda alpha: (alpha, 0.0), _sigmoid_grad, 0),
    Surrogate("atan", 2.0, lambda alpha: (alpha / 2.0, math.pi / 2.0 * alpha), _atan_grad, 1),
    Surrogate("triangle", 1.0, lambda gamma: (gamma, (1.0 / gamma) ** 2), _triangle_grad, 2),
    Surrogate("rectangular", 1.0, lambda a: (a / 2.0, a), _rectangular_grad, 3),
):
    SURROGATES.register(_s.name)(_s)


def get_surrogate(name: str, param: float | None = None) -> tuple[Surrogate, float]:
    """Look up a surrogate by name and resolve its parameter (default when ``None``)."""
    surrogate = SURROGATES.get(name)
    if param is None:
        return surrogate, surrogate.default_param
    fix = f"; use e.g. surrogate_param={surrogate.default_param}"
    return surrogate, check_number("surrogate parameter", param, 0, inclusive=False,
                                   say=lambda name, value, rule: must_be(name, value, rule) + fix)


class SpikeFunction(torch.autograd.Function):
    """S = Θ(x) forward; ∂S/∂x from the named surrogate backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: str, param: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate, ctx.param = surrogate, param
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_spike: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_spike * SURROGATES.get(ctx.surrogate).grad(x, ctx.param), None, None


def spike(x: torch.Tensor, surrogate: str = "sigmoid", param: float | None = None) -> torch.Tensor:
    """Heaviside with a surrogate gradient. ``x`` is H − V_th."""
    _, param = get_surrogate(surrogate, param)
    return SpikeFunction.apply(x, surrogate, param)
