"""``tssd``: self-distillation from temporal-spatial consistency (Zuo et al., 2024;
docs/objectives.md#tssd).

No teacher network. The student is trained at an extended ``T_t = T_s + extra_timesteps`` steps
(``train_timesteps``); the LIF is causal, so the first T_s steps of that run are exactly the deployed
T_s-step student. The detached T_t-step mean teaches the T_s-step mean (temporal SD), and a weak
classifier on an intermediate stage — trained only, discarded at inference — learns from the detached
T_t-step output (spatial SD). Its gradient does reach the backbone below that stage.

UNVERIFIED (no TSSD text or code was readable). Defaults chosen here:
``extra_timesteps=2``; ``stage`` = the second-to-last stage of the features dict; weak classifier =
global average pool → Linear, per step, then the time-mean; τ = 2 and α = β = 1 (the conventions of
the same group's "Synergy between the Strong and the Weak" paper); the task CE is on the T_s output only; both
self-distillation targets are detached. Set ``ce_weight=0, alpha=0`` to use only the spatial term,
e.g. inside ``sum`` next to ``twkd`` (then ``train_timesteps`` does not extend T).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from ..errors import SpikeDistillError
from .base import LossOutput, Objective, check_int, check_number, kd_kl, time_mean


class WeakClassifier(LazyModuleMixin, nn.Module):
    """Global average pool → Linear, applied per step to a ``[T, B, C, H, W]`` stage output.

    Given ``in_channels`` and ``num_classes`` it is built at once; otherwise its weight is created on
    the first call from the feature and logits shapes (then build the optimizer after one loss call).
    """

    def __init__(self, in_channels: int | None = None, num_classes: int | None = None):
        super().__init__()
        if in_channels and num_classes:
            self.weight = nn.Parameter(torch.empty(num_classes, in_channels))
            self.bias = nn.Parameter(torch.empty(num_classes))
            self.reset_parameters()
        else:
            self.weight, self.bias = UninitializedParameter(), UninitializedParameter()
        self.num_classes = num_classes

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params():  # nn.Linear's initialisation
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            bound = 1 / math.sqrt(self.weight.shape[1])
            nn.init.uniform_(self.bias, -bound, bound)

    def initialize_parameters(self, feature: torch.Tensor, num_classes: int) -> None:
        if self.has_uninitialized_params():
            with torch.no_grad():
                dtype = torch.promote_types(feature.dtype, torch.float32)
                self.weight.materialize((num_classes, feature.shape[-3]), device=feature.device, dtype=dtype)
                self.bias.materialize((num_classes,), device=feature.device, dtype=dtype)
                self.reset_parameters()

    def forward(self, feature: torch.Tensor, num_classes: int) -> torch.Tensor:
        if self.weight.shape != (num_classes, feature.shape[-3]):
            raise SpikeDistillError(
                f"tssd weak classifier is {tuple(self.weight.shape)} (classes, channels) but the model gives "
                f"{num_classes} classes and {feature.shape[-3]} channels; fix in_channels/num_classes or drop them"
            )
        return F.linear(feature.mean(dim=(-2, -1)), self.weight.to(feature.dtype), self.bias.to(feature.dtype))


def tssd_loss(logits: torch.Tensor, labels: torch.Tensor, weak_logits: torch.Tensor, student_timesteps: int,
              alpha: float = 1.0, beta: float = 1.0, tau: float = 2.0, ce_weight: float = 1.0):
    """``L = w_ce·L_task + α·L_tsd + β·L_ssd`` (the TSSD abstract's loss)::

        z_s   = (1/T_s) Σ_{t≤T_s} z[t]        z_tch = (1/T_t) Σ_{t≤T_t} z[t]     (logits: [T_t, B, K])
        L_task = CE(z_s, y)
        L_tsd  = τ²·KL(p^τ(sg(z_tch)) ‖ p^τ(z_s))
        L_ssd  = τ²·KL(p^τ(sg(z_tch)) ‖ p^τ(h)),   h = weak-classifier logits [B, K]

    Returns ``(total, ce, tsd, ssd)``.
    """
    z_student = time_mean(logits[:student_timesteps])
    z_teacher = time_mean(logits)
    ce = F.cross_entropy(z_student, labels)
    tsd = kd_kl(z_student, z_teacher, tau)
    ssd = kd_kl(weak_logits, z_teacher, tau)
    return ce_weight * ce + alpha * tsd + beta * ssd, ce, tsd, ssd


class TSSD(Objective):
    name = "tssd"
    per_step_logits = True
    needs_features = True

    def __init__(self, extra_timesteps: int = 2, stage: str | None = None, alpha: float = 1.0, beta: float = 1.0,
                 tau: float = 2.0, ce_weight: float = 1.0, in_channels: int | None = None,
                 num_classes: int | None = None):
        super().__init__()
        self.extra_timesteps = check_int(self.name, "extra_timesteps", extra_timesteps, 0)
        self.stage = stage
        self.alpha = check_number(self.name, "alpha", alpha)
        self.beta = check_number(self.name, "beta", beta)
        self.tau = check_number(self.name, "tau", tau, inclusive=False)
        self.ce_weight = check_number(self.name, "ce_weight", ce_weight)
        if in_channels is not None:
            check_int(self.name, "in_channels", in_channels, 1)
        if num_classes is not None:
            check_int(self.name, "num_classes", num_classes, 1)
        self.weak_head = WeakClassifier(in_channels, num_classes)

    def bind(self, model: nn.Module) -> None:
        """Size the weak classifier from the student: its tapped stage's channels and its classes."""
        if not self.weak_head.has_uninitialized_params():
            return
        name = type(model).__name__
        channels = getattr(model, "stage_channels", None)
        if not isinstance(channels, dict) or not channels:
            raise SpikeDistillError(
                f"tssd taps a stage of the student, but {name} has no stage_channels; give it stage_channels = "
                "{stage name: channels} (e.g. {'layer1': 64, 'layer2': 128}) and return those stages from "
                "forward(x, timesteps, return_features=True), or pass tssd the options in_channels and num_classes")
        if self.stage is None and len(channels) < 2:
            raise SpikeDistillError(f"tssd taps the second-to-last stage, but {name}.stage_channels lists only "
                                    f"{list(channels)}; name the stage with the option stage")
        stage = self.stage if self.stage is not None else list(channels)[-2]
        if stage not in channels:
            raise SpikeDistillError(f"tssd: {name} has no stage '{stage}'; known: {', '.join(channels)}")
        classes = getattr(model, "num_classes", None)
        if not isinstance(classes, int):
            raise SpikeDistillError(f"tssd sizes its weak classifier from the student's num_classes, which {name} does "
                                    "not have; set model.num_classes, or pass tssd the option num_classes")
        reference = next(model.parameters())
        with torch.no_grad():
            self.weak_head.initialize_parameters(torch.empty(0, channels[stage], 1, 1, device=reference.device,
                                                             dtype=reference.dtype), classes)
        self.weak_head.num_classes = classes

    def extension(self) -> int:
        """Steps added for training; none when the temporal term and the T_s CE are both off."""
        return self.extra_timesteps if (self.alpha > 0 or self.ce_weight > 0) else 0

    def train_timesteps(self, timesteps: int) -> int:
        return timesteps + self.extension()

    def forward(self, logits, labels, teacher_logits=None, features=None, teacher_features=None, teacher=None):
        logits = self.steps(logits)
        student_timesteps = logits.shape[0] - self.extension()
        if student_timesteps < 1:
            raise SpikeDistillError(
                f"tssd got {logits.shape[0]} timesteps but extends T by {self.extension()}; run the student at "
                "objective.train_timesteps(T) steps"
            )
        weak_logits = time_mean(self.weak_head(self.feature(features, self.stage, "student", -2), logits.shape[-1]))
        total, ce, tsd, ssd = tssd_loss(logits, labels, weak_logits, student_timesteps, self.alpha, self.beta,
                                        self.tau, self.ce_weight)
        return LossOutput(total, {"ce": ce.detach(), "tsd": tsd.detach(), "ssd": ssd.detach()})
