"""sd.from_spikingjelly: a SpikingJelly 2.0 multi-step student on our LIF, spike for spike.

The networks are written the way SpikingJelly's tutorials write them: ``layer.Conv2d`` /
``BatchNorm2d`` / ``Linear`` in ``step_mode='m'`` (``functional.set_step_mode``), or plain torch layers
in a ``layer.SeqToANNContainer``, fed ``[T, B, C, H, W]`` and returning ``[T, B, K]``.
"""

import pytest
import torch
from torch import nn

import spikedistill as sd

from helpers import trained_looking

pytest.importorskip("spikingjelly")
from spikingjelly.activation_based import functional, layer, neuron, surrogate

TIMESTEPS = 4


class SJConvNet(nn.Module):
    """conv-BN-LIF, pool, conv-BN-IF (soft reset), flatten, linear: SpikingJelly's stateless wrappers."""

    def __init__(self, lif=None, if_node=None):
        super().__init__()
        self.features = nn.Sequential(
            layer.Conv2d(1, 8, 3, padding=1, bias=False), layer.BatchNorm2d(8),
            lif or neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True),
            layer.AvgPool2d(2),
            layer.Conv2d(8, 16, 3, padding=1, bias=False), layer.BatchNorm2d(16),
            if_node or neuron.IFNode(v_reset=None, surrogate_function=surrogate.Sigmoid(alpha=3.0)),
        )
        self.classifier = nn.Sequential(layer.Flatten(), layer.Linear(16 * 4 * 4, 10))
        functional.set_step_mode(self, "m")

    def forward(self, x_seq):
        return self.classifier(self.features(x_seq))


class SJContainerNet(nn.Module):
    """Plain torch layers in SeqToANNContainer, a residual sum, neurons built multi-step directly."""

    def __init__(self):
        super().__init__()
        self.stem = layer.SeqToANNContainer(nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.sn1 = neuron.LIFNode(tau=4.0 / 3.0, decay_input=False, v_threshold=0.8,
                                  surrogate_function=surrogate.Rect(alpha=2.0), step_mode="m")
        self.conv = layer.SeqToANNContainer(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.sn2 = neuron.LIFNode(tau=3.0, v_reset=-0.2, surrogate_function=surrogate.PiecewiseQuadratic(alpha=1.5),
                                  step_mode="m")
        self.head = layer.SeqToANNContainer(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))

    def forward(self, x_seq):
        h = self.sn1(self.stem(x_seq))
        return self.head(self.sn2(self.conv(h) + h))


def _spikes(net, x):
    """Per-neuron-layer spikes by module name, and the output."""
    kinds = (neuron.LIFNode, neuron.IFNode, sd.LIF)
    records = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: records.__setitem__(n, o))
             for n, m in net.named_modules() if isinstance(m, kinds)]
    out = net(x)
    for hook in hooks:
        hook.remove()
    return records, out


@pytest.mark.parametrize("make, shape", [(SJConvNet, (1, 8, 8)), (SJContainerNet, (2, 8, 8))])
def test_converted_net_gives_spikingjellys_spikes_logits_and_gradients(make, shape):
    torch.manual_seed(0)
    sj = trained_looking(make(), bias_mean=0.8).double()
    student = sd.from_spikingjelly(sj, timesteps=TIMESTEPS)
    frames = (torch.randn(TIMESTEPS, 3, *shape, dtype=torch.float64) * 2).requires_grad_()

    functional.reset_net(sj)
    sj_spikes, sj_logits = _spikes(sj, frames)
    our_spikes, our_logits = _spikes(student.net, frames)
    assert set(our_spikes) == set(sj_spikes) and len(sj_spikes) == 2
    for name, spikes in sj_spikes.items():
        assert torch.equal(our_spikes[name], spikes), name
        assert 0.02 < spikes.mean() < 0.98, name  # the comparison is not between silent or saturated layers
    torch.testing.assert_close(our_logits, sj_logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(student(frames), sj_logits, rtol=1e-12, atol=1e-12)  # the contract's call

    # the surrogate and the reset's gradient: the same backward, layer by layer
    weights = [name for name, p in sj.named_parameters() if p.dim() > 1]
    sj_grads = torch.autograd.grad(sj_logits.square().sum(),
                                   [frames] + [dict(sj.named_parameters())[n] for n in weights])
    our_grads = torch.autograd.grad(our_logits.square().sum(),
                                    [frames] + [dict(student.net.named_parameters())[n] for n in weights])
    for ours, theirs in zip(our_grads, sj_grads):
        assert theirs.abs().sum() > 0
        torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)


def test_converted_net_takes_images_and_keeps_the_contract():
    torch.manual_seed(0)
    sj = trained_looking(SJConvNet(), bias_mean=0.8)
    student = sd.from_spikingjelly(sj, timesteps=3)
    assert (student.spiking, student.num_classes, student.in_channels) == (True, 10, 1)
    assert set(student.net.state_dict()) == set(sj.state_dict())  # SpikingJelly checkpoints load as they are
    images = torch.randn(5, 1, 8, 8)
    functional.reset_net(sj)
    with torch.no_grad():
        expected = sj(images.unsqueeze(0).repeat(3, 1, 1, 1, 1))
        assert student(images).shape == (3, 5, 10)
        torch.testing.assert_close(student(images), expected)
        torch.testing.assert_close(student(images, timesteps=2), expected[:2])  # causal: a prefix of the steps
    assert isinstance(sj.features[2], neuron.LIFNode)  # the user's network is left as it was


