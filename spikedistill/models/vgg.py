"""VGG-SNN for DVS input (2×48×48), after the official TET code's VGGSNN.

Eight [conv3×3 → BN → act] layers with channels 64, 128, AP, 256, 256, AP, 512, 512, AP, 512, 512, AP
(AP = AvgPool2d(2), no activation after it); head: flatten(512·3·3) → Linear(→K) per step, no output
neuron. Inputs other than 48×48 are pooled adaptively to 3×3 before the head.
"""

from __future__ import annotations

from torch import nn

from .layers import ConvBN, TimeModel, conv_bn_act, init_weights, make_activation, per_step
from .registry import register_model

VGGSNN_LAYOUT = (64, 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A")


class VGGSNN(TimeModel):
    def __init__(self, spiking: bool, num_classes: int = 10, in_channels: int = 2, timesteps=None,
                 neuron: dict | None = None,
                 init: str = "kaiming"):
        super().__init__(spiking, num_classes, in_channels, timesteps)
        neuron_options = neuron or {}
        blocks, current, in_ch = [], [], in_channels
        for item in VGGSNN_LAYOUT:
            if item == "A":
                blocks.append(nn.ModuleList(current + [nn.AvgPool2d(2)]))
                current = []
            else:
                current += [ConvBN(in_ch, item, 3, 1), make_activation(spiking, neuron_options)]
                in_ch = item
        self.stages = nn.ModuleList(blocks)
        self.stage_names = tuple(f"layer{i + 1}" for i in range(len(blocks)))
        self.stage_channels = {name: block[-3].conv.out_channels for name, block in zip(self.stage_names, blocks)}
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.fc = nn.Linear(512 * 3 * 3, num_classes)
        init_weights(self, init)

    def forward_stages(self, x, timesteps):
        out = x if x.dim() == 5 else x.unsqueeze(0).expand((timesteps,) + x.shape)
        for name, stage in zip(self.stage_names, self.stages):
            for conv_bn, act in zip(stage[0:-1:2], stage[1:-1:2]):  # [ConvBN, act] pairs, then the pool
                out = conv_bn_act(conv_bn, act, out)
            out = per_step(stage[-1], out)
            yield name, out
        out = per_step(self.pool, out).flatten(2)
        yield "logits", self.fc(out)


@register_model(input_shape=(2, 48, 48))
def vggsnn(spiking=True, num_classes=10, in_channels=2, timesteps=None, neuron=None, init="kaiming") -> VGGSNN:
    return VGGSNN(spiking, num_classes, in_channels, timesteps, neuron, init)
