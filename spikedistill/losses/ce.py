"""``ce``: cross-entropy on the time-mean logits (L_SCE of the full-range paper; docs/objectives.md#ce)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import LossOutput, Objective, time_mean


def ce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``L_SCE = CE(z_ens, y)``, ``z_ens = (1/T) Σ_t z[t]``, CE averaged over the batch."""
    return F.cross_entropy(time_mean(logits), labels)


class CE(Objective):
    name = "ce"

    def forward(self, logits, labels, teacher_logits=None, features=None, teacher_features=None, teacher=None):
        ce = ce_loss(self.steps(logits), labels)
        return LossOutput(ce, {"ce": ce.detach()})
