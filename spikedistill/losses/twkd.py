"""``twkd``: full-range temporal-wise logit KD (Yu et al., ICML 2025; docs/objectives.md#twkd).

Paper vs official code: the paper's self-distillation target is the time-mean ``z_ens``
(``sd_target="mean"``, default); the official code — which produced the published numbers — uses the
mean over the timesteps that classify the sample correctly, the zero vector (uniform target) when
none does (``sd_target="correct_mean"``). Both targets are detached, as in the code. τ = 3 is the
CIFAR/DVS setting; ImageNet used τ = 1.
"""

from __future__ import annotations

import torch

from .base import LossOutput, Objective, check_choice, check_number, kd_kl, per_step_ce, time_mean

SD_TARGETS = ("mean", "correct_mean")


def correct_mean_target(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``ẑ[b] = Σ_t c[t,b]·z[t,b] / (Σ_t c[t,b] + 1e-8)``, ``c[t,b] = 1[argmax z[t,b] = y_b]``.

    The official code's ``make_teacher``.
    """
    correct = (logits.argmax(-1) == labels).to(logits.dtype).unsqueeze(-1)  # [T, B, 1]
    return (correct * logits).sum(0) / (correct.sum(0) + 1e-8)


def twkd_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_logits, alpha: float = 0.2,
              beta: float = 0.5, tau: float = 3.0, sd_target: str = "mean"):
    """``L = L_TWCE + α·L_TWKL + β·L_TWSD``, the full-range paper's objective::

        L_TWCE = (1/T) Σ_t CE(z[t], y)
        L_TWKL = (1/T) Σ_t τ²·KL(p^τ(z_A) ‖ p^τ(z[t]))
        L_TWSD = (1/T) Σ_t τ²·KL(p^τ(sg(target)) ‖ p^τ(z[t])),  target = z_ens or ẑ (correct_mean)

    Returns ``(total, ce, kl, sd)``; ``kl`` is 0 when ``teacher_logits`` is None (α must then be 0).
    """
    ce = per_step_ce(logits, labels)
    target = time_mean(logits) if sd_target == "mean" else correct_mean_target(logits, labels)
    sd = kd_kl(logits, target, tau)
    kl = kd_kl(logits, teacher_logits, tau) if teacher_logits is not None else ce.new_zeros(())
    return ce + alpha * kl + beta * sd, ce, kl, sd


class TWKD(Objective):
    name = "twkd"
    per_step_logits = True

    def __init__(self, alpha: float = 0.2, beta: float = 0.5, tau: float = 3.0, sd_target: str = "mean"):
        super().__init__()
        self.alpha = check_number(self.name, "alpha", alpha)
        self.beta = check_number(self.name, "beta", beta)
        self.tau = check_number(self.name, "tau", tau, inclusive=False)
        self.sd_target = check_choice(self.name, "sd_target", sd_target, SD_TARGETS)
        self.needs_teacher = self.alpha > 0  # alpha=0: pure temporal self-distillation, no teacher

    def forward(self, logits, labels, teacher_logits=None, features=None, teacher_features=None, teacher=None):
        teacher_2d = self.teacher_2d(teacher_logits, f" (alpha={self.alpha:g} > 0; or set alpha=0)") \
            if self.needs_teacher else None
        total, ce, kl, sd = twkd_loss(self.steps(logits), labels, teacher_2d, self.alpha, self.beta, self.tau,
                                      self.sd_target)
        return LossOutput(total, {"ce": ce.detach(), "kl": kl.detach(), "sd": sd.detach()})
