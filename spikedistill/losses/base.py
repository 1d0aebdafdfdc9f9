"""What every objective shares: the result type, the base class the training loop reads, the one KL
helper, and option checks.

Conventions (docs/objectives.md#notation): student logits are per-step ``[T, B, K]``; ``z_ens`` is their mean
over T; every KL puts the target first, ``KL(p_target ‖ p_student)``, with the target detached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..checks import Say
from ..errors import SpikeDistillError


@dataclass
class LossOutput:
    """``total``: the scalar to ``backward()``; ``parts``: named, detached, unweighted terms for logs."""

    total: torch.Tensor
    parts: Dict[str, torch.Tensor] = field(default_factory=dict)


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """Losses are computed in at least float32: under bf16/fp16 autocast a small KL rounds negative."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def kd_kl(student_logits: torch.Tensor, target_logits: torch.Tensor, tau: float,
          scale_tau2: bool = True) -> torch.Tensor:
    """``τ² · batchmean KL(p^τ(target) ‖ p^τ(student))``, target detached (docs/objectives.md#notation).

    ``p^τ(v) = softmax(v/τ)`` over the last dim; KL is summed over classes and averaged over every
    leading dim, so ``[T, B, K]`` students against a ``[B, K]`` target give the mean over t of the
    per-step batchmean KL (the temporal-wise terms of the full-range paper, docs/objectives.md#twkd).
    ``scale_tau2=False`` drops the τ² factor.
    """
    log_p_student = F.log_softmax(full_precision(student_logits) / tau, dim=-1)
    log_p_target = F.log_softmax(full_precision(target_logits.detach()) / tau, dim=-1)
    kl = (log_p_target.exp() * (log_p_target - log_p_student)).sum(-1).mean()
    return kl * tau**2 if scale_tau2 else kl


def time_mean(logits: torch.Tensor) -> torch.Tensor:
    """``z_ens = (1/T) Σ_t z[t]``: ``[T, B, K] → [B, K]``."""
    return logits.mean(0)


