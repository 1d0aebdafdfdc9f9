"""The timm teacher adapter (FR's ImageNet teacher is timm's ResNet-34), tested without timm: a tiny module
with timm's ResNet key names and layout stands in (CI has no torchvision built for its CPU torch, so timm
is not importable there)."""

import pytest
import torch
from torch import nn

from spikedistill.errors import SpikeDistillError
from spikedistill.models.timm_teacher import TimmTeacher, create_timm_teacher, load_state_dict_file

from timm_standin import TinyTimmResNet


def test_timm_layout_state_dict_loads_strictly_and_the_adapter_matches_the_network(tmp_path):
    torch.manual_seed(0)
    source = TinyTimmResNet().eval()
    for m in source.modules():  # non-trivial running statistics, so a missed buffer would show
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    assert "layer2.0.downsample.0.weight" in source.state_dict()  # timm's names
    path = tmp_path / "resnet_teacher.pth"  # as a DDP run saves it: wrapped, with the module. prefix
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    torch.manual_seed(1)
    teacher = TimmTeacher(load_state_dict_file(TinyTimmResNet(), path)).eval()
    x = torch.randn(2, 3, 32, 32)
    logits = teacher(x)
    assert logits.shape == (1, 2, 5) and not teacher.spiking and teacher.num_classes == 5
    torch.testing.assert_close(logits[0], source(x))
    again, features = teacher(x, return_features=True)
    torch.testing.assert_close(again, logits)
    assert list(features) == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert features["layer4"].shape == (1, 2, 16, 1, 1) and teacher.fc is teacher.net.fc


def test_weights_that_do_not_fit_name_the_keys_and_the_fix(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(TinyTimmResNet(num_classes=7).state_dict(), path)
    with pytest.raises(SpikeDistillError, match=r"wrong shape: fc.weight, fc.bias.*number of classes"):
        load_state_dict_file(TinyTimmResNet(num_classes=5), path)
    with pytest.raises(SpikeDistillError, match="not found"):
        load_state_dict_file(TinyTimmResNet(), tmp_path / "missing.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(SpikeDistillError, match="cannot read teacher weights"):
        load_state_dict_file(TinyTimmResNet(), tmp_path / "garbage.pth")


def test_without_timm_the_teacher_source_fails_with_the_install_line():
    try:
        import timm  # noqa: F401
    except Exception:
        with pytest.raises(SpikeDistillError, match=r"pip install 'spikedistill\[timm\]'"):
            create_timm_teacher("resnet34", 1000)
    else:
        teacher = create_timm_teacher("resnet34", 10)  # no download: pretrained stays False
        assert teacher.resnet_layout and teacher(torch.randn(1, 3, 64, 64)).shape == (1, 1, 10)