def test_converted_net_trains_a_step():
    torch.manual_seed(0)
    student = sd.from_spikingjelly(trained_looking(SJConvNet(), bias_mean=0.8).train(), timesteps=2)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    before = student.net.features[0].weight.detach().clone()
    loss = nn.functional.cross_entropy(student(torch.randn(4, 1, 8, 8)).mean(0), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(student.net.features[0].weight, before)


def _with(node, **attributes):
    for key, value in attributes.items():
        setattr(node, key, value)
    return node


@pytest.mark.parametrize("options, message", [
    ({"lif": neuron.ParametricLIFNode()},
     "layer 'features.2' is a ParametricLIFNode, whose learnable τ has no equivalent"),
    ({"lif": neuron.LIFNode(store_v_seq=True)}, "layer 'features.2' sets store_v_seq=True"),
    ({"lif": neuron.LIFNode(surrogate_function=surrogate.Erf())},
     "layer 'features.2' uses surrogate.Erf, which has no equivalent"),
    ({"lif": neuron.LIFNode(surrogate_function=surrogate.Sigmoid(spiking=False))},
     "layer 'features.2' uses its surrogate with spiking=False"),
    ({"if_node": neuron.IzhikevichNode()},
     "layer 'features.6' is SpikingJelly's IzhikevichNode, which has no equivalent"),
    ({"lif": _with(neuron.LIFNode(), tau=1.0)}, "layer 'features.2' has tau=1.0; our LIF needs tau > 1"),
])
def test_what_has_no_equivalent_is_refused_in_one_line_naming_the_layer(options, message):
    with pytest.raises(sd.SpikeDistillError, match=message) as error:
        sd.from_spikingjelly(SJConvNet(**options))
    assert "\n" not in str(error.value)


def test_single_step_networks_and_time_mean_outputs_are_refused():
    single = SJConvNet()
    functional.set_step_mode(single, "s")
    with pytest.raises(sd.SpikeDistillError, match="single-step neuron .*set_step_mode\\(net, 'm'\\)"):
        sd.from_spikingjelly(single)

    class TimeMean(SJConvNet):
        def forward(self, x_seq):
            return super().forward(x_seq).mean(0)

    with pytest.raises(sd.SpikeDistillError,
                       match=r"returned \(3, 10\).*per-step logits \[T, B, K\]: drop a .mean\(0\)"):
        sd.from_spikingjelly(TimeMean())(torch.randn(3, 1, 8, 8))
    with pytest.raises(sd.SpikeDistillError, match="no SpikingJelly LIFNode or IFNode"):
        sd.from_spikingjelly(nn.Sequential(nn.Linear(3, 3)))


def test_converted_net_exports_to_onnx_that_runs_at_any_batch_size(tmp_path):
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from spikedistill.export.fixed import export_onnx

    torch.manual_seed(0)
    student = sd.from_spikingjelly(trained_looking(SJContainerNet(), bias_mean=0.8))
    export_onnx(student, tmp_path / "net.onnx", (2, 8, 8), timesteps=TIMESTEPS)
    session = onnxruntime.InferenceSession(str(tmp_path / "net.onnx"))
    for batch in (1, 5):  # SpikingJelly's layers unflatten [T·B] and read the shape back: traced with care
        images = torch.randn(batch, 2, 8, 8)
        (out,) = session.run(None, {"input": images.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(out), student(images), rtol=1e-4, atol=1e-5)


def test_converted_net_reports_spikes_and_sops_per_sample_at_any_batch_size():
    """Energy sees our LIF in the converted net: SOPs and firing rates, the same per sample at batch 1 and 8."""
    from user_models import spikingjelly_student

    torch.manual_seed(0)
    student = trained_looking(spikingjelly_student(), bias_mean=0.8)
    images, labels = torch.randn(8, 1, 8, 8) * 2, torch.zeros(8, dtype=torch.long)
    reports = [sd.fullrange_report(student, [(images[i:i + batch], labels[i:i + batch]) for i in range(0, 8, batch)], 4)
               for batch in (1, 8)]
    assert 0 < reports[0]["firing_rate"][-1] < 1 and reports[0]["sops"][0] > 0
    for key in ("sops", "firing_rate", "top1"):
        assert reports[0][key] == pytest.approx(reports[1][key], rel=1e-6), key


def test_a_converted_student_distills_with_fit_and_its_checkpoint_evaluates(tmp_path):
    """A SpikingJelly network as its users write it, converted, trained by sd.fit from a plain teacher; the
    run's best.pt rebuilds it and the full-range report scores it (energy included) at every k."""
    from spikedistill.evaluate import fullrange_report

    torch.manual_seed(0)
    x = torch.randn(96, 1, 8, 8)
    y = (x.mean((1, 2, 3)) > 0).long() + 2 * (x[:, :, :4].mean((1, 2, 3)) > 0).long()  # 4 learnable classes
    data = torch.utils.data.TensorDataset(x, y)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    student = sd.from_spikingjelly(trained_looking(SJConvNet(), bias_mean=0.8), timesteps=2, num_classes=10)
    result = sd.fit(student, data, test_data=data, teacher=teacher, loss="twkd", timesteps=2, epochs=2,
                    batch_size=16, out=tmp_path / "run", device="cpu", verbose=False)
    assert sorted(result["top1"]) == [1, 2]
    ckpt = sd.load_checkpoint(tmp_path / "run" / "best.pt")
    with pytest.raises(sd.SpikeDistillError, match=r"load_state_dict"):  # the wrapped net: said how to load it
        ckpt.model()
    net = sd.from_spikingjelly(SJConvNet(), timesteps=2, num_classes=10)  # as the message says
    net.load_state_dict(ckpt["state_dict"])
    report = fullrange_report(net.eval(), [(x, y)], 2)
    assert report["top1"] == pytest.approx([result["top1"][1], result["top1"][2]])
    assert all(sop > 0 for sop in report["sops"])
