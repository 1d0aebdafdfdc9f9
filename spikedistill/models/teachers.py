"""Teachers from anywhere: a registered or importable ANN with a state_dict file, a TorchScript file,
a torchvision classifier. Each returns the plain network; the training room adapts its call
(``[B, K]`` logits → the objective). A spikedistill checkpoint and timm have their own paths
(:mod:`spikedistill.checkpoint`, :mod:`.timm_teacher`).

    teacher.source: module       teacher.name: my_ann | mypkg.nets:MyANN   teacher.weights: ann.pth
    teacher.source: torchscript  teacher.checkpoint: ann.ts
    teacher.source: torchvision  teacher.name: resnet18                   teacher.weights: resnet18.pth
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import torch
from torch import nn

from ..errors import SpikeDistillError
from .registry import MODELS
from .timm_teacher import load_state_dict_file


def module_teacher(name: str, num_classes: int, weights: str | None = None, options: dict | None = None) -> nn.Module:
    """A registered model (built as an ANN where its constructor takes ``spiking``) or ``package.module:callable``
    called with ``options`` (and ``num_classes`` if it takes it), then ``weights`` loaded strictly."""
    options = dict(options or {})
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            build = importlib.import_module(module_name)
            for part in attribute.split("."):
                build = getattr(build, part)
        except (ImportError, AttributeError) as exc:
            raise SpikeDistillError(f"teacher.name={name!r} cannot be imported ({type(exc).__name__}: {exc}); "
                                    "check the module path (package.module:callable) and PYTHONPATH") from None
        if _takes(build, "num_classes"):
            options.setdefault("num_classes", num_classes)
        try:
            net = build(**options)
        except TypeError as exc:
            raise SpikeDistillError(f"teacher {name} cannot be built with teacher.options={options} ({exc})") from None
    else:
        from . import create_model

        entry = MODELS.get(name)
        net = create_model(name, num_classes=num_classes, **({"spiking": False} if entry.takes("spiking") else {}),
                           **options)
    if not isinstance(net, nn.Module):
        raise SpikeDistillError(f"teacher {name} built a {type(net).__name__}, not an nn.Module")
    if weights is not None:
        load_state_dict_file(net, weights)
    return net


def torchscript_teacher(path: str) -> nn.Module:
    """``torch.jit.load(path)`` on the CPU, with one line for a missing or non-TorchScript file."""
    path = Path(path)
    if not path.is_file():
        raise SpikeDistillError(f"TorchScript teacher '{path}' does not exist; set teacher.checkpoint to the file "
                                "torch.jit.save wrote")
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # not a TorchScript archive (a state_dict, a pickled module, a damaged file)
        raise SpikeDistillError(f"'{path}' is not a TorchScript file ({type(exc).__name__}); save the teacher with "
                                "torch.jit.save(torch.jit.script(net), FILE), or use teacher.source=module with a "
                                "state_dict in teacher.weights") from None


def torchvision_teacher(name: str, num_classes: int, weights: str | None = None,
                        options: dict | None = None) -> nn.Module:
    """``torchvision.models.get_model(name, num_classes=...)`` (no download) + a state_dict file."""
    try:
        import torchvision.models
    except Exception as exc:  # ImportError, or a torchvision built for another torch failing at import
        raise SpikeDistillError(f"teacher.source=torchvision needs torchvision ({type(exc).__name__} on import): pip "
                                "install a torchvision built for your torch") from None
    try:
        net = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **(options or {}))
    except (ValueError, TypeError) as exc:
        raise SpikeDistillError(f"torchvision cannot build teacher.name={name!r}: {str(exc).splitlines()[0]}") from None
    if weights is not None:
        load_state_dict_file(net, weights)
    return net


def _takes(fn, argument: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return argument in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
