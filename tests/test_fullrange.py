import pytest
import torch

import spikedistill as sd

from helpers import trained_looking


def test_fullrange_one_pass_equals_separate_runs():
    torch.manual_seed(0)
    net = trained_looking(sd.create_model("resnet19", num_classes=10), bias_mean=0.3)
    x = torch.randn(12, 3, 16, 16)
    y = torch.randint(0, 10, (12,))
    loader = [(x[:7], y[:7]), (x[7:], y[7:])]
    acc = sd.fullrange_accuracy(net, loader, max_timesteps=4)
    assert list(acc) == [1, 2, 3, 4]
    with torch.no_grad():
        full = net(x, timesteps=4)
        for k in range(1, 5):
            separate = net(x, timesteps=k)
            torch.testing.assert_close(separate, full[:k], rtol=1e-5, atol=1e-5)
            expected = 100.0 * (separate.mean(0).argmax(-1) == y).float().mean().item()
            assert acc[k] == pytest.approx(expected)
    # The network is not degenerate: outputs differ between steps.
    assert not torch.allclose(full[0], full[-1])


def test_cumulative_mean():
    z = torch.tensor([[[1.0, 0.0]], [[3.0, 2.0]], [[2.0, 4.0]]])
    torch.testing.assert_close(sd.cumulative_mean(z)[:, 0], torch.tensor([[1.0, 0.0], [2.0, 1.0], [2.0, 2.0]]))


def test_fullrange_restores_training_mode_and_rejects_empty_loader():
    net = sd.create_model("small_cnn", num_classes=10)
    with pytest.raises(sd.SpikeDistillError, match="no samples"):
        sd.fullrange_accuracy(net, [], max_timesteps=2)
    assert net.training
