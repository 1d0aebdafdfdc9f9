"""Model zoo: one registry of constructors, each building an SNN (LIF) or its ANN twin (ReLU).

>>> net = create_model("resnet19", spiking=True, num_classes=10)
>>> net(images, timesteps=4).shape   # [4, B, 10]
"""

from __future__ import annotations

from torch import nn

from ..checks import check_positive_int
from ..errors import SpikeDistillError
from ..neurons import NEURON_OPTIONS, LIFConfig
# noqa: F401,I001  (each registers its models, in this order)
from . import resnet, preact_resnet, vgg, small, ckdsnn_resnet
from .inputs import input_dtype, model_input
from .layers import TimeModel, per_step
from .ckdsnn_resnet import CKDSNNResNet
from .preact_resnet import PreActResNet
from .resnet import CifarResNet
from .small import SmallConvNet
from .vgg import VGGSNN
from .registry import MODELS, ModelEntry, register_model


def create_model(name: str, spiking: bool = True, num_classes: int = 10, **kwargs) -> TimeModel:
    """Build a registered model.

    ``kwargs``: ``in_channels``, ``timesteps`` (the default T for calls that give none), model-specific
    options, and LIF options for SNNs (``decay``, ``threshold``, ``v_reset``, ``surrogate``,
    ``surrogate_param``, ``detach_reset``, ``decay_input``).
    """
    entry = MODELS.get(name)
    if not isinstance(spiking, bool):  # "false" is a true string: it would build the SNN without a word
        raise SpikeDistillError(f"spiking must be True or False, got {spiking!r}")
    check_positive_int("num_classes", num_classes)
    for option in ("in_channels", "timesteps"):
        if kwargs.get(option) is not None:
            check_positive_int(option, kwargs[option])
    neuron = {k: kwargs.pop(k) for k in list(kwargs) if k in NEURON_OPTIONS}
    if neuron and not spiking:
        raise SpikeDistillError(f"neuron options {sorted(neuron)} apply to SNNs only; drop them for spiking=False")
    MODELS.check_options(name, kwargs, also=NEURON_OPTIONS)
    if spiking:
        LIFConfig(**neuron)  # validate once, with a clear message, before building dozens of neurons
    if neuron and not entry.takes("neuron"):  # a user's constructor takes only what it needs
        raise SpikeDistillError(f"model '{name}' takes no 'neuron' argument, so the LIF options {sorted(neuron)} "
                                "cannot reach it; add neuron=None to its constructor or drop them")
    builder = {k: v for k,
               v in {"spiking": spiking, "num_classes": num_classes, "neuron": neuron}.items() if entry.takes(k)}
    model = MODELS.build(name, given=builder, **kwargs)
    if not isinstance(model, nn.Module):
        raise SpikeDistillError(f"model '{name}' was built as a {type(model).__name__}, not an nn.Module; "
                                "its constructor must return the network")
    if "spiking" not in builder and hasattr(model, "spiking") and bool(model.spiking) != spiking:
        raise SpikeDistillError(f"model '{name}' builds {'an SNN' if model.spiking else 'an ANN'} (its .spiking is "
                                f"{model.spiking}); set model.spiking={str(bool(model.spiking)).lower()}")
    # What rebuilds it from a checkpoint (sd.fit records it; see docs/own-model.md).
    model.created_as = {"name": name, "spiking": spiking, "num_classes": num_classes, "options": {**kwargs, **neuron},
                        "module": entry.constructor.__module__}
    return model


def default_input_shape(name: str, in_channels: int | None = None) -> tuple[int, int, int]:
    """``(C, H, W)`` of one sample for a registered family (``in_channels`` replaces C)."""
    shape = MODELS.get(name).input_shape
    return (in_channels or shape[0],) + shape[1:]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["MODELS", "ModelEntry", "register_model", "create_model", "default_input_shape", "model_input",
           "count_parameters", "TimeModel", "per_step"]
