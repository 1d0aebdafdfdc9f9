"""timm models as ANN teachers — the FR ImageNet teacher is ``timm.create_model('resnet34')`` with a weights
file (the FR code's ``experiment/imagenet/main.py``; docs/reproduce.md).

timm is an optional extra (``pip install 'spikedistill[timm]'``) and needs a torchvision that matches the
installed torch build. It is imported only by :func:`create_timm_teacher`, only when a recipe says
``teacher.source: timm``; nothing else in the library imports it, and nothing is downloaded unless
``pretrained=True`` is asked for.

:class:`TimmTeacher` gives any timm classifier the zoo's call signature — ``forward(x, timesteps=None,
return_features=False)`` returning ``[1, B, K]`` logits (an ANN runs once) — and, for timm's ResNet layout
(``conv1, bn1, act1, maxpool, layer1..layer4, global_pool, fc``), the stage features a feature-based
objective reads. :func:`load_state_dict_file` loads a state_dict file into it (plain, or wrapped in
``state_dict``/``model``/``best_net``; a DDP ``module.`` prefix is stripped).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import SpikeDistillError

RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")


class TimmTeacher(nn.Module):
    """A (timm) classifier ``net`` as an ANN teacher: ``[B, C, H, W] → [1, B, K]``."""

    spiking = False

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.num_classes = getattr(net, "num_classes", None)
        self.resnet_layout = all(hasattr(net, name)
                                 for name in ("conv1", "bn1", "act1", "maxpool", "fc", *RESNET_STAGES))
        self.stage_names = ("stem",) + RESNET_STAGES if self.resnet_layout else ()
        self.fc = net.fc if self.resnet_layout else None  # a GAP → fc head, for CAM-style objectives

    def forward(self, x: torch.Tensor, timesteps: int | None = None, return_features: bool = False):
        if x.dim() != 4:
            raise SpikeDistillError(f"a timm teacher takes images [B, C, H, W], got shape {tuple(x.shape)}")
        if not return_features:
            return self.net(x).unsqueeze(0)
        if not self.resnet_layout:
            raise SpikeDistillError("stage features of a timm teacher need timm's ResNet layout (conv1 … layer4, fc); "
                                    "use an objective that reads logits only, or teacher.features=false")
        net = self.net
        out = net.maxpool(net.act1(net.bn1(net.conv1(x))))
        features = {"stem": out.unsqueeze(0)}
        for name in RESNET_STAGES:
            out = getattr(net, name)(out)
            features[name] = out.unsqueeze(0)
        logits = net.fc(out.mean(dim=(-2, -1)))
        return logits.unsqueeze(0), features


def read_state_dict(path: str | Path) -> dict:
    """The tensors of a ``.pth``/``.pt``/``.bin`` (torch) or ``.safetensors`` file, unwrapped from
    ``state_dict``/``model``/``best_net``, with a DDP ``module.`` prefix stripped."""
    path = Path(path)
    if not path.is_file():
        raise SpikeDistillError(f"teacher weights '{path}' not found; set teacher.weights=FILE (a state_dict) "
                                "or teacher.pretrained=true to download timm's")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except ImportError:
        raise SpikeDistillError(f"'{path}' is a safetensors file: pip install safetensors (timm installs it)") from None
    except Exception as exc:  # pickle, zip and safetensors errors all mean: not a readable weights file
        raise SpikeDistillError(f"cannot read teacher weights '{path}' ({type(exc).__name__}); "
                                "expected a torch or safetensors state_dict") from None
    for key in ("state_dict", "model", "best_net"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SpikeDistillError(f"teacher weights '{path}' hold no state_dict of tensors")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def load_state_dict_file(net: nn.Module, path: str | Path) -> nn.Module:
    """Load ``path`` into ``net`` strictly (the FR code loads its teacher with ``strict=True``)."""
    state = read_state_dict(path)
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise SpikeDistillError(f"teacher weights '{path}' do not fit the model ({'; '.join(parts)}); "
                                "check teacher.name and the number of classes")
    net.load_state_dict(state, strict=True)
    return net


def create_timm_teacher(name: str, num_classes: int, pretrained: bool = False,
                        weights: str | None = None) -> TimmTeacher:
    """``timm.create_model(name, pretrained, num_classes)`` (+ a weights file) as a :class:`TimmTeacher`."""
    try:
        import timm
    except Exception as exc:  # ImportError, or a torchvision built for another torch failing at import
        raise SpikeDistillError(f"teacher.source=timm needs timm ({type(exc).__name__} on import): pip install "
                                "'spikedistill[timm]' with a torchvision built for your torch") from None
    try:
        net = timm.create_model(name, pretrained=pretrained, num_classes=num_classes)
    except RuntimeError as exc:  # timm's "Unknown model (...)"
        raise SpikeDistillError(f"timm cannot build teacher.name={name!r}: {str(exc).splitlines()[0]}") from None
    if weights is not None:
        load_state_dict_file(net, weights)
    return TimmTeacher(net)
