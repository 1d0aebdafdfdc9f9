"""Pre-activation ResNet-34 for ImageNet (224×224), the full-range paper's ImageNet student.

Follows the FR code's ``model/preact_resnet.py``:

* Stem: conv7×7(3→64, s2, p3, bias) → BN → max-pool(3, s2, p1); no activation in the stem.
* Block: act → conv3×3(bias) → BN → act → conv3×3(bias) → BN, + shortcut; no activation after the
  addition (the next block's first neuron spikes the sum). Stages [3,4,6,3] at 64/128/256/512.
* Shortcut: identity, or conv1×1(bias) → BN when the shape changes. It reads the block's
  **real-valued input** ``x``, not the first neuron's spikes (``identity = self.downsample(x)`` in the
  code's ``BasicBlock.forward``), so in the energy count those 1×1 convs are MACs, not SOPs.
* Head: GAP → FC(512→K) on the real-valued last block output (MACs too).
* Init: Kaiming-normal (fan-out) conv weights, conv biases left at PyTorch's default (the code zeroes
  none), BN weight 1 / bias 0. BatchNorm is ``SyncBatchNorm`` in the code; here that is the recipe's
  ``distributed.sync_bn: true`` (plain BN over T·B on one process).
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
        self.branch2 = ConvBN(out_ch, out_ch, 3, 1, bias=True)
        self.shortcut = ConvBN(in_ch, out_ch, 1, stride, padding=0,
                               bias=True) if stride != 1 or in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = per_step(self.branch2, conv_bn_act(self.branch1, self.act2, self.act1(x)))
        identity = x if self.shortcut is None else per_step(self.shortcut, x)  # the real-valued input, as the code
        return out + identity


class PreActResNet(TimeModel):
    def __init__(self, blocks, spiking: bool, num_classes: int = 1000, in_channels: int = 3, timesteps=None,
                 neuron: dict | None = None, init: str = "kaiming"):
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
        init_weights(self, init, zero_conv_bias=False)

    def forward_stages(self, x, timesteps):
        out = stem_forward(self.stem, x, timesteps)
        yield "stem", out
        for name, stage in zip(self.stage_names[1:], self.stages):
            out = stage(out)
            yield name, out
        yield "logits", self.fc(out.mean(dim=(-2, -1)))


@register_model(input_shape=(3, 224, 224))
def preact_resnet34(spiking=True, num_classes=1000, in_channels=3, timesteps=None, neuron=None,
                    init="kaiming") -> PreActResNet:
    return PreActResNet((3, 4, 6, 3), spiking, num_classes, in_channels, timesteps, neuron, init)
