"""The loss registry and ``create_loss``: the package module registers every objective class here."""

from __future__ import annotations

import inspect

from ..errors import SpikeDistillError, did_you_mean
from ..registry import Registry
from .base import Objective

LOSSES: Registry = Registry("loss")


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


def register_loss(name: str):
    """Register an :class:`~.base.Objective` subclass as ``name`` (decorator); ``create_loss(name, ...)``,
    recipes (``loss.name``) and ``sd.fit(loss=name)`` then build it. Its ``__init__`` keyword arguments are
    its options."""

    def add(cls):
        if not (isinstance(cls, type) and issubclass(cls, Objective)):
            raise SpikeDistillError(f"register_loss('{name}') takes a subclass of spikedistill.losses.Objective, "
                                    f"got {cls!r}")
        cls.name = name
        LOSSES.register(name)(cls)
        return cls

    return add
