"""Students written the way users write them, not with our zoo's layers: plain PyTorch with ``sd.LIF``,
and a SpikingJelly 2.0 multi-step network converted with ``sd.from_spikingjelly``."""

import torch
from torch import nn

import spikedistill as sd


class UnflattenStudent(nn.Module):
    """Steps folded into the batch, then ``unflatten(0, (timesteps, batch))`` with the batch size read from
    the input, as much SNN code does. ``bake_batch`` adds a tensor built with the traced batch size."""

    spiking = True

    def __init__(self, bake_batch: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.lif = sd.LIF()
        self.fc = nn.Linear(8, 10)
        self.bake_batch = bake_batch

    def forward(self, x, timesteps=4, return_features=False):
        batch = x.shape[0]
        h = self.bn(self.conv(x.unsqueeze(0).repeat(timesteps, 1, 1, 1, 1).flatten(0, 1)))
        h = h.unflatten(0, (timesteps, batch))
        if self.bake_batch:  # a tensor of the traced batch size: the file cannot run at another
            h = h + torch.zeros(int(batch), 8, 8, 8)
        return self.fc(self.lif(h).mean((-2, -1)))


class ResidualStudent(nn.Module):
    """Plain PyTorch: conv-BN-LIF, conv-BN plus a residual sum into a second LIF, an average pool, an
    ``nn.Flatten`` and a classifier, each stateless layer on the ``[T·B]`` view."""

    spiking = True
    in_channels = 3

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.conv1, self.bn1, self.lif1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), sd.LIF()
        self.conv2, self.bn2, self.lif2 = (nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                           sd.LIF(decay=0.7))
        self.pool, self.flatten, self.fc = nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, num_classes)

    def forward(self, x, timesteps=4, return_features=False):
        x = x.unsqueeze(0).repeat(timesteps, 1, 1, 1, 1)
        steps, batch = x.shape[:2]
        h = self.lif1(self.bn1(self.conv1(x.flatten(0, 1))).unflatten(0, (steps, batch)))
        h = self.lif2(self.bn2(self.conv2(h.flatten(0, 1))).unflatten(0, (steps, batch)) + h)
        return self.fc(self.flatten(self.pool(h.flatten(0, 1)))).unflatten(0, (steps, batch))


def spikingjelly_student(timesteps: int = 4):
    """A SpikingJelly CNN as its tutorials write it (``layer.*`` in step_mode 'm', hard-reset LIF neurons
    with decay_input=False), converted: the student NIR readers can run."""
    from spikingjelly.activation_based import functional, layer, neuron

    net = nn.Sequential(
        layer.Conv2d(1, 8, 3, padding=1, bias=False), layer.BatchNorm2d(8), neuron.LIFNode(tau=2.0, decay_input=False),
        layer.AvgPool2d(2),
        layer.Conv2d(8, 16, 3, padding=1, bias=False), layer.BatchNorm2d(16),
        neuron.LIFNode(tau=2.0, decay_input=False),
        layer.Flatten(), layer.Linear(16 * 4 * 4, 10),
    )
    functional.set_step_mode(net, "m")
    return sd.from_spikingjelly(net, timesteps=timesteps)
