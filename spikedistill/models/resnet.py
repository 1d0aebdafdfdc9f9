"""CIFAR ResNets (3×3 stem, no max-pool) as SNNs and their ANN twins, as in the full-range paper's code.

* ``resnet18``: 64-128-256-512, blocks [2,2,2,2], head GAP → FC(512→K).
* ``resnet34``: 64-128-256-512, blocks [3,4,6,3], head GAP → FC(512→K).
* ``resnet19``: 128-256-512, blocks [3,3,2], head GAP → FC(512→256) → act → FC(256→K).

BasicBlock: conv3×3 → BN → act → conv3×3 → BN, + shortcut (identity, or conv1×1 + BN when the shape
changes), then act. ``act`` is an LIF for SNNs and a ReLU for the ANN twin.

``init="kaiming"`` (default) draws conv weights Kaiming-normal (fan-out); ``init="default"`` keeps
PyTorch's initialisation, which is what the FR code's SNN ResNets train from.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBN, TimeModel, conv_bn_act, init_weights, make_activation, per_step, stem_forward
from .registry import register_model


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, spiking: bool, neuron_options: dict):
        super().__init__()
        self.branch1 = ConvBN(in_ch, out_ch, 3, stride)
        self.act1 = make_activation(spiking, neuron_options)
        self.branch2 = ConvBN(out_ch, out_ch, 3, 1)
        self.shortcut = ConvBN(in_ch, out_ch, 1, stride, padding=0) if stride != 1 or in_ch != out_ch else None
        self.act2 = make_activation(spiking, neuron_options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = conv_bn_act(self.branch1, self.act1, x)
        identity = x if self.shortcut is None else per_step(self.shortcut, x)
        return conv_bn_act(self.branch2, self.act2, out, residual=identity)


class CifarResNet(TimeModel):
    def __init__(
        self,
        widths: tuple[int, ...],
        blocks: tuple[int, ...],
        hidden_fc: int | None,
        spiking: bool,
        num_classes: int = 10,
        in_channels: int = 3,
        timesteps: int | None = None,
        neuron: dict | None = None,
        init: str = "kaiming",
    ):
        super().__init__(spiking, num_classes, in_channels, timesteps)
        neuron_options = neuron or {}
        self.stem = ConvBN(in_channels, widths[0], 3, 1)
        self.stem_act = make_activation(spiking, neuron_options)
        stages, in_ch = [], widths[0]
        for i, (width, count) in enumerate(zip(widths, blocks)):
            layers = []
            for j in range(count):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(in_ch, width, stride, spiking, neuron_options))
                in_ch = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.stage_names = ("stem",) + tuple(f"layer{i + 1}" for i in range(len(stages)))
        self.stage_channels = dict(zip(self.stage_names, widths[:1] + tuple(widths)))
        if hidden_fc:
            self.fc1 = nn.Linear(in_ch, hidden_fc)
            self.fc1_act = make_activation(spiking, neuron_options)
            self.fc = nn.Linear(hidden_fc, num_classes)
        else:
            self.fc1 = self.fc1_act = None
            self.fc = nn.Linear(in_ch, num_classes)
        init_weights(self, init)  # "default": PyTorch's init, as FR's model/resnet.py (it has no init loop)

    def forward_stages(self, x, timesteps):
        out = stem_forward(self.stem, x, timesteps, act=self.stem_act)
        yield "stem", out
        for name, stage in zip(self.stage_names[1:], self.stages):
            out = stage(out)
            yield name, out
        out = out.mean(dim=(-2, -1))  # global average pool, per step: [T, B, C]
        if self.fc1 is not None:
            out = self.fc1_act(self.fc1(out))
        yield "logits", self.fc(out)


@register_model(input_shape=(3, 32, 32))
def resnet18(spiking=True, num_classes=10, in_channels=3, timesteps=None, neuron=None, init="kaiming") -> CifarResNet:
    return CifarResNet((64, 128, 256, 512), (2, 2, 2, 2), None, spiking, num_classes, in_channels, timesteps, neuron,
                       init)


@register_model(input_shape=(3, 32, 32))
def resnet19(spiking=True, num_classes=10, in_channels=3, timesteps=None, neuron=None, init="kaiming") -> CifarResNet:
    return CifarResNet((128, 256, 512), (3, 3, 2), 256, spiking, num_classes, in_channels, timesteps, neuron, init)


@register_model(input_shape=(3, 32, 32))
def resnet34(spiking=True, num_classes=10, in_channels=3, timesteps=None, neuron=None, init="kaiming") -> CifarResNet:
    return CifarResNet((64, 128, 256, 512), (3, 4, 6, 3), None, spiking, num_classes, in_channels, timesteps, neuron,
                       init)
