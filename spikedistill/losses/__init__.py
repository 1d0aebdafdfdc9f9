"""Objectives: every distillation method in docs/objectives.md behind one call, from one registry.

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

from .base import LossOutput, Objective, kd_kl
from .ce import CE
from .ckdsnn import CKDSNN
from .compose import Sum
from .dkd import DKD
from .registry import LOSSES, create_loss, loss_options, register_loss
from .skd import SKD
from .tet import TET
from .tser import TSER
from .tssd import TSSD
from .twce import TWCE
from .twkd import TWKD

for _cls in (CE, TWCE, TET, SKD, TWKD, TSSD, TSER, CKDSNN, DKD, Sum):
    LOSSES.register(_cls.name)(_cls)


__all__ = ["LOSSES", "create_loss", "register_loss", "loss_options", "LossOutput", "Objective", "kd_kl"]
