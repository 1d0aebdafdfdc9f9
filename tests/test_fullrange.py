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


def _small():
    torch.manual_seed(0)
    return trained_looking(sd.create_model("small_cnn", num_classes=10, widths=(8, 16, 32)))


class TimeReduced(torch.nn.Module):
    """Returns [B, K] — the time-mean most SNN code hands back — instead of per-step logits."""

    def __init__(self):
        super().__init__()
        self.net = _small()

    def forward(self, x, timesteps=None):
        return self.net(x, timesteps=timesteps).mean(0)


@pytest.mark.parametrize("evaluate", ["accuracy", "report"])
def test_time_reduced_logits_are_refused_even_when_the_batch_equals_t(evaluate):
    from spikedistill.evaluate import fullrange_report

    loader = [(torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,)))]  # B = 4 = T: [B, K] looks like [T, ?, K]
    run = sd.fullrange_accuracy if evaluate == "accuracy" else fullrange_report
    with pytest.raises(sd.SpikeDistillError,
                       match=r"expects per-step logits \[T, B, K\] from the model, got shape \(4, 10\)") as err:
        run(TimeReduced(), loader, 4)
    assert "\n" not in str(err.value)


def test_frames_longer_than_max_timesteps_are_cut_to_their_prefix_in_every_evaluation():
    from spikedistill.evaluate import fullrange_report

    torch.manual_seed(0)
    net = trained_looking(sd.create_model("small_cnn", num_classes=10, in_channels=2, widths=(8, 16, 32)))
    frames = (torch.rand(6, 5, 2, 8, 8) < 0.3).float()  # loader layout [B, T, C, H, W], 5 frames
    labels = torch.randint(0, 10, (6,))
    long = sd.fullrange_accuracy(net, [(frames, labels)], max_timesteps=3)
    cut = sd.fullrange_accuracy(net, [(frames[:, :3], labels)], max_timesteps=3)
    with torch.no_grad():
        logits = net(frames[:, :3].transpose(0, 1))
    expected = [100.0 * (logits[:k].mean(0).argmax(-1) == labels).float().mean().item() for k in (1, 2, 3)]
    assert list(long.values()) == list(cut.values()) == pytest.approx(expected)
    assert fullrange_report(net, [(frames, labels)], 3)["top1"] == pytest.approx(expected)
    for run in (sd.fullrange_accuracy, fullrange_report):  # fewer frames than max_timesteps: refused alike
        with pytest.raises(sd.SpikeDistillError, match="frames carry 5 steps but max_timesteps is 6"):
            run(net, [(frames, labels)], 6)


def test_an_ann_is_scored_once():
    net = sd.create_model("small_cnn", spiking=False, num_classes=10).eval()
    x, y = torch.randn(5, 1, 8, 8), torch.randint(0, 10, (5,))
    with torch.no_grad():
        expected = 100.0 * (net(x)[0].argmax(-1) == y).float().mean().item()
    assert sd.fullrange_accuracy(net, [(x, y)], max_timesteps=4) == {1: pytest.approx(expected)}


def test_eval_report_top1_is_the_number_the_training_loops_per_epoch_test_reports(tmp_path):
    from spikedistill.data import batches, load_dataset, stratified_indices
    from spikedistill.evaluate import fullrange_report
    from spikedistill.train.config import config_from_dict
    from spikedistill.train.loop import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = {"model": {"name": "small_cnn", "options": {"widths": [8, 16, 32]}, "spiking": True},
               "data": {"name": "digits", "subset": 96, "test_subset": 64}, "optim": {"epochs": 1, "batch_size": 32},
               "device": "cpu", "log": {"progress": False, "tensorboard": False}, "timesteps": 3}
        trained = train(config_from_dict(cfg), tmp_path / "run", verbose=False)
        net = sd.load_checkpoint(tmp_path / "run" / "latest.pt").model()
        test = load_dataset("digits", split="test")
        test = test.subset(stratified_indices(test.labels, 64))  # data.test_subset's draw, as training takes it
        report = fullrange_report(net, batches(test, 24, shuffle=False), 3)
    finally:
        torch.set_num_threads(threads)
    assert report["samples"] == 64
    assert report["top1"] == [trained["top1"][k] for k in (1, 2, 3)]


@pytest.mark.parametrize("inputs, hint", [
    (torch.randint(0, 3, (4, 3, 2, 8, 8), dtype=torch.int16), "event frames are fed as float counts"),
    (torch.zeros(4, 3, 2, 8, 8, dtype=torch.bool), "no /255"),
    (torch.randint(0, 255, (4, 1, 8, 8), dtype=torch.uint8), r"x.float\(\) / 255 then normalise"),
])
def test_integer_inputs_get_the_hint_for_their_kind(inputs, hint):
    net = sd.create_model("small_cnn", num_classes=10, in_channels=inputs.shape[-3])
    with pytest.raises(sd.SpikeDistillError, match=hint) as err:
        sd.fullrange_accuracy(net, [(inputs, torch.zeros(4, dtype=torch.long))], 3)
    if inputs.dim() == 5:
        assert "/ 255" not in str(err.value)
