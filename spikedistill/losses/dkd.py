"""``dkd``: Decoupled KD (Zhao et al., CVPR 2022) on the time-mean logits (docs/objectives.md#dkd).

Follows mdistiller's DKD. ``per_step=True`` is our temporal-separated variant (not from a paper):
TCKD/NCKD between every z[t] and the teacher, averaged over t, with TWCE as the CE term.
Warm-up: the KD terms are scaled by ``min((epoch+1)/warmup, 1)`` where ``epoch`` is the 0-based
epoch given to ``set_epoch`` (mdistiller counts epochs from 1); ``warmup=0`` disables it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import LossOutput, Objective, check_bool, check_int, check_number, kd_kl, per_step_ce, time_mean


def dkd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, tau: float):
    """``(TCKD, NCKD)`` of the DKD paper, each τ²-scaled and batch-averaged; students may carry a leading T dim::

        b = [p_gt, 1 − p_gt] of p = softmax(z/τ)                 TCKD = τ²·KL(b_t ‖ b_s)
        p̂ = softmax(z/τ − 1000·1_gt)  (non-target classes)       NCKD = τ²·KL(p̂_t ‖ p̂_s)
    """
    gt = F.one_hot(labels, student_logits.shape[-1]).bool()

    def log_binary(z):  # [log p_gt, log(1 − p_gt)] from logits, stably; log-probs are valid "logits"
        log_p = F.log_softmax(z / tau, dim=-1)
        log_gt = log_p.masked_fill(~gt, float("-inf")).logsumexp(-1)
        log_rest = log_p.masked_fill(gt, float("-inf")).logsumexp(-1)
        return torch.stack([log_gt, log_rest], dim=-1)

    tckd = kd_kl(log_binary(student_logits), log_binary(teacher_logits.detach()), 1.0, scale_tau2=False) * tau**2
    mask = 1000.0 * tau * gt.to(student_logits.dtype)  # kd_kl divides by τ: (z − 1000τ·1_gt)/τ
    nckd = kd_kl(student_logits - mask, teacher_logits - mask, tau)
    return tckd, nckd


def dkd_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor, alpha: float = 1.0,
             beta: float = 8.0, tau: float = 4.0, ce_weight: float = 1.0, warm: float = 1.0,
             per_step: bool = False):
    """``L = w_ce·CE + warm·(α·TCKD + β·NCKD)`` on ``z_ens`` (or per step, averaged over t). Returns
    ``(total, ce, tckd, nckd)``."""
    if per_step:
        ce = per_step_ce(logits, labels)
        tckd, nckd = dkd_terms(logits, teacher_logits, labels, tau)
    else:
        z_ens = time_mean(logits)
        ce = F.cross_entropy(z_ens, labels)
        tckd, nckd = dkd_terms(z_ens, teacher_logits, labels, tau)
    return ce_weight * ce + warm * (alpha * tckd + beta * nckd), ce, tckd, nckd


class DKD(Objective):
    name = "dkd"
    needs_teacher = True

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, tau: float = 4.0, ce_weight: float = 1.0,
                 warmup: int = 20, per_step: bool = False):
        super().__init__()
        self.alpha = check_number(self.name, "alpha", alpha)
        self.beta = check_number(self.name, "beta", beta)
        self.tau = check_number(self.name, "tau", tau, inclusive=False)
        self.ce_weight = check_number(self.name, "ce_weight", ce_weight)
        self.warmup = check_int(self.name, "warmup", warmup, 0)
        self.per_step = check_bool(self.name, "per_step", per_step)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def warm(self) -> float:
        return 1.0 if self.warmup == 0 else min((self.epoch + 1) / self.warmup, 1.0)

    def forward(self, logits, labels, teacher_logits=None, features=None, teacher_features=None, teacher=None):
        total, ce, tckd, nckd = dkd_loss(self.steps(logits), labels, self.teacher_2d(teacher_logits), self.alpha,
                                         self.beta, self.tau, self.ce_weight, self.warm(), self.per_step)
        return LossOutput(total, {"ce": ce.detach(), "tckd": tckd.detach(), "nckd": nckd.detach()})
