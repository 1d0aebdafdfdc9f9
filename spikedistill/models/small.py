"""A small convolutional net for tiny images (e.g. the 8×8 digits of the offline demo).

conv3×3(→32) → BN → act → conv3×3(→64, s2) → BN → act → conv3×3(→128, s2) → BN → act → GAP → FC(→K).
Small enough to train as SNN and ANN in seconds on a CPU.
"""

from __future__ import annotations

from torch import nn

from .layers import ConvBN, TimeModel, conv_bn_act, init_weights, make_activation, stem_forward
from .registry import register_model


class SmallConvNet(TimeModel):
    stage_names = ("stem", "layer1", "layer2")

    def __init__(self, spiking: bool, num_classes: int = 10, in_channels: int = 1, timesteps=None,
                 widths=(32, 64, 128), neuron: dict | None = None):
        super().__init__(spiking, num_classes, in_channels, timesteps)
        neuron_options = neuron or {}
        self.stem = ConvBN(in_channels, widths[0], 3, 1)
        self.stem_act = make_activation(spiking, neuron_options)
        self.conv1 = ConvBN(widths[0], widths[1], 3, 2)
        self.act1 = make_activation(spiking, neuron_options)
        self.conv2 = ConvBN(widths[1], widths[2], 3, 2)
        self.act2 = make_activation(spiking, neuron_options)
        self.fc = nn.Linear(widths[2], num_classes)
        self.stage_channels = dict(zip(self.stage_names, widths))
        init_weights(self)

    def forward_stages(self, x, timesteps):
        out = self.stem_act(stem_forward(self.stem, x, timesteps))
        yield "stem", out
        out = conv_bn_act(self.conv1, self.act1, out)
        yield "layer1", out
        out = conv_bn_act(self.conv2, self.act2, out)
        yield "layer2", out
        yield "logits", self.fc(out.mean(dim=(-2, -1)))


@register_model(input_shape=(1, 8, 8))
def small_cnn(spiking=True, num_classes=10, in_channels=1, timesteps=None, widths=(32, 64, 128),
              neuron=None) -> SmallConvNet:
    return SmallConvNet(spiking, num_classes, in_channels, timesteps, widths, neuron)
