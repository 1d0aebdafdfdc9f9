"""``tser``: Temporal Separation with Entropy Regularisation (Yu et al., CVPR 2025; docs/objectives.md#tser).

RECONSTRUCTED, not verified against the paper or official code (neither could be read): the
formula follows two unofficial reimplementations, whose differences are options
(docs/objectives.md#tser). Defaults chosen here (NOT FOUND in any source):
α = 0.5 (convex CE/KL weighting), λ = 0.1, τ = 4 (the paper reports τ ∈ [2, 6] as stable),
entropy_sign = −1 (maximise the student's entropy, the behaviour the digest describes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import LossOutput, Objective, check_bool, check_choice, check_number, kd_kl, per_step_ce

WEIGHTINGS = ("convex", "additive")


def tser_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor, alpha: float = 0.5,
              lam: float = 0.1, tau: float = 4.0, entropy_sign: int = -1, ce_uses_tau: bool = False,
              kl_tau2: bool = True, weighting: str = "convex"):
    """``L = (1−α)·L_TS-CE + α·L_TS-KL + sign·λ·H_ER`` (reconstructed; ``weighting="additive"``: CE weight 1)::

        L_TS-CE = (1/T) Σ_t CE(z[t] (/τ if ce_uses_tau), y)
        L_TS-KL = (1/T) Σ_t [τ² if kl_tau2]·KL(p^τ(z_A) ‖ p^τ(z[t]))
        H_ER    = (1/T) Σ_t mean_b −Σ_k p^τ(z[t])_k log p^τ(z[t])_k      # student entropy, not detached

    Returns ``(total, ce, kl, entropy)``.
    """
    ce = per_step_ce(logits / tau if ce_uses_tau else logits, labels)
    kl = kd_kl(logits, teacher_logits, tau, scale_tau2=kl_tau2)
    log_p = F.log_softmax(logits / tau, dim=-1)
    entropy = -(log_p.exp() * log_p).sum(-1).mean()
    ce_weight = 1 - alpha if weighting == "convex" else 1.0
    return ce_weight * ce + alpha * kl + entropy_sign * lam * entropy, ce, kl, entropy


class TSER(Objective):
    name = "tser"
    per_step_logits = True
    needs_teacher = True

    def __init__(self, alpha: float = 0.5, lam: float = 0.1, tau: float = 4.0, entropy_sign: int = -1,
                 ce_uses_tau: bool = False, kl_tau2: bool = True, weighting: str = "convex"):
        super().__init__()
        self.weighting = check_choice(self.name, "weighting", weighting, WEIGHTINGS)
        self.alpha = check_number(self.name, "alpha", alpha, high=1.0 if weighting == "convex" else float("inf"))
        self.lam = check_number(self.name, "lam", lam)
        self.tau = check_number(self.name, "tau", tau, inclusive=False)
        self.entropy_sign = check_choice(self.name, "entropy_sign", entropy_sign, (-1, 1))
        self.ce_uses_tau = check_bool(self.name, "ce_uses_tau", ce_uses_tau)
        self.kl_tau2 = check_bool(self.name, "kl_tau2", kl_tau2)

    def forward(self, logits, labels, teacher_logits=None, features=None, teacher_features=None, teacher=None):
        total, ce, kl, entropy = tser_loss(self.steps(logits), labels, self.teacher_2d(teacher_logits), self.alpha,
                                           self.lam, self.tau, self.entropy_sign, self.ce_uses_tau, self.kl_tau2,
                                           self.weighting)
        return LossOutput(total, {"ce": ce.detach(), "kl": kl.detach(), "entropy": entropy.detach()})
