"""SpikingJelly 2.0 students on our LIF: :func:`from_spikingjelly`.

A SpikingJelly multi-step network (``step_mode='m'``: ``layer.Conv2d`` / ``BatchNorm2d`` / ``Linear``,
``layer.SeqToANNContainer`` around plain torch layers, ``neuron.LIFNode`` / ``IFNode``) takes
``[T, B, ...]`` and returns ``[T, B, K]``. :func:`from_spikingjelly` copies it, replaces each neuron by
our :class:`~spikedistill.neurons.LIF` with the same constants, and wraps it in the model contract,
``forward(x, timesteps=None) → [T, B, K]`` (a static image is fed at every step), so it trains on our
fused LIF and gets full-range evaluation, energy, NIR and ONNX. The stateless layers are kept as they
are, so the state dict keys are the SpikingJelly network's.

The constants (docs/conventions.md):

=====================================  ===========================================================
SpikingJelly 2.0                       ours
=====================================  ===========================================================
``LIFNode(tau=τ, decay_input=b)``      ``LIF(decay=1 − 1/τ, decay_input=b)``
``IFNode()``                           ``LIF(decay=1.0)``
``v_threshold``, ``detach_reset``      ``threshold``, ``detach_reset``
``v_reset=None`` (soft reset)          ``v_reset=None``
``surrogate.Sigmoid(alpha)``           ``surrogate="sigmoid", surrogate_param=alpha``
``surrogate.ATan(alpha)``              ``surrogate="atan", surrogate_param=alpha``
``surrogate.Rect(alpha)``              ``surrogate="rectangular", surrogate_param=1/alpha``
``surrogate.PiecewiseQuadratic(a)``    ``surrogate="triangle", surrogate_param=1/a``
=====================================  ===========================================================

Refused by name, in one line: neurons without an equivalent (``ParametricLIFNode``'s learnable τ, any
other neuron or stateful SpikingJelly module), single-step neurons, ``store_v_seq=True`` and other
surrogates.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import SpikeDistillError
from ..neurons import LIF
from .layers import TimeModel


def _spikingjelly():
    try:
        from spikingjelly.activation_based import base, neuron, surrogate
    except ImportError:
        raise SpikeDistillError("from_spikingjelly needs SpikingJelly 2.0; pip install spikingjelly") from None
    return base, neuron, surrogate


def _surrogate(function, where: str) -> tuple[str, float]:
    """Our surrogate name and parameter for a SpikingJelly surrogate module (same ∂S/∂x)."""
    _, _, surrogate = _spikingjelly()
    if not getattr(function, "spiking", True):
        raise SpikeDistillError(f"{where} uses its surrogate with spiking=False (a smooth activation, not spikes); "
                                "set spiking=True")
    kind = type(function)
    if kind is surrogate.Sigmoid:
        return "sigmoid", float(function.alpha)
    if kind is surrogate.ATan:
        return "atan", float(function.alpha)
    if kind is surrogate.Rect:  # α·1[|x| < 1/(2α)] is our rectangular with width a = 1/α
        return "rectangular", 1.0 / float(function.alpha)
    if kind is surrogate.PiecewiseQuadratic:  # α − α²|x| on |x| ≤ 1/α is our triangle with γ = 1/α
        return "triangle", 1.0 / float(function.alpha)
    raise SpikeDistillError(f"{where} uses surrogate.{kind.__name__}, which has no equivalent here; use "
                            "surrogate.Sigmoid, ATan, Rect or PiecewiseQuadratic (see docs/conventions.md)")


def lif_options(node, where: str = "the neuron") -> dict:
    """Our LIF options for a SpikingJelly ``LIFNode`` or ``IFNode`` (module docstring), or one line
    naming what has no equivalent."""
    _, neuron, _ = _spikingjelly()
    kind = type(node)
    if isinstance(node, neuron.ParametricLIFNode):
        raise SpikeDistillError(f"{where} is a ParametricLIFNode, whose learnable τ has no equivalent in our LIF "
                                "(a fixed decay); use neuron.LIFNode(tau=...) with the τ it learned")
    if kind not in (neuron.LIFNode, neuron.IFNode):
        raise SpikeDistillError(f"{where} is SpikingJelly's {kind.__name__}, which has no equivalent here; "
                                "from_spikingjelly converts LIFNode and IFNode")
    if node.step_mode != "m":
        raise SpikeDistillError(f"{where} is a single-step neuron (step_mode='{node.step_mode}'); build the network "
                                "multi-step: functional.set_step_mode(net, 'm'), input [T, B, ...]")
    if node.store_v_seq:
        raise SpikeDistillError(f"{where} sets store_v_seq=True; our LIF keeps no membrane to store: set it False")
    surrogate_name, surrogate_param = _surrogate(node.surrogate_function, where)
    options = {"threshold": float(node.v_threshold), "v_reset": None if node.v_reset is None else float(node.v_reset),
               "surrogate": surrogate_name, "surrogate_param": surrogate_param,
               "detach_reset": bool(node.detach_reset)}
    if kind is neuron.IFNode:
        return dict(options, decay=1.0, decay_input=False)
    if not float(node.tau) > 1.0:
        raise SpikeDistillError(f"{where} has tau={node.tau}; our LIF needs tau > 1 (decay = 1 - 1/tau in (0, 1])")
    return dict(options, decay=1.0 - 1.0 / float(node.tau), decay_input=bool(node.decay_input))


def _replace_neurons(net: nn.Module) -> int:
    """Swap every LIFNode / IFNode of ``net`` (in place) for our LIF; refuse any other stateful module."""
    base, _, _ = _spikingjelly()
    count = 0
    for parent_name, parent in list(net.named_modules()):
        for name, child in list(parent._modules.items()):
            where = f"layer '{parent_name + '.' if parent_name else ''}{name}'"
            if isinstance(child, base.MemoryModule):
                try:
                    parent._modules[name] = LIF(**lif_options(child, where))
                except SpikeDistillError as exc:
                    raise SpikeDistillError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from None
                count += 1
    return count


def _first_and_last(net: nn.Module) -> tuple[int | None, int | None]:
    """(input channels of the first conv or linear layer, outputs of the last linear layer)."""
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    first = None if not layers else (layers[0].in_channels if isinstance(layers[0], nn.Conv2d)
                                     else layers[0].in_features)
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    return first, (linears[-1].out_features if linears else None)


class SpikingJellyStudent(TimeModel):
    """A converted SpikingJelly network under the model contract: ``forward(x, timesteps=None)`` →
    per-step logits ``[T, B, K]``. ``net`` is the network itself, fed ``[T, B, ...]``."""

    def __init__(self, net: nn.Module, num_classes: int, in_channels: int, timesteps: int | None = None):
        super().__init__(True, num_classes, in_channels, timesteps)
        self.net = net
        self.stage_channels = {}

    def forward_stages(self, x: torch.Tensor, timesteps: int):
        x_seq = x if x.dim() == 5 else x.unsqueeze(0).repeat(timesteps, *([1] * x.dim()))
        logits = self.net(x_seq)
        steps, batch = x_seq.shape[:2]
        if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or tuple(logits.shape[:2]) != (steps, batch):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise SpikeDistillError(
                f"the SpikingJelly network returned {shape} for input [T={steps}, B={batch}, ...]; it must return "
                "per-step logits [T, B, K]: drop a .mean(0) over time at the end of its forward")
        yield "logits", logits


def from_spikingjelly(net: nn.Module, timesteps: int = 4, num_classes: int | None = None,
                      in_channels: int | None = None) -> SpikingJellyStudent:
    """A copy of the SpikingJelly 2.0 multi-step network ``net`` on our LIF, under the model contract.

    ``timesteps`` is the default T for calls that give none; ``num_classes`` and ``in_channels`` are read
    from the last linear and first conv (or linear) layer unless given. ``net`` itself is not changed.
    Equivalences and refusals: module docstring and docs/conventions.md."""
    _spikingjelly()
    converted = copy.deepcopy(net)
    if _replace_neurons(converted) == 0:
        raise SpikeDistillError(f"{type(net).__name__} has no SpikingJelly LIFNode or IFNode to convert")
    found_channels, found_classes = _first_and_last(converted)
    in_channels = in_channels or found_channels
    num_classes = num_classes or found_classes
    if in_channels is None or num_classes is None:
        missing = "in_channels" if in_channels is None else "num_classes"
        raise SpikeDistillError(f"cannot read {missing} from {type(net).__name__}'s layers; "
                                f"pass from_spikingjelly(net, {missing}=...)")
    return SpikingJellyStudent(converted, num_classes, in_channels, timesteps).train(net.training)
