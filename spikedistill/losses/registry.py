"""The loss registry and ``create_loss``: the package module registers every objective class here."""

from __future__ import annotations

from ..errors import SpikeDistillError
from ..registry import Registry
from .base import Objective

LOSSES: Registry = Registry("loss", recipe_key="loss.options")  # an objective's options: its __init__ keywords


def loss_options(name: str) -> list[str]:
    """The option names ``create_loss(name, ...)`` accepts."""
    return LOSSES.options(name)


def create_loss(name: str, **options) -> Objective:
    """Build a registered objective; unknown names and options fail with one line listing valid ones."""
    return LOSSES.build(name, **options)


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
