import pytest
import torch
import torch.nn.functional as F
from torch import nn

import spikedistill as sd
from spikedistill.evaluate.energy import E_AC_PJ, E_MAC_PJ, conv_synaptic_ops, linear_synaptic_ops
from spikedistill.evaluate.report import fullrange_report

from helpers import trained_looking


def _unfold_count(conv: nn.Conv2d, spikes: torch.Tensor) -> torch.Tensor:
    """Brute force: for every output position, the nonzero inputs in its receptive field, per group."""
    per_group_in = conv.in_channels // conv.groups
    total = torch.zeros(spikes.shape[0])
    for g in range(conv.groups):
        part = spikes[:, g * per_group_in:(g + 1) * per_group_in]
        cols = F.unfold(part, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
        total += (cols != 0).sum((1, 2)).float() * (conv.out_channels // conv.groups)
    return total


def test_conv_synaptic_ops_hand_counted_on_a_3x3_layer():
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    center = torch.zeros(1, 1, 3, 3)
    center[0, 0, 1, 1] = 1  # feeds all 9 output positions of both output channels
    corner = torch.zeros(1, 1, 3, 3)
    corner[0, 0, 0, 0] = 1  # padding: only the 4 outputs around the corner see it
    assert conv_synaptic_ops(conv, center).item() == 18
    assert conv_synaptic_ops(conv, corner).item() == 8
    assert conv_synaptic_ops(conv, center + corner).item() == 26
    strided = nn.Conv2d(1, 3, 3, stride=2, padding=1)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = 1  # only output (0,0) covers it: 1 position × 3 channels
    x[0, 0, 1, 1] = 1  # rows/cols 1 lie in both receptive fields (−1..1 and 1..3): 4 outputs × 3
    x[0, 0, 2, 2] = 1  # only output (1,1) covers it: 3
    assert conv_synaptic_ops(strided, x).item() == 3 + 12 + 3


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, padding=1), dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=1, stride=2), dict(kernel_size=3, padding=2, dilation=2),
                                    dict(kernel_size=3, padding=1, groups=2), dict(kernel_size=(3, 1), padding=(0, 1))])
def test_conv_synaptic_ops_equal_brute_force_receptive_field_count(kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, **kwargs)
    spikes = (torch.rand(5, 4, 7, 6) < 0.3).float()
    torch.testing.assert_close(conv_synaptic_ops(conv, spikes).float(), _unfold_count(conv, spikes))


def test_linear_synaptic_ops_are_nonzero_inputs_times_fan_out():
    linear = nn.Linear(8, 3)
    x = torch.tensor([[1.0, 0, 1, 1, 0, 0, 1, 1], [0.0] * 8])
    assert linear_synaptic_ops(linear, x).tolist() == [15.0, 0.0]



@pytest.fixture
def small_setup():
    torch.manual_seed(0)
    net = trained_looking(sd.create_model("small_cnn", num_classes=10))
    x = torch.randn(12, 1, 8, 8) * 2
    y = torch.randint(0, 10, (12,))
    return net, x, y


def test_report_sops_equal_brute_force_count_of_the_models_spikes(small_setup):
    net, x, y = small_setup
    report = fullrange_report(net, [(x[:5], y[:5]), (x[5:], y[5:])], max_timesteps=3)
    spikes = {}
    hooks = [getattr(net, n).register_forward_hook(lambda m, i, o,
                                                   n=n: spikes.__setitem__(n, o)) for n in ("stem_act", "act1")]
    with torch.no_grad():
        net(x, timesteps=3)
    for h in hooks:
        h.remove()
    rows = {row["name"]: row for row in report["layers"]}
    for layer, source in (("conv1", "stem_act"), ("conv2", "act1")):
        per_step = torch.stack([_unfold_count(getattr(net, layer).conv, s).sum() for s in spikes[source]]) / 12
        assert per_step[0] > 0  # the count is not trivially zero
        torch.testing.assert_close(torch.tensor(rows[f"{layer}.conv"]["sops"], dtype=torch.float64),
                                   per_step.double().cumsum(0))
        assert rows[f"{layer}.conv"]["input"] == "spikes"
    # The analog stem runs once on a static image: 32 channels × 8×8 outputs × 1·3·3 MACs, charged at step 1.
    assert rows["stem.conv"]["input"] == "analog"
    assert rows["stem.conv"]["macs"] == [18432.0] * 3
    energy = [(E_MAC_PJ * m + E_AC_PJ * s) * 1e-9 for m, s in zip(report["macs"], report["sops"])]
    assert report["energy_mj"] == pytest.approx(energy)
    assert all(b > a for a, b in zip(report["energy_mj"], report["energy_mj"][1:]))
    assert 0 < report["firing_rate"][0] < 1


