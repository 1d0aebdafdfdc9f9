"""What a model must give the objectives that read its stages (``tssd``, ``ckdsnn``), checked where it
is called so that a model without them is one line naming what is missing, not a traceback.

The contract: ``forward(x, timesteps=None, return_features=False)`` returns per-step logits ``[T, B, K]``;
with ``return_features=True`` it returns ``(logits, {stage name: [T, B, C, H, W]})`` (an ANN teacher's
maps may be ``[B, C, H, W]``), and the model lists its stages' channels in ``stage_channels``.
"""

from __future__ import annotations

import functools
import inspect

import torch
from torch import nn

from ..errors import SpikeDistillError


def takes_return_features(model) -> bool:
    """Whether ``model``'s forward accepts ``return_features`` (looked up through DDP and torch.compile)."""
    inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None) or model
    forward = inner.forward if isinstance(inner, nn.Module) else inner
    forward = getattr(forward, "__func__", forward)
    try:
        return _accepts_return_features(forward)
    except TypeError:  # an unhashable callable: read its signature each time
        return _accepts_return_features.__wrapped__(forward)


@functools.lru_cache(maxsize=64)
def _accepts_return_features(forward) -> bool:
    """One signature read per forward function: the check runs on every training step."""
    try:
        parameters = inspect.signature(forward).parameters.values()
    except (TypeError, ValueError):  # no signature to read: let the call decide
        return True
    return any(p.name == "return_features" or p.kind is p.VAR_KEYWORD for p in parameters)


def logits_and_features(model, x: torch.Tensor, features: bool, role: str = "student", **kwargs):
    """``(logits, features)`` of ``model(x, **kwargs)``; ``features`` is ``None`` unless asked for, then the
    ``{stage: map}`` dict the model returns with ``return_features=True``."""
    if not features:
        return model(x, **kwargs), None
    name = type(getattr(model, "module", None) or getattr(model, "_orig_mod", None) or model).__name__
    if not takes_return_features(model):
        raise SpikeDistillError(
            f"the loss reads the {role}'s stage features, but {name}.forward takes no return_features; give it "
            "forward(x, timesteps=None, return_features=False) that returns (logits, {stage name: [T, B, C, H, W]}) "
            "when return_features=True")
    out = model(x, return_features=True, **kwargs)
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], dict)):
        what = f"a tensor of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"
        raise SpikeDistillError(
            f"the loss reads the {role}'s stage features, but {name}(x, return_features=True) returned {what}; "
            "return (logits, {stage name: [T, B, C, H, W]})")
    return out[0], out[1]
