"""Energy of models we did not write: exact per sample at any batch size, per step where they loop over
steps, cross-checked against torch's own FLOP counter, or refused in one line."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import spikedistill as sd
from spikedistill.evaluate.report import fullrange_report

from helpers import trained_looking

pytestmark = pytest.mark.usefixtures("one_thread")

TIMESTEPS = 3
PER_SAMPLE = ("sops", "macs", "energy_mj", "firing_rate")


class PerStepNet(nn.Module):
    """Plain PyTorch that calls each conv once per step (on the static image, then on each step's
    spikes) and our LIF on the stacked currents."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1, self.lif1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), sd.LIF()
        self.conv2, self.bn2, self.lif2 = nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), sd.LIF()
        self.fc = nn.Linear(16, 10)

    def forward(self, x, timesteps=None):
        steps = range(timesteps or 4)
        s1 = self.lif1(torch.stack([self.bn1(self.conv1(x)) for _ in steps]))
        s2 = self.lif2(torch.stack([self.bn2(self.conv2(s1[t])) for t in steps]))
        return torch.stack([self.fc(s2[t].mean((-2, -1))) for t in steps])


def spikingjelly_net():
    """A SpikingJelly 2.0 multi-step student: its layers take [T, B, ...] and keep neuron state."""
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, layer, neuron

    class SJNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                layer.Conv2d(1, 8, 3, padding=1, step_mode="m"), layer.BatchNorm2d(8, step_mode="m"),
                neuron.LIFNode(tau=2.0, step_mode="m"),
                layer.Conv2d(8, 16, 3, stride=2, padding=1, step_mode="m"), layer.BatchNorm2d(16, step_mode="m"),
                neuron.LIFNode(tau=2.0, step_mode="m"))
            self.fc = layer.Linear(16 * 4 * 4, 10, step_mode="m")

        def forward(self, x, timesteps=None):
            functional.reset_net(self)
            x = x.unsqueeze(0).repeat(timesteps or 4, 1, 1, 1, 1)
            return self.fc(self.features(x).flatten(2))

    return SJNet()


def snntorch_net():
    """A snnTorch student: a loop over steps, [B, ...] tensors, Leaky neurons with explicit membranes."""
    snn = pytest.importorskip("snntorch")

    class LoopNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1, self.lif1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), snn.Leaky(beta=0.5)
            self.conv2, self.lif2 = nn.Conv2d(8, 16, 3, stride=2, padding=1), snn.Leaky(beta=0.5)
            self.fc = nn.Linear(16, 10)

        def forward(self, x, timesteps=None):
            mem1, mem2, out = self.lif1.init_leaky(), self.lif2.init_leaky(), []
            for _ in range(timesteps or 4):
                spk1, mem1 = self.lif1(self.bn1(self.conv1(x)), mem1)
                spk2, mem2 = self.lif2(self.conv2(spk1), mem2)
                out.append(self.fc(spk2.mean((-2, -1))))
            return torch.stack(out)

    return LoopNet()


def ours():
    return sd.create_model("small_cnn", num_classes=10, widths=(8, 16, 32))


MODELS = {"ours": ours, "plain_per_step": PerStepNet, "spikingjelly": spikingjelly_net, "snntorch": snntorch_net}


@pytest.fixture(scope="module")
def digits():
    torch.manual_seed(0)
    return torch.randn(24, 1, 8, 8) * 2, torch.randint(0, 10, (24,))


def build(kind: str) -> nn.Module:
    torch.manual_seed(1)
    net = trained_looking(MODELS[kind](), bias_mean=0.8)
    for m in net.modules():  # fire more readily: a fresh conv's currents are small
        if isinstance(m, nn.Conv2d):
            m.weight.data.mul_(3)
    return net


def report_at_batch(net, x, y, batch, **options):
    return fullrange_report(net, [(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)], TIMESTEPS,
                            **options)


@pytest.mark.parametrize("kind", list(MODELS))
def test_per_sample_macs_and_sops_are_the_same_at_batch_1_8_and_24(kind, digits):
    x, y = digits
    net = build(kind)
    whole = report_at_batch(net, x, y, 24)
    assert whole["sops"][-1] > 0 and whole["macs"][0] > 0 and 0 < whole["firing_rate"][-1] < 1
    for batch in (1, 8):
        split = report_at_batch(net, x, y, batch)
        for key in PER_SAMPLE:
            assert split[key] == pytest.approx(whole[key], rel=1e-9), (kind, batch, key)


@pytest.mark.parametrize("kind", list(MODELS))
def test_dense_macs_equal_torch_flop_counter_per_layer(kind, digits):
    """FlopCounterMode counts 2 FLOPs per multiply-accumulate of every conv and matmul that runs."""
    x, y = digits
    net = build(kind)
    report = report_at_batch(net, x[:6], y[:6], 6)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x[:6], timesteps=TIMESTEPS)
    flops = counter.get_flop_counts()
    prefix = type(net).__name__
    for row in report["layers"]:
        assert row["dense_macs"][-1] * 6 == sum(flops[f"{prefix}.{row['name']}"].values()) / 2, row["name"]
    assert sum(row["dense_macs"][-1] for row in report["layers"]) * 6 == counter.get_total_flops() / 2


