"""The distillation task: the student, the objective's trainable parts and the frozen teacher as one module.

    task = DistillationTask(student, objective, teacher, train_timesteps=4)
    logits, loss = task(images, labels)     # logits [T, B, K]; loss.total, loss.parts
    loss.total.backward()

The training loop only steps, sums and logs; DistributedDataParallel wraps this one module, so the
objective's own parameters (TSSD's weak classifier) are averaged across processes with the student's.
The teacher stays in the mode it was given (eval, or train for a recipe that reproduces that quirk)
whatever ``task.train()`` is called with, and never receives a gradient.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from ..errors import SpikeDistillError
from ..models import input_dtype, model_input
from ..models.contract import logits_and_features


class DistillationTask(nn.Module):
    """``forward(images, labels) → (logits, loss)``: teacher (no grad), student, objective, in that order.

    ``images`` is a batch as loaders yield it (images ``[B, C, H, W]`` or frames ``[B, T, C, H, W]``);
    each network gets it through :func:`~spikedistill.models.model_input`. ``train_timesteps`` is the T the
    student runs for static images (frames fix their own T). ``teacher_clock`` is entered around the teacher's
    forward (a :class:`~spikedistill.train.progress.Stopwatch` in the loop).
    """

    def __init__(self, student: nn.Module, objective: nn.Module, teacher: nn.Module | None = None, *,
                 train_timesteps: int | None = None, teacher_features: bool = False, teacher_train_mode: bool = False):
        super().__init__()
        self.student = student
        self.objective = objective
        self.teacher = teacher
        self.train_timesteps = train_timesteps
        self.teacher_features = teacher_features or objective.needs_teacher_features
        self.teacher_train_mode = teacher_train_mode
        self.student_spiking = bool(getattr(student, "spiking", True))
        self.teacher_clock = contextlib.nullcontext()
        if objective.needs_teacher and teacher is None:
            raise SpikeDistillError(f"loss '{objective.name}' needs a teacher; pass teacher=... (a network or a "
                                    "callable returning [B, K] logits)")
        if teacher is not None:
            for p in teacher.parameters():
                p.requires_grad_(False)
            teacher.train(teacher_train_mode)

    def train(self, mode: bool = True) -> "DistillationTask":
        super().train(mode)
        if self.teacher is not None:
            self.teacher.train(self.teacher_train_mode)
        return self

    def forward(self, images: torch.Tensor, labels: torch.Tensor):
        objective, teacher = self.objective, self.teacher
        teacher_logits = teacher_feats = None
        if teacher is not None:
            with self.teacher_clock, torch.no_grad():
                teacher_logits, teacher_feats = logits_and_features(
                    teacher, model_input(images, bool(getattr(teacher, "spiking", False)), input_dtype(teacher)),
                    self.teacher_features, "teacher")
        x = model_input(images, self.student_spiking, input_dtype(self.student))
        logits, features = logits_and_features(self.student, x, objective.needs_features,
                                               timesteps=None if x.dim() == 5 else self.train_timesteps)
        loss = objective(logits, labels, teacher_logits=teacher_logits, features=features,
                         teacher_features=teacher_feats, teacher=teacher)
        return logits, loss


class CallableTeacher(nn.Module):
    """Any network or callable ``f(images) → [B, K]`` logits as a teacher with the zoo's call signature.

    A teacher that itself keeps the model contract (``forward(x, timesteps=None, return_features=False)``,
    e.g. a zoo ANN) is called with ``return_features`` when an objective reads its stage maps; any other
    teacher is asked for logits only, and an objective that needs its features is refused in one line.
    """

    def __init__(self, net: nn.Module | Callable):
        super().__init__()
        if not callable(net):
            raise SpikeDistillError(f"teacher must be an nn.Module or a callable returning [B, K] logits, "
                                    f"got {type(net).__name__}")
        if isinstance(net, nn.Module):
            self.net = net
        else:
            self._function = net  # a plain callable holds no parameters
        self.spiking = bool(getattr(net, "spiking", False))
        self.num_classes = getattr(net, "num_classes", None)
        self.takes_features = _accepts(net, "return_features")

    def __getattr__(self, name: str):
        """The wrapped network's attributes show through (``ckdsnn`` reads the teacher's ``fc`` head)."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            net = self.__dict__.get("_modules", {}).get("net")
            if net is None:
                raise
            return getattr(net, name)

    def call(self, x):
        return self.net(x) if "net" in self._modules else self._function(x)

    def forward(self, x: torch.Tensor, timesteps: int | None = None, return_features: bool = False):
        if return_features:
            if not self.takes_features:
                raise SpikeDistillError("the objective reads the teacher's stage features, but the teacher takes no "
                                        "return_features argument; give it forward(x, return_features=False) returning "
                                        "(logits, {stage: map}), or use a loss that reads logits only")
            return self.net(x, return_features=True)
        out = self.call(x)
        if not isinstance(out, torch.Tensor) or out.dim() not in (2, 3):
            what = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise SpikeDistillError(f"the teacher returned {what}; a teacher returns logits [B, K] (or [T, B, K])")
        return out


def as_teacher(teacher) -> nn.Module | None:
    """``teacher`` ready for :class:`DistillationTask`: a zoo model as it is, anything else wrapped."""
    from ..models import TimeModel

    if teacher is None or isinstance(teacher, (TimeModel, CallableTeacher)):
        return teacher
    return CallableTeacher(teacher)


def _accepts(fn, argument: str) -> bool:
    import inspect

    target = fn.forward if isinstance(fn, nn.Module) else fn
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return argument in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
