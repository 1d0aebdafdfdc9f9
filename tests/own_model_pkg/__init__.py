"""A user's own package, as a researcher writes one: a plain-PyTorch SNN student (``sd.LIF`` layers, the
``x.unflatten(0, (t, b))`` style), a plain ANN teacher and a tiny dataset, registered under their own names.

``spikedistill --import own_model_pkg train|eval|export ...`` makes the names known to the CLI.
"""

from __future__ import annotations

import torch
from torch import nn

import spikedistill as sd
from spikedistill.data import ArrayDataset


class PlainSNN(nn.Module):
    """conv → BN → LIF, twice; the time-mean of the spikes pooled; a linear read-out at every step."""

    def __init__(self, num_classes=4, channels=8, timesteps=4):
        super().__init__()
        self.num_classes, self.channels, self.timesteps = num_classes, channels, timesteps
        self.spiking = True
        self.conv1, self.bn1, self.lif1 = (nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                                           sd.LIF())
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, bias=False)
        self.bn2, self.lif2 = nn.BatchNorm2d(2 * channels), sd.LIF()
        self.fc = nn.Linear(2 * channels, num_classes)
        self.stage_channels = {"layer1": channels, "layer2": 2 * channels}

    def forward(self, x, timesteps=None, return_features=False):
        if x.dim() == 5:                      # event frames [T, B, C, H, W]
            t, b = x.shape[:2]
            x = x.flatten(0, 1)
        else:                                 # an image, fed at every step
            t, b = timesteps or self.timesteps, x.shape[0]
            x = x.repeat(t, 1, 1, 1)
        s1 = self.lif1(self.bn1(self.conv1(x)).unflatten(0, (t, b)))
        s2 = self.lif2(self.bn2(self.conv2(s1.flatten(0, 1))).unflatten(0, (t, b)))
        logits = self.fc(s2.mean((-2, -1)))   # [T, B, K]
        return (logits, {"layer1": s1, "layer2": s2}) if return_features else logits


class PlainANN(nn.Module):
    """A plain ANN teacher: images [B, 1, 8, 8] → logits [B, K]."""

    def __init__(self, num_classes=4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                  nn.Linear(64, num_classes))

    def forward(self, x):
        return self.body(x)


class NoArguments(PlainSNN):
    """A student whose constructor arguments are not attributes: its checkpoint cannot rebuild it."""

    def __init__(self, width):
        super().__init__(channels=width)
        del self.channels


@sd.register_model("own_cnn", input_shape=(1, 8, 8))
def own_cnn(num_classes=4, channels=8, timesteps=4):
    return PlainSNN(num_classes, channels, timesteps)


@sd.register_model("own_ann", input_shape=(1, 8, 8))
def own_ann(num_classes=4):
    return PlainANN(num_classes)


def blobs(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [N, 1, 8, 8] images whose class (0..3) is the bright quadrant, with noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 4
    images = torch.randint(0, 90, (count, 1, 8, 8), generator=generator)
    for quadrant in range(4):
        rows, cols = divmod(quadrant, 2)
        chosen = labels == quadrant
        images[chosen, :, rows * 4:rows * 4 + 4, cols * 4:cols * 4 + 4] += 160
    return images.clamp(0, 255).to(torch.uint8), labels


@sd.register_dataset("own_blobs")
def own_blobs(root=None, split="train", download=False):
    images, labels = blobs(128 if split == "train" else 64, seed=0 if split == "train" else 1)
    return ArrayDataset(images, labels, num_classes=4, mean=(0.3,), std=(0.3,), name="own_blobs")
