import pytest
import torch

import spikedistill as sd
from spikedistill.errors import SpikeDistillError

INPUTS = {
    "resnet18": (3, 16), "resnet19": (3, 16), "resnet34": (3, 16),
    "preact_resnet34": (3, 64), "vggsnn": (2, 48), "small_cnn": (1, 8), "ckdsnn_resnet19": (3, 16),
}


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("spiking", [True, False])
def test_every_model_builds_and_returns_time_first_logits(name, spiking):
    torch.manual_seed(0)
    channels, size = INPUTS[name]
    net = sd.create_model(name, spiking=spiking, num_classes=7, in_channels=channels)
    x = torch.randn(2, channels, size, size)
    timesteps = 3 if spiking else 1
    logits, feats = net(x, timesteps=timesteps, return_features=True)
    assert logits.shape == (timesteps, 2, 7)
    assert list(feats) == list(net.stage_names)
    for f in feats.values():
        assert f.dim() == 5 and f.shape[:2] == (timesteps, 2)
    if spiking and name in ("resnet18", "resnet19", "resnet34", "small_cnn"):
        # These stages end on an LIF (preact ends on a residual sum, VGG on an average pool).
        last = feats[net.stage_names[-1]]
        assert set(last.unique().tolist()) <= {0.0, 1.0}


def test_resnet19_parameter_count():
    # The FR code's ResNet-19 topology: 12,697,994 parameters for 10 classes (often quoted as ≈12.6 M).
    assert sd.count_parameters(sd.create_model("resnet19", num_classes=10)) == 12_697_994


def test_frame_input_is_consumed_step_by_step():
    torch.manual_seed(0)
    net = sd.create_model("vggsnn", num_classes=10).eval()
    frames = torch.rand(4, 2, 2, 48, 48)
    out = net(frames)
    assert out.shape == (4, 2, 10)
    # Causality: the first 2 steps do not depend on the later frames.
    torch.testing.assert_close(net(frames[:2]), out[:2])


def test_static_input_equals_repeated_frames():
    torch.manual_seed(0)
    net = sd.create_model("resnet19", num_classes=10).eval()
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(net(x, timesteps=3), net(x.unsqueeze(0).repeat(3, 1, 1, 1, 1)))


def test_bn_normalises_over_time_and_batch():
    net = sd.create_model("small_cnn", num_classes=10)
    x = torch.randn(4, 1, 8, 8)
    _, feats = net(x.unsqueeze(0).expand(3, -1, -1, -1, -1) + torch.randn(3, 4, 1, 8, 8), return_features=True)
    bn = net.conv1.bn
    assert bn.num_batches_tracked.item() == 1  # one BN call over T·B, not one per step


def test_neuron_options_reach_every_lif():
    net = sd.create_model("resnet19", num_classes=10, decay=0.2, v_reset=None, surrogate="triangle")
    lifs = [m for m in net.modules() if isinstance(m, sd.LIF)]
    assert len(lifs) == 1 + 2 * 8 + 1
    assert all(m.cfg.decay == 0.2 and m.cfg.soft_reset and m.cfg.surrogate == "triangle" for m in lifs)


def test_unknown_model_name_lists_known_names():
    with pytest.raises(SpikeDistillError,
                       match=r"unknown model 'resnet91'; did you mean 'resnet19'\? known: resnet18, resnet19"):
        sd.create_model("resnet91")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_classes=0), "num_classes must be a positive integer"),
        (dict(depth=3), "unknown option 'depth' for model 'resnet19'"),
        (dict(spiking=False, decay=0.5), "apply to SNNs only"),
        (dict(surrogate="nope"), "unknown surrogate 'nope'"),
    ],
)
def test_bad_model_options_give_one_clear_message(kwargs, message):
    with pytest.raises(SpikeDistillError, match=message):
        sd.create_model("resnet19", **kwargs)


def test_bad_input_shapes_are_named():
    net = sd.create_model("small_cnn", num_classes=10)
    with pytest.raises(SpikeDistillError, match="expects 1 input channels"):
        net(torch.randn(2, 3, 8, 8), timesteps=2)
    with pytest.raises(SpikeDistillError, match="timesteps must be a positive integer"):
        net(torch.randn(2, 1, 8, 8), timesteps=0)
    with pytest.raises(SpikeDistillError, match="images \\[B,C,H,W\\] or frames"):
        net(torch.randn(8, 8), timesteps=2)


def test_preact_resnet34_convs_carry_biases_as_in_the_fr_code():
    net = sd.create_model("preact_resnet34", num_classes=10)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 2 * 16 + 3 and all(c.bias is not None for c in convs)  # stem, 16 blocks, 3 shortcuts
    # The code zeroes no conv bias (its init loop touches weights and BN only): PyTorch's default draw stays.
    assert all(c.bias.abs().sum() > 0 for c in convs)


