"""Pre-activation ResNet-34 for ImageNet (224×224) — METHODS.md §1.6.3.

Stem: conv7×7(3→64, s2, p3, bias) → BN → max-pool(3, s2, p1); no activation in the stem.
Block: act → conv3×3(bias) → BN → act → conv3×3 → BN, + shortcut. Stages [3,4,6,3] at
64/128/256/512. Head: GAP → FC(512→K).

The official code does not say whether the downsampling shortcut reads the block input or the first
activation's output; here it reads the activation output, so every conv after the stem sees spikes
(binary inputs: accumulate-only synaptic operations).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBN, TimeModel, conv_bn_act, init_weights, make_activation, per_step, stem_forward
from .registry import register_model


class PreActBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, spiking: bool, neuron_options: dict):
        super().__init__()
        self.act1 = make_activation(spiking, neuron_options)
        self.branch1 = ConvBN(in_ch, out_ch, 3, stride, bias=True)
        self.act2 = make_activation(spiking, neuron_options)
        self.branch2 = ConvBN(out_ch, out_ch, 3, 1)
        self.shortcut = ConvBN(in_ch, out_ch, 1, stride, padding=0) if stride != 1 or in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(x)
        out = per_step(self.branch2, conv_bn_act(self.branch1, self.act2, pre))
        identity = x if self.shortcut is None else per_step(self.shortcut, pre)
        return out + identity


class PreActResNet(TimeModel):
    def __init__(self, blocks, spiking: bool, num_classes: int = 1000, in_channels: int = 3, timesteps=None, neuron: dict | None = None):
        super().__init__(spiking, num_classes, in_channels, timesteps)
        neuron_options = neuron or {}
        self.stem = nn.Sequential(ConvBN(in_channels, 64, 7, 2, padding=3, bias=True), nn.MaxPool2d(3, 2, 1))
        stages, in_ch = [], 64
        for i, (width, count) in enumerate(zip((64, 128, 256, 512), blocks)):
            layers = []
            for j in range(count):
                layers.append(PreActBlock(in_ch, width, 2 if (i > 0 and j == 0) else 1, spiking, neuron_options))
                in_ch = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.stage_names = ("stem",) + tuple(f"layer{i + 1}" for i in range(len(stages)))
        self.stage_channels = dict(zip(self.stage_names, (64, 64, 128, 256, 512)))
        self.fc = nn.Linear(512, num_classes)
        init_weights(self)

    def forward_stages(self, x, timesteps):
        out = stem_forward(self.stem, x, timesteps)
        yield "stem", out
        for name, stage in zip(self.stage_names[1:], self.stages):
            out = stage(out)
            yield name, out
        yield "logits", self.fc(out.mean(dim=(-2, -1)))


@register_model(input_shape=(3, 224, 224))
def preact_resnet34(spiking=True, num_classes=1000, in_channels=3, timesteps=None, neuron=None) -> PreActResNet:
    return PreActResNet((3, 4, 6, 3), spiking, num_classes, in_channels, timesteps, neuron)
