"""``twce``: temporal-wise cross-entropy, the mean over t of per-step CE (L_TWCE of the full-range
paper; docs/objectives.md#twce).

The same term is TET's CE (``tet`` with λ = 0) and TSER's TS-CE.
"""

from __future__ import annotations

import torch

from .base import LossOutput, Objective, per_step_ce


def twce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``L_TWCE = (1/T) Σ_t CE(z[t], y)``. By Jensen, ``L_SCE ≤ L_TWCE`` (the full-range paper's Lemma 1)."""
    return per_step_ce(logits, labels)


class TWCE(Objective):
    name = "twce"
    per_step_logits = True

    def forward(self, logits, labels, teacher_logits=None, features=None, teacher_features=None, teacher=None):
        ce = twce_loss(self.steps(logits), labels)
        return LossOutput(ce, {"ce": ce.detach()})