def test_init_default_keeps_pytorchs_initialisation_and_kaiming_is_fan_out():
    torch.manual_seed(0)
    default = sd.create_model("resnet19", num_classes=10, init="default")
    torch.manual_seed(0)
    reference = torch.nn.Conv2d(3, 128, 3, padding=1, bias=False)  # the stem's conv, drawn first, same seed
    torch.testing.assert_close(default.stem.conv.weight, reference.weight)
    kaiming = sd.create_model("resnet19", num_classes=10)
    fan_out_std = (2.0 / (128 * 9)) ** 0.5
    assert kaiming.stages[0][0].branch1.conv.weight.std().item() == pytest.approx(fan_out_std, rel=0.02)
    with pytest.raises(SpikeDistillError, match="unknown init 'xavier'"):
        sd.create_model("resnet19", num_classes=10, init="xavier")


def test_ckdsnn_resnet19_is_the_ckdsnn_code_network():
    """CKDSNN's snn_models/resnet_models.py and ann_models/resnet.py at width_mult=8: parameter
    counts summed by hand from their layers, AvgPool → conv1×1 → BN shortcuts, a ReLU ending layer3, and a
    linear–linear head whose per-step logits average to the code's time-averaged-before-the-head output."""
    torch.manual_seed(0)
    snn = sd.create_model("ckdsnn_resnet19", num_classes=10, decay=0.5, surrogate="triangle", surrogate_param=1.0)
    ann = sd.create_model("ckdsnn_resnet19", spiking=False, num_classes=10)
    assert sd.count_parameters(snn) == 12_697_994 and sd.count_parameters(ann) == 12_569_226  # ann: one FC 512→10
    shortcut = snn.stages[1][0].shortcut
    assert isinstance(shortcut[0], torch.nn.AvgPool2d) and shortcut[1].conv.kernel_size == (1, 1)
    assert shortcut[1].conv.stride == (1,  1) and snn.stages[0][0].shortcut is None
    assert isinstance(snn.stages[2][1].act2, torch.nn.ReLU) and not isinstance(snn.stages[2][0].act2, torch.nn.ReLU)
    from helpers import trained_looking

    trained_looking(snn)  # BN statistics that make the eval-mode network fire
    x = torch.randn(2, 3, 16, 16)
    logits, feats = snn(x, timesteps=3, return_features=True)
    assert set(feats["layer2"].unique().tolist()) <= {0.0, 1.0}
    assert not set(feats["layer3"].unique().tolist()) <= {0.0, 1.0} and feats["layer3"].min() >= 0  # ReLU output
    code_output = snn.fc(snn.fc1(feats["layer3"].mean(dim=(-2, -1)).mean(0)))  # mean over T, then the head
    torch.testing.assert_close(logits.mean(0), code_output)
    assert ann(x).shape == (1, 2, 10)


def test_ckdsnn_resnet19_equals_the_code_forward_written_out_batch_first():
    """The CKDSNN code's forward, written from its description in [B, T, ...] layout: conv
    stem once, repeated T times, BN over B·T, LIFSpike (mem = 0.5·mem + x, spike when mem − 1 > 0, mem ← (1 − s)·mem),
    blocks with AvgPool → conv1×1 → BN shortcuts and a ReLU closing layer3, GAP, the MEAN OVER T, then fc2 → fc1."""
    from helpers import trained_looking

    torch.manual_seed(0)
    net = trained_looking(sd.create_model("ckdsnn_resnet19", num_classes=10, decay=0.5, surrogate="triangle",
                                          surrogate_param=1.0)).double()
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    steps = 4

    def seq(module, z):  # SeqToANNContainer: the module on [B·T, ...]
        y = module(z.flatten(0, 1))
        return y.view(z.shape[:2] + y.shape[1:])

    def lif_spike(z):
        mem, spikes = 0.0, []
        for t in range(z.shape[1]):
            mem = mem * 0.5 + z[:, t]
            spike = (mem - 1.0 > 0).to(z.dtype)
            mem = (1 - spike) * mem
            spikes.append(spike)
        return torch.stack(spikes, 1)

    with torch.no_grad():
        out = net.stem.conv(x).unsqueeze(1).repeat(1, steps, 1, 1, 1)  # add_dimention after the 4-D conv
        out = lif_spike(seq(net.stem.bn, out))
        for i, stage in enumerate(net.stages):
            for j, block in enumerate(stage):
                residual = out if block.shortcut is None else seq(block.shortcut, out)
                y = lif_spike(seq(block.branch1, out))
                y = seq(block.branch2, y) + residual
                last = i == len(net.stages) - 1 and j == len(stage) - 1
                out = torch.relu(y) if last else lif_spike(y)
        code_logits = net.fc(net.fc1(out.mean(dim=(-2, -1)).mean(1)))
        ours = net(x, timesteps=steps)
    assert out.abs().sum() > 0
    torch.testing.assert_close(ours.mean(0), code_logits)
