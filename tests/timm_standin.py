"""A stand-in for timm in tests: ``create_model(name, pretrained, num_classes)`` building a tiny network with
timm's ResNet layout and parameter names. CI has no torchvision built for its CPU torch, so the real timm
cannot be imported there; tests put this module in its place (``sys.modules["timm"]``, or a ``timm``
package on PYTHONPATH for subprocesses)."""

from torch import nn


class Block(nn.Module):  # timm.models.resnet.BasicBlock's parameter names
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1, self.act1 = (nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                           nn.ReLU())
        self.conv2, self.bn2, self.act2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))) + shortcut)


class TinyTimmResNet(nn.Module):
    """timm's ResNet layout (conv1, bn1, act1, maxpool, layer1..4, global_pool, fc), one narrow block a stage."""

    def __init__(self, num_classes=5, widths=(4, 8, 8, 16)):
        super().__init__()
        self.num_classes = num_classes
        self.conv1, self.bn1, self.act1 = (nn.Conv2d(3, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]),
                                           nn.ReLU())
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = widths[0]
        for i, width in enumerate(widths):
            setattr(self, f"layer{i + 1}", nn.Sequential(Block(cin, width, 1 if i == 0 else 2)))
            cin = width
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(self.global_pool(x))


def create_model(name, pretrained=False, num_classes=1000, **kwargs):
    if pretrained:
        raise AssertionError("tests never download weights")
    return TinyTimmResNet(num_classes=num_classes)
