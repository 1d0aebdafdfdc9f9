"""Objectives: every distillation method of METHODS.md behind one call, from one registry.

>>> crit = create_loss("twkd", alpha=0.2, beta=0.5, tau=3.0)
>>> out = crit(logits, labels, teacher_logits=teacher_logits)   # logits [T, B, K]
>>> out.total.backward(); out.parts                              # {"ce": ..., "kl": ..., "sd": ...}

Every objective is an ``nn.Module`` (TSSD's weak classifier has parameters: add
``objective.parameters()`` to the optimizer) called as
``crit(logits, labels, teacher_logits=None, features=None, teacher_features=None, teacher=None)``.
The loop reads ``needs_teacher``, ``needs_features``, ``needs_teacher_features``,
``train_timesteps(T)`` and ``set_epoch(epoch)`` (see :class:`Objective`). docs/objectives.md has the table.
"""

from __future__ import annotations

import inspect

from ..errors import SpikeDistillError, did_you_mean
from ..registry import Registry
from .base import LossOutput, Objective, kd_kl
from .ce import CE
from .ckdsnn import CKDSNN
from .compose import Sum
from .dkd import DKD
from .skd import SKD
from .tet import TET
from .tser import TSER
from .tssd import TSSD
from .twce import TWCE
from .twkd import TWKD

LOSSES: Registry = Registry("loss")
for _cls in (CE, TWCE, TET, SKD, TWKD, TSSD, TSER, CKDSNN, DKD, Sum):
    LOSSES.register(_cls.name)(_cls)


def loss_options(name: str) -> list[str]:
    """The option names ``create_loss(name, ...)`` accepts."""
    return [p for p in inspect.signature(LOSSES.get(name).__init__).parameters if p != "self"]


def create_loss(name: str, **options) -> Objective:
    """Build a registered objective; unknown names and options fail with one line listing valid ones."""
    cls = LOSSES.get(name)
    known = loss_options(name)
    unknown = [key for key in options if key not in known]
    if unknown:
        hint = did_you_mean(unknown[0], known) if len(unknown) == 1 else ""
        raise SpikeDistillError(f"unknown option {', '.join(map(repr, unknown))} for loss '{name}';{hint} "
                                f"valid: {', '.join(known) or '(none)'}")
    return cls(**options)


__all__ = ["LOSSES", "create_loss", "loss_options", "LossOutput", "Objective", "kd_kl"]