def per_step_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(1/T) Σ_t CE(z[t], y)`` with CE averaged over the batch (TWCE, TET's CE, TSER's TS-CE)."""
    steps = logits.shape[0]
    return F.cross_entropy(logits.flatten(0, 1), labels.repeat(steps))


class Objective(nn.Module):
    """Base of every objective; the training loop reads these attributes.

    * ``per_step_logits``: the objective compares or weights the steps, so it needs the student's
      per-step logits ``[T, B, K]``; a time-reduced ``[B, K]`` is refused (the others take it as T = 1).
    * ``needs_teacher``: pass ``teacher_logits`` (``[B, K]`` or ``[1, B, K]``).
    * ``needs_features`` / ``needs_teacher_features``: pass ``features`` / ``teacher_features``
      (the stage dicts of ``model(x, timesteps=T, return_features=True)``).
    * ``train_timesteps(T)``: run the student at this many steps for training (TSSD extends T).
    * ``set_epoch(epoch)``: call at the start of every epoch, 0-based (DKD warm-up).
    * ``bind(model)``: call once with the student before building the optimizer (TSSD's weak head).
    """

    name = "objective"
    per_step_logits = False
    needs_teacher = False
    needs_features = False
    needs_teacher_features = False

    def __init__(self):  # options are keyword arguments of the subclass __init__ (create_loss checks them)
        super().__init__()
        self.register_forward_pre_hook(_check_inputs_agree, with_kwargs=True)

    def train_timesteps(self, timesteps: int) -> int:
        return timesteps

    def set_epoch(self, epoch: int) -> None:
        pass

    def bind(self, model: nn.Module) -> None:
        """Build what depends on the student before the optimizer is made (TSSD's weak classifier reads
        ``model.stage_channels`` and ``model.num_classes``). Most objectives need nothing."""

    def forward(self, logits, labels, teacher_logits=None, features=None, teacher_features=None,
                teacher=None) -> LossOutput:
        raise NotImplementedError

    # -- input handling shared by subclasses ------------------------------------------------------
    def steps(self, logits: torch.Tensor) -> torch.Tensor:
        """Student logits as ``[T, B, K]``; a time-reduced ``[B, K]`` output counts as T = 1 where the
        objective reads only the time-mean, and is refused where it reads each step (``per_step_logits``)."""
        if logits.dim() not in (2, 3):
            raise SpikeDistillError(
                f"loss '{self.name}' expects student logits [T, B, K], got shape {tuple(logits.shape)}"
            )
        if logits.dim() == 2 and self.per_step_logits:
            raise SpikeDistillError(
                f"loss '{self.name}' expects per-step logits [T, B, K], got shape {tuple(logits.shape)}: its terms "
                "compare the steps, which a time-reduced output hides (the self-distillation term would be 0); "
                "return every step's logits, e.g. torch.stack(per_step_logits), or [1, B, K] for one step")
        return full_precision(logits if logits.dim() == 3 else logits.unsqueeze(0))

    def teacher_2d(self, teacher_logits: Optional[torch.Tensor], why: str = "") -> torch.Tensor:
        """Teacher logits as ``[B, K]``: an ANN's ``[1, B, K]`` is squeezed, an SNN teacher's
        ``[T', B, K]`` is time-averaged."""
        if teacher_logits is None:
            raise SpikeDistillError(f"loss '{self.name}' needs teacher_logits{why}; pass teacher_logits=teacher(x)")
        if teacher_logits.dim() not in (2, 3):
            raise SpikeDistillError(
                f"loss '{self.name}' expects teacher_logits [B, K] or [T, B, K], "
                f"got shape {tuple(teacher_logits.shape)}"
            )
        return full_precision(teacher_logits.mean(0) if teacher_logits.dim() == 3 else teacher_logits)

    def feature(self, features: Optional[dict], stage: Optional[str], which: str, position: int = -1):
        """The ``[T, B, C, H, W]`` map of ``stage`` (default: the stage at ``position`` in the dict)."""
        arg = "teacher_features" if which == "teacher" else "features"
        if features is not None and not isinstance(features, dict):
            raise SpikeDistillError(
                f"loss '{self.name}' needs {arg} as a dict {{stage name: map}}, got a {type(features).__name__}; "
                "pass the dict that model(x, return_features=True) returns")
        if not features:
            raise SpikeDistillError(
                f"loss '{self.name}' needs {arg}; call the model with return_features=True and pass its dict"
            )
        names = list(features)
        if stage is None:
            if len(names) < abs(position):
                raise SpikeDistillError(
                    f"loss '{self.name}' needs at least {abs(position)} stages in {arg}, got {names}"
                )
            stage = names[position]
        if stage not in features:
            raise SpikeDistillError(f"loss '{self.name}': stage '{stage}' not in {arg}; known: {', '.join(names)}")
        feature = features[stage]
        dims = (4, 5) if which == "teacher" else (5,)
        if not isinstance(feature, torch.Tensor) or feature.dim() not in dims:
            what = (f"shape {tuple(feature.shape)}" if isinstance(feature, torch.Tensor)
                    else f"a {type(feature).__name__}")
            layout = "[B, C, H, W] or [T, B, C, H, W]" if which == "teacher" else "time-first [T, B, C, H, W]"
            raise SpikeDistillError(f"loss '{self.name}': {arg}['{stage}'] is {what}; a stage map must be {layout}")
        return full_precision(feature)


def _check_inputs_agree(objective: "Objective", args: tuple, kwargs: dict) -> None:
    """Before every objective: labels and teacher logits fit the student's batch and classes (one line,
    not a broadcasting error deep inside a KL)."""
    names = ("logits", "labels", "teacher_logits")
    given = {**dict(zip(names, args)), **{k: v for k, v in kwargs.items() if k in names}}
    logits, labels, teacher = (given.get(name) for name in names)
    for name in ("logits", "teacher_logits"):
        if given.get(name) is not None and not isinstance(given[name], torch.Tensor):
            raise SpikeDistillError(f"loss '{objective.name}': {name} must be a torch tensor, got "
                                    f"{type(given[name]).__name__}; convert it, e.g. torch.from_numpy(x)")
    if isinstance(labels, torch.Tensor) and labels.dtype in (torch.int8, torch.int16, torch.int32):
        raise SpikeDistillError(f"loss '{objective.name}': labels are {labels.dtype}; class indices are int64: pass "
                                "y.long()")
    if not isinstance(logits, torch.Tensor) or logits.dim() not in (2, 3):
        return None  # steps() names the problem
    batch, classes = logits.shape[-2], logits.shape[-1]
    if labels is not None and (not isinstance(labels, torch.Tensor) or labels.is_floating_point()
                               or labels.is_complex() or labels.dtype == torch.bool):
        what = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise SpikeDistillError(f"loss '{objective.name}': labels must be an integer tensor of class indices, got "
                                f"{what}; pass y.long()")
    if isinstance(labels, torch.Tensor) and tuple(labels.shape) != (batch,):
        raise SpikeDistillError(f"loss '{objective.name}': labels of shape {tuple(labels.shape)} for a batch of "
                                f"{batch}; pass one integer label per sample")
    if isinstance(labels, torch.Tensor) and labels.device.type == "cpu" and labels.numel():
        # On a GPU this check would cost a host sync every step; cross-entropy's own device assert stays there.
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            raise SpikeDistillError(f"loss '{objective.name}': labels range over {low}..{high} but the logits have "
                                    f"{classes} classes (0..{classes - 1}); check num_classes and the dataset's labels")
    if isinstance(teacher, torch.Tensor) and teacher.dim() in (2, 3):
        if teacher.shape[-1] != classes:
            raise SpikeDistillError(f"loss '{objective.name}': teacher_logits have {teacher.shape[-1]} classes but the "
                                    f"student's logits have {classes} classes; use a teacher trained on the same "
                                    "classes")
        if teacher.shape[-2] != batch:
            raise SpikeDistillError(f"loss '{objective.name}': teacher_logits hold a batch of {teacher.shape[-2]} but "
                                    f"the student's hold {batch}; run the teacher on the same batch")
    return None


# -- option checks (the rules are spikedistill.checks'): one line naming the option, its value and what is allowed
def option_message(loss: str) -> Say:
    """How a loss words a bad option: ``loss 'twkd': option tau=0 is invalid; use a number > 0``."""
    return lambda option, value, rule: f"loss '{loss}': option {option}={value!r} is invalid; use {rule}"


def check_number(loss: str, option: str, value, low: float = 0.0, inclusive: bool = True,
                 high: float = float("inf")) -> float:
    return checks.check_number(option, value, low, high, inclusive, say=option_message(loss))


def check_int(loss: str, option: str, value, low: int) -> int:
    return checks.check_int(option, value, low, say=option_message(loss))


def check_choice(loss: str, option: str, value, choices) -> str:
    return checks.check_choice(option, value, choices, say=option_message(loss), quote=True)


def check_bool(loss: str, option: str, value) -> bool:
    return checks.check_bool(option, value, say=option_message(loss))
