"""The model registry: constructors registered where they are defined, as timm's ``@register_model``.

Each entry carries what a caller needs to know about a family without building it: its constructor
(whose signature lists the family's options) and the input one sample has by default ``(C, H, W)``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from ..registry import Registry

# Arguments every constructor takes from create_model itself, not from the user's model options.
_BUILDER_ARGS = ("spiking", "num_classes", "neuron")


@dataclass(frozen=True)
class ModelEntry:
    constructor: Callable
    input_shape: tuple[int, int, int]  # (C, H, W) of one sample, the size the family is built for

    def options(self) -> list[str]:
        """The model options ``create_model(name, **options)`` accepts (LIF options aside)."""
        return [p for p in inspect.signature(self.constructor).parameters if p not in _BUILDER_ARGS]


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(input_shape: tuple[int, int, int]) -> Callable[[Callable], Callable]:
    """Register the decorated constructor under its function name."""

    def add(constructor: Callable) -> Callable:
        MODELS.register(constructor.__name__)(ModelEntry(constructor, tuple(input_shape)))
        return constructor

    return add