def test_ann_dense_macs_equal_torch_flop_counter_and_cost_only_macs(digits):
    x, y = digits
    net = sd.create_model("small_cnn", spiking=False, num_classes=10).eval()
    report = report_at_batch(net, x[:5], y[:5], 5)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x[:5])
    assert report["macs"] == [counter.get_total_flops() / 2 / 5] and report["sops"] == [0.0]


def test_a_conv_called_once_per_step_is_booked_at_its_step_so_cumulative_macs_grow_linearly(digits):
    x, y = digits
    net = build("plain_per_step")
    report = report_at_batch(net, x, y, 8)
    rows = {row["name"]: row for row in report["layers"]}
    conv1 = 8 * 8 * 8 * 9  # the analog image, every step: C_out·H·W · C_in·k·k
    assert rows["conv1"]["macs"] == [conv1 * k for k in range(1, TIMESTEPS + 1)]
    assert rows["conv1"]["input"] == "analog" and rows["conv2"]["input"] == "spikes"
    per_step = [report["macs"][0]] + [b - a for a, b in zip(report["macs"], report["macs"][1:])]
    assert per_step == pytest.approx([per_step[0]] * TIMESTEPS)  # conv1 + fc each step: linear in k
    # The SOPs of conv2 are the brute-force count of the spikes lif1 emitted at each step.
    spikes = []
    hook = net.lif1.register_forward_hook(lambda m, i, o: spikes.append(o))
    with torch.no_grad():
        net(x, timesteps=TIMESTEPS)
    hook.remove()
    unfold = torch.stack([F.unfold(spikes[0][t], 3, padding=1, stride=2).ne(0).sum() * 16 for t in range(TIMESTEPS)])
    assert rows["conv2"]["sops"] == pytest.approx((unfold.double() / 24).cumsum(0).tolist())


def test_spikingjelly_student_sops_equal_a_brute_force_count_of_its_spikes(digits):
    x, y = digits
    net = build("spikingjelly")
    report = report_at_batch(net, x, y, 8)
    spikes = []
    hook = net.features[2].register_forward_hook(lambda m, i, o: spikes.append(o))
    with torch.no_grad():
        net(x, timesteps=TIMESTEPS)
    hook.remove()
    counts = torch.stack([F.unfold(spikes[0][t], 3, padding=1, stride=2).ne(0).sum() * 16 for t in range(TIMESTEPS)])
    rows = {row["name"]: row for row in report["layers"]}
    assert rows["features.3"]["sops"] == pytest.approx((counts.double() / 24).cumsum(0).tolist())
    assert rows["features.3"]["macs"] == [0.0] * TIMESTEPS
    # Per sample and step the first conv costs C_out·H·W · C_in·k·k dense MACs — not B times that.
    assert rows["features.0"]["macs"] == [8 * 64 * 9 * k for k in range(1, TIMESTEPS + 1)]
    assert {row["name"] for row in report["neurons"]} == {"features.2", "features.5"}


class NoNeuron(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x, timesteps=None):
        out = self.fc(torch.relu(self.conv(x)).mean((-2, -1)))
        return out.unsqueeze(0).expand(timesteps or 1, -1, -1)


def test_a_model_without_a_known_spiking_neuron_is_refused_in_one_line_or_reported_as_an_ann(digits):
    x, y = digits
    with pytest.raises(sd.SpikeDistillError, match="no spiking neuron in NoNeuron.*model.spiking = False") as err:
        fullrange_report(NoNeuron(), [(x[:4], y[:4])], TIMESTEPS)
    assert "\n" not in str(err.value)
    ann = NoNeuron()
    ann.spiking = False
    report = fullrange_report(ann, [(x[:4], y[:4])], TIMESTEPS)
    assert report["timesteps"] == [1] and report["sops"] == [0.0]
    assert report["macs"] == [4 * 64 * 9 + 4 * 10]


def test_a_layer_the_count_would_leave_out_is_refused_by_name(digits):
    x, y = digits
    net = sd.create_model("small_cnn", num_classes=10).eval()
    net.extra = nn.Conv1d(2, 2, 1)
    with pytest.raises(sd.SpikeDistillError, match="'extra' is a Conv1d"):
        fullrange_report(net, [(x[:4], y[:4])], TIMESTEPS)


def test_a_layer_run_more_often_than_the_steps_is_refused(digits):
    x, y = digits

    class Twice(PerStepNet):
        def forward(self, x, timesteps=None):
            self.conv1(x)
            return super().forward(x, timesteps)

    with pytest.raises(sd.SpikeDistillError, match="layer 'conv1' ran 4 times on a batch of 4 in a 3-step forward"):
        fullrange_report(trained_looking(Twice()), [(x[:4], y[:4])], TIMESTEPS)
