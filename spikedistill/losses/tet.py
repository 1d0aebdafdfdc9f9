"""``tet``: Temporal Efficient Training (Deng et al., ICLR 2022; docs/objectives.md#tet).

Follows the official TET code: the MSE regulariser acts on the output-layer values (the logits),
averaged over every entry, against a constant φ.
"""

from __future__ import annotations

import torch

from .base import LossOutput, Objective, check_number, per_step_ce


def tet_loss(logits: torch.Tensor, labels: torch.Tensor, lam: float = 1e-3, phi: float = 1.0):
    """``L = (1−λ)·(1/T) Σ_t CE(z[t], y) + λ·mean_{t,b,k} (z[t,b,k] − φ)²`` (the TET code's ``TET_loss``).

    Returns ``(total, ce, mse)``. Defaults λ = 1e-3, φ = 1 are the official code's ``--lamb``/``--means``.
    """
    ce = per_step_ce(logits, labels)
    mse = (logits - phi).pow(2).mean()
    return (1 - lam) * ce + lam * mse, ce, mse


class TET(Objective):
    name = "tet"
    per_step_logits = True

    def __init__(self, lam: float = 1e-3, phi: float = 1.0):
        super().__init__()
        self.lam = check_number(self.name, "lam", lam, high=1.0)
        self.phi = check_number(self.name, "phi", phi, low=float("-inf"))

    def forward(self, logits, labels, teacher_logits=None, features=None, teacher_features=None, teacher=None):
        total, ce, mse = tet_loss(self.steps(logits), labels, self.lam, self.phi)
        return LossOutput(total, {"ce": ce.detach(), "mse": mse.detach()})
