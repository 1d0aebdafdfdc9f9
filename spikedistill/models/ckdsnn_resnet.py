"""CKDSNN's own ResNet-19: the SNN student and its ANN teacher (docs/objectives.md#ckdsnn).

Built after the CKDSNN code (``snn_models/resnet_models.py`` and ``ann_models/resnet.py``, both with
``width_mult=8``); it differs from FR's ResNet-19 (``resnet19``, the full-range paper's) in four places:

* **Shortcut** (shape change only): AvgPool2d(stride) → conv1×1 → BN, not a strided conv1×1 → BN.
* **Last block of layer3** ends in a ReLU instead of a neuron (the code's ``is_last=True``), so the
  layer3 output — the map CKDSNN's SAMD reads — is real-valued, not spikes.
* **SNN head**: GAP → Linear(512→256) → Linear(256→K), with no neuron (and no nonlinearity) between.
  The code averages over time *before* the head and returns ``[B, K]``. The head is affine, so running
  it per step and averaging afterwards gives exactly the same logits; this model does that and returns
  per-step logits ``[T, B, K]`` like every other model (their time-mean is the code's output), which is
  what lets one pass report top-1 at every k.
* **ANN teacher** (``spiking=False``): the same trunk with ReLU everywhere (stem included) and a single
  FC head GAP → Linear(512→K), named ``fc`` (the code's ``linear``): its rows are the CAM weights.

Everything else as ``resnet19``: stem conv3×3(→128, no bias) → BN → act, stages [3, 3, 2] at
128/256/512 with strides 1/2/2, block conv3×3 → BN → act → conv3×3 → BN, + shortcut, then act.
Init: PyTorch's default (``init="default"``; the code has no init loop); ``init="kaiming"`` is there.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBN, TimeModel, conv_bn_act, init_weights, make_activation, per_step, stem_forward
from .registry import register_model


class CKDSNNBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, spiking: bool, neuron_options: dict, last: bool = False):
        super().__init__()
        self.branch1 = ConvBN(in_ch, out_ch, 3, stride)
        self.act1 = make_activation(spiking, neuron_options)
        self.branch2 = ConvBN(out_ch, out_ch, 3, 1)
        self.shortcut = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.AvgPool2d(stride), ConvBN(in_ch, out_ch, 1, 1, padding=0))
        self.act2 = nn.ReLU() if last else make_activation(spiking, neuron_options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = conv_bn_act(self.branch1, self.act1, x)
        identity = x if self.shortcut is None else per_step(self.shortcut, x)
        return conv_bn_act(self.branch2, self.act2, out, residual=identity)


class CKDSNNResNet(TimeModel):
    def __init__(self, spiking: bool, num_classes: int = 10, in_channels: int = 3, timesteps: int | None = None,
                 neuron: dict | None = None, init: str = "default"):
        super().__init__(spiking, num_classes, in_channels, timesteps)
        neuron_options = neuron or {}
        widths, blocks = (128, 256, 512), (3, 3, 2)
        self.stem = ConvBN(in_channels, widths[0], 3, 1)
        self.stem_act = make_activation(spiking, neuron_options)
        stages, in_ch = [], widths[0]
        for i, (width, count) in enumerate(zip(widths, blocks)):
            layers = []
            for j in range(count):
                last = i == len(widths) - 1 and j == count - 1
                layers.append(CKDSNNBlock(in_ch, width, 2 if (i > 0 and j == 0) else 1, spiking, neuron_options, last))
                in_ch = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.stage_names = ("stem",) + tuple(f"layer{i + 1}" for i in range(len(stages)))
        self.stage_channels = dict(zip(self.stage_names, widths[:1] + widths))
        if spiking:  # the code's fc2 (512→256) then fc1 (256→K)
            self.fc1 = nn.Linear(in_ch, 256)
            self.fc = nn.Linear(256, num_classes)
        else:        # the code's single `linear`
            self.fc1 = None
            self.fc = nn.Linear(in_ch, num_classes)
        init_weights(self, init)

    def forward_stages(self, x, timesteps):
        out = self.stem_act(stem_forward(self.stem, x, timesteps))
        yield "stem", out
        for name, stage in zip(self.stage_names[1:], self.stages):
            out = stage(out)
            yield name, out
        out = out.mean(dim=(-2, -1))  # global average pool, per step: [T, B, C]
        if self.fc1 is not None:
            out = self.fc1(out)
        yield "logits", self.fc(out)


@register_model(input_shape=(3, 32, 32))
def ckdsnn_resnet19(spiking=True, num_classes=10, in_channels=3, timesteps=None, neuron=None,
                    init="default") -> CKDSNNResNet:
    return CKDSNNResNet(spiking, num_classes, in_channels, timesteps, neuron, init)
