"""``sum``: a weighted sum of named objectives, built from data — no new class per combination.

>>> create_loss("sum", terms=[{"name": "twkd", "alpha": 0.2, "beta": 0.5},
...                           {"name": "tssd", "weight": 0.5, "ce_weight": 0, "alpha": 0}])

Each term is ``{"name": ..., "weight": w (default 1), **options}``. ``total = Σ w_i·total_i``;
``parts`` are each term's parts prefixed ``"<name>."`` (``"<name>_<i>."`` if a name repeats) plus
``"<name>.total"``. The flags are the OR of the terms'; the terms must agree on ``train_timesteps``.
"""

from __future__ import annotations

from torch import nn

from ..errors import SpikeDistillError
from .base import LossOutput, Objective, check_number
from .registry import create_loss


class Sum(Objective):
    name = "sum"

    def __init__(self, terms: list | tuple = ()):
        super().__init__()

        if not isinstance(terms, (list, tuple)) or not terms:
            raise SpikeDistillError("loss 'sum' needs terms=[{'name': 'twkd', 'weight': 1.0, ...}, ...] (non-empty)")
        objectives, weights, labels = [], [], []
        for i, term in enumerate(terms):
            if not isinstance(term, dict) or "name" not in term:
                raise SpikeDistillError(f"loss 'sum': term {i} must be a dict with a 'name' key, got {term!r}")
            options = dict(term)
            name = options.pop("name")
            weights.append(check_number("sum", f"terms[{i}].weight", options.pop("weight", 1.0)))
            objectives.append(create_loss(name, **options))
            labels.append(name)
        self.labels = [n if labels.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(labels)]
        self.terms = nn.ModuleList(objectives)
        self.weights = weights
        self.needs_teacher = any(t.needs_teacher for t in objectives)
        self.needs_features = any(t.needs_features for t in objectives)
        self.needs_teacher_features = any(t.needs_teacher_features for t in objectives)
        self.train_timesteps(4)  # fail at construction when the terms disagree

    def train_timesteps(self, timesteps: int) -> int:
        wanted = {label: term.train_timesteps(timesteps) for label, term in zip(self.labels, self.terms)}
        if len(set(wanted.values())) > 1:
            raise SpikeDistillError(
                f"loss 'sum': terms train at different timesteps {wanted}; keep one extending term "
                "(e.g. tssd with ce_weight=0, alpha=0 next to twkd uses only its spatial term)"
            )
        return next(iter(wanted.values()))

    def set_epoch(self, epoch: int) -> None:
        for term in self.terms:
            term.set_epoch(epoch)

    def bind(self, model: nn.Module) -> None:
        for term in self.terms:
            term.bind(model)

    def forward(self, logits, labels, teacher_logits=None, features=None, teacher_features=None, teacher=None):
        total, parts = 0.0, {}
        for term, label, weight in zip(self.terms, self.labels, self.weights):
            out = term(logits, labels, teacher_logits, features, teacher_features, teacher)
            total = total + weight * out.total
            parts[f"{label}.total"] = out.total.detach()
            parts.update({f"{label}.{key}": value for key, value in out.parts.items()})
        return LossOutput(total, parts)