def test_stem_macs_per_step_policy_charges_the_stem_every_step(small_setup):
    net, x, y = small_setup
    once = fullrange_report(net, [(x, y)], 3)
    per_step = fullrange_report(net, [(x, y)], 3, stem_macs="per_step")
    stem = next(r for r in per_step["layers"] if r["name"] == "stem.conv")
    assert stem["macs"] == [18432.0, 36864.0, 55296.0]
    assert per_step["sops"] == once["sops"]
    assert per_step["energy_policy"]["static_image_stem_macs"] == "per_step"


def test_per_sample_cost_does_not_depend_on_batching(small_setup):
    net, x, y = small_setup
    whole = fullrange_report(net, [(x, y)], 3)
    split = fullrange_report(net, [(x[:1], y[:1]), (x[1:7], y[1:7]), (x[7:], y[7:])], 3)
    for key in ("top1", "sops", "macs", "energy_mj", "firing_rate"):
        assert split[key] == pytest.approx(whole[key])


def test_report_top1_equals_fullrange_accuracy(small_setup):
    net, x, y = small_setup
    loader = [(x[:7], y[:7]), (x[7:], y[7:])]
    report = fullrange_report(net, loader, 4)
    assert report["timesteps"] == [1, 2, 3, 4]
    assert report["top1"] == pytest.approx(list(sd.fullrange_accuracy(net, loader, 4).values()))


def test_ann_teacher_costs_dense_macs_at_4_6_pj():
    net = sd.create_model("small_cnn", spiking=False, num_classes=10).eval()
    report = fullrange_report(net, [(torch.randn(3, 1, 8, 8), torch.zeros(3, dtype=torch.long))], 4)
    # stem 32·8·8·9 + conv1 64·4·4·(32·9) + conv2 128·2·2·(64·9) + fc 128·10
    macs = 18432 + 294912 + 294912 + 1280
    assert report["timesteps"] == [1] and report["macs"] == [macs] and report["sops"] == [0.0]
    assert report["energy_mj"][0] == pytest.approx(4.6e-9 * macs)


def test_unknown_stem_policy_is_one_clear_error(small_setup):
    net, x, y = small_setup
    with pytest.raises(sd.SpikeDistillError, match="stem_macs"):
        fullrange_report(net, [(x, y)], 2, stem_macs="twice")


def test_binary_event_frames_make_the_first_layer_accumulate_at_every_step():
    torch.manual_seed(0)
    net = trained_looking(sd.create_model("small_cnn", num_classes=10, in_channels=2))
    frames = (torch.rand(6, 4, 2, 8, 8) < 0.2).float()  # loader layout [B, T, C, H, W], 0/1 events
    # prefix: 3 of 4 frames
    report = fullrange_report(net, [(frames, torch.zeros(6, dtype=torch.long))], max_timesteps=3)
    assert report["timesteps"] == [1, 2, 3]
    stem = next(r for r in report["layers"] if r["name"] == "stem.conv")
    expected = torch.stack([_unfold_count(net.stem.conv, frames[:, t]).sum() / 6 for t in range(3)]).cumsum(0)
    assert stem["input"] == "spikes" and stem["macs"] == [0.0, 0.0, 0.0]
    torch.testing.assert_close(torch.tensor(stem["sops"], dtype=torch.float64), expected.double())


def test_preact_resnet34_shortcut_reads_the_real_valued_block_input_so_it_costs_macs():
    """FR's preact ResNet-34 feeds the block input x, not the first neuron's spikes, to its downsampling
    conv1×1 (``identity = self.downsample(x)``): those convs are dense MACs every step, the 3×3 convs SOPs."""
    torch.manual_seed(0)
    net = sd.create_model("preact_resnet34", num_classes=10).eval()
    block = net.stages[1][0]
    seen = {}
    hooks = [block.register_forward_hook(lambda m, i, o: seen.__setitem__("block", i[0])),
             block.shortcut.conv.register_forward_hook(lambda m, i, o: seen.__setitem__("shortcut", i[0]))]
    x = torch.randn(3, 3, 32, 32)
    report = fullrange_report(net, [(x, torch.zeros(3, dtype=torch.long))], max_timesteps=2)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(seen["shortcut"], seen["block"].flatten(0, 1))
    rows = {row["name"]: row for row in report["layers"]}
    shortcut = rows["stages.1.0.shortcut.conv"]
    # 32×32 → stem s2 → 16 → max-pool → 8 → layer2 s2 → 4: 128 outputs × 4·4 positions × 64 inputs per step.
    assert shortcut["input"] == "analog" and shortcut["sops"] == [0.0, 0.0]
    assert shortcut["macs"] == [128 * 16 * 64, 2 * 128 * 16 * 64]
    assert (rows["stages.1.0.branch1.conv"]["input"] == "spikes"
            and rows["stages.1.0.branch1.conv"]["macs"] == [0.0, 0.0])
    assert rows["fc"]["input"] == "analog"


def test_energy_overhead_benchmark_prints_the_ratio(capsys):
    from helpers import load_script

    assert load_script("benchmarks/energy_overhead.py", "energy_overhead").main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert "plain forward" in out and "report pass" in out and "(goal: <= 1.2x)" in out
