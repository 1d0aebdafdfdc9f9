"""The model registry: constructors registered where they are defined, as timm's ``@register_model``.

Each entry carries what a caller needs to know about a family without building it: its constructor
(whose signature lists the family's options) and the input one sample has by default ``(C, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..registry import Registry, options_of, takes

# Arguments every constructor takes from create_model itself, not from the user's model options.
_BUILDER_ARGS = ("spiking", "num_classes", "neuron")


@dataclass(frozen=True)
class ModelEntry:
    constructor: Callable
    input_shape: tuple[int, int, int]  # (C, H, W) of one sample, the size the family is built for

    def options(self) -> list[str]:
        """The model options ``create_model(name, **options)`` accepts (LIF options aside)."""
        return options_of(self.constructor, _BUILDER_ARGS)

    def takes(self, argument: str) -> bool:
        """Whether the constructor has this argument (or ``**kwargs``)."""
        return takes(self.constructor, argument)


# create_model fills in the builder arguments; the rest of a constructor's signature is its options.
MODELS: Registry[ModelEntry] = Registry("model", call=lambda entry: entry.constructor, given=_BUILDER_ARGS,
                                        recipe_key="model.options")


def register_model(name: str | None = None,
                   input_shape: tuple[int, int, int] | None = None) -> Callable[[Callable], Callable]:
    """Register the decorated constructor as ``name`` (default: the function's name)::

        @sd.register_model("my_net", input_shape=(3, 32, 32))
        def my_net(num_classes=10, timesteps=None): ...

    ``input_shape`` is ``(C, H, W)`` of one sample (what ``export`` and ``eval`` feed by default). The
    constructor takes whichever of ``spiking``, ``num_classes``, ``neuron`` (LIF options), ``in_channels``
    and ``timesteps`` it needs, plus its own options; it returns a model keeping the contract of
    docs/own-model.md. A module that registers models is imported by ``spikedistill --import MODULE``."""
    from ..errors import SpikeDistillError

    if input_shape is None or len(tuple(input_shape)) != 3:
        raise SpikeDistillError(f"register_model needs input_shape=(C, H, W) of one sample, got {input_shape!r}")

    def add(constructor: Callable) -> Callable:
        MODELS.register(name or constructor.__name__)(ModelEntry(constructor, tuple(int(n) for n in input_shape)))
        return constructor

    return add
