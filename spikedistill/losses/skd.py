"""``skd``: standard KD on the time-mean logits, the full-range paper's baseline (docs/objectives.md#skd).

``ce_weight`` gives Hinton's convex form too (mdistiller KD: ce_weight 0.1, alpha 0.9, tau 4). It is
also the response-based form of KDSNN (Xu et al., CVPR 2023).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import LossOutput, Objective, check_number, kd_kl, time_mean


def skd_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor, alpha: float = 0.2,
             tau: float = 3.0, ce_weight: float = 1.0):
    """``L_SKD = w_ce·CE(z_ens, y) + α·τ²·KL(p^τ(z_A) ‖ p^τ(z_ens))``, z_A detached.

    Returns ``(total, ce, kl)`` with ``kl`` already τ²-scaled. Defaults α = 0.2, τ = 3 (the FR recipe).
    """
    z_ens = time_mean(logits)
    ce = F.cross_entropy(z_ens, labels)
    kl = kd_kl(z_ens, teacher_logits, tau)
    return ce_weight * ce + alpha * kl, ce, kl


class SKD(Objective):
    name = "skd"
    needs_teacher = True

    def __init__(self, alpha: float = 0.2, tau: float = 3.0, ce_weight: float = 1.0):
        super().__init__()
        self.alpha = check_number(self.name, "alpha", alpha)
        self.tau = check_number(self.name, "tau", tau, inclusive=False)
        self.ce_weight = check_number(self.name, "ce_weight", ce_weight)

    def forward(self, logits, labels, teacher_logits=None, features=None, teacher_features=None, teacher=None):
        total, ce, kl = skd_loss(self.steps(logits), labels, self.teacher_2d(teacher_logits), self.alpha,
                                 self.tau, self.ce_weight)
        return LossOutput(total, {"ce": ce.detach(), "kl": kl.detach()})
