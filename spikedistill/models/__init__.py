"""Model zoo: one registry of constructors, each building an SNN (LIF) or its ANN twin (ReLU).

>>> net = create_model("resnet19", spiking=True, num_classes=10)
>>> net(images, timesteps=4).shape   # [4, B, 10]
"""

from __future__ import annotations

import inspect

from torch import nn

from ..errors import SpikeDistillError
from ..neurons import NEURON_OPTIONS, LIFConfig
from ..registry import Registry
from .ckdsnn_resnet import CKDSNNResNet, ckdsnn_resnet19
from .layers import TimeModel, per_step
from .preact_resnet import PreActResNet, preact_resnet34
from .resnet import CifarResNet, resnet18, resnet19, resnet34
from .small import SmallConvNet, small_cnn
from .vgg import VGGSNN, vggsnn

MODELS: Registry = Registry("model")
for _fn, _cls in ((resnet18, CifarResNet), (resnet19, CifarResNet), (resnet34, CifarResNet),
                  (preact_resnet34, PreActResNet), (vggsnn, VGGSNN), (small_cnn, SmallConvNet),
                  (ckdsnn_resnet19, CKDSNNResNet)):
    _fn.model_class = _cls  # for listing valid options in error messages
    MODELS.register(_fn.__name__)(_fn)

def create_model(name: str, spiking: bool = True, num_classes: int = 10, **kwargs) -> TimeModel:
    """Build a registered model.

    ``kwargs``: ``in_channels``, ``timesteps`` (the default T for calls that give none), model-specific
    options, and LIF options for SNNs (``decay``, ``threshold``, ``v_reset``, ``surrogate``,
    ``surrogate_param``, ``detach_reset``, ``decay_input``).
    """
    constructor = MODELS.get(name)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise SpikeDistillError(f"num_classes must be a positive integer (got {num_classes!r})")
    for option in ("in_channels", "timesteps"):
        value = kwargs.get(option)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise SpikeDistillError(f"{option} must be a positive integer (got {value!r})")
    neuron = {k: kwargs.pop(k) for k in list(kwargs) if k in NEURON_OPTIONS}
    if neuron and not spiking:
        raise SpikeDistillError(f"neuron options {sorted(neuron)} apply to SNNs only; drop them for spiking=False")
    if spiking:
        LIFConfig(**neuron)  # validate once, with a clear message, before building dozens of neurons
    try:
        return constructor(spiking=spiking, num_classes=num_classes, neuron=neuron, **kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        known = [p for p in inspect.signature(getattr(constructor, "model_class")).parameters
                 if p not in ("self", "spiking", "neuron", "widths", "blocks", "hidden_fc") or
                 (p == "widths" and name == "small_cnn")]
        bad = str(exc).split("argument")[-1].strip()
        raise SpikeDistillError(
            f"unknown model option {bad} for '{name}'; known: {', '.join(known + list(NEURON_OPTIONS))}"
        ) from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["MODELS", "create_model", "count_parameters", "TimeModel", "per_step"]
