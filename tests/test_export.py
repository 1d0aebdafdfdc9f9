import numpy as np
import pytest
import torch
from user_models import ResidualStudent, UnflattenStudent, spikingjelly_student

import spikedistill as sd
from spikedistill.export.fixed import InferenceLIF, export_onnx, export_torchscript
from spikedistill.export.to_nir import fold_batchnorm, lif_node, to_nir, write_nir
from spikedistill.models.layers import ConvBN
from spikedistill.models.resnet import CifarResNet

from helpers import trained_looking
from nir_runner import NIRSimulator

nir = pytest.importorskip("nir")



def _spikes_and_logits(net, x, timesteps):
    spikes = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: spikes.__setitem__(n.replace(".", "_"), o))
             for n, m in net.named_modules() if isinstance(m, sd.LIF)]
    with torch.no_grad():
        logits = net(x, timesteps=timesteps)
    for h in hooks:
        h.remove()
    return spikes, logits


@pytest.mark.parametrize("target", ["nir", "snntorch", "norse"])
@pytest.mark.parametrize("family", ["small_cnn", "tiny_resnet"])
def test_nir_round_trip_gives_the_same_spikes_and_logits(tmp_path, family, target):
    """Every target's file means the same network under Euler at its metadata dt (our simulator)."""
    torch.manual_seed(0)
    if family == "small_cnn":
        net, shape = sd.create_model("small_cnn", num_classes=10, decay=0.6), (1, 8, 8)
    else:  # residual wiring (identity and conv shortcuts) and a hidden FC neuron layer, as in resnet19
        net, shape = CifarResNet((8, 16), (1, 2), 12, True, num_classes=5, in_channels=3), (3, 8, 8)
    net = trained_looking(net)
    x = torch.randn(4, *shape) * 2
    write_nir(net, tmp_path / "net.nir", shape, timesteps=4, target=target)
    graph = nir.read(str(tmp_path / "net.nir"))
    records = NIRSimulator(graph)(x.unsqueeze(0).expand(4, *x.shape))
    spikes, logits = _spikes_and_logits(net, x, 4)
    assert set(spikes) <= set(records)
    active = 0
    for name, s in spikes.items():
        assert torch.equal(records[name], s), name
        active += int(s.sum() > 0)
    assert active >= 3  # the comparison is not between silent networks
    torch.testing.assert_close(records["output"], logits, rtol=1e-4, atol=1e-5)


def test_lif_maps_to_nir_with_tau_and_r_from_the_decay():
    node = lif_node(sd.LIFConfig(decay=0.5), (2, 3))
    assert isinstance(node, nir.LIF) and node.tau.shape == (2, 3)
    assert node.tau[0, 0] == 2.0 and node.r[0, 0] == 2.0 and node.v_leak[0, 0] == 0.0 and node.v_threshold[0, 0] == 1.0
    node = lif_node(sd.LIFConfig(decay=0.2, decay_input=True, threshold=0.5), (4,))
    assert node.tau[0] == pytest.approx(1.25) and node.r[0] == 1.0 and node.v_threshold[0] == 0.5
    assert isinstance(lif_node(sd.LIFConfig(decay=1.0), (4,)), nir.IF)


def test_batchnorm_folds_into_the_conv():
    torch.manual_seed(0)
    block = trained_looking(ConvBN(3, 5, 3, stride=2, bias=True))
    weight, bias = fold_batchnorm(block.conv, block.bn)
    x = torch.randn(2, 3, 7, 7)
    folded = torch.nn.functional.conv2d(x, torch.from_numpy(weight), torch.from_numpy(bias), stride=2, padding=1)
    torch.testing.assert_close(folded, block(x), rtol=1e-4, atol=1e-5)


def test_nir_export_refuses_what_nir_cannot_express():
    with pytest.raises(sd.SpikeDistillError, match="soft reset"):
        to_nir(sd.create_model("small_cnn", v_reset=None), (1, 8, 8))
    with pytest.raises(sd.SpikeDistillError, match="spiking model"):
        to_nir(sd.create_model("small_cnn", spiking=False), (1, 8, 8))
    with pytest.raises(sd.SpikeDistillError, match="max-pool"):
        to_nir(sd.create_model("preact_resnet34", num_classes=10), (3, 32, 32))
    with pytest.raises(sd.SpikeDistillError, match="C,H,W"):
        to_nir(sd.create_model("small_cnn"), (3, 8, 8))


@pytest.mark.parametrize("options", [{}, {"v_reset": None}, {"decay": 0.3, "decay_input": True, "threshold": 0.7}])
def test_inference_lif_spikes_like_the_training_lif(options):
    x = torch.randn(6, 3, 50) * 1.5
    lif = sd.LIF(**options)
    assert torch.equal(InferenceLIF(lif.cfg)(x), lif(x))


def test_onnx_export_is_valid_and_computes_the_model(tmp_path):
    onnx = pytest.importorskip("onnx")
    torch.manual_seed(0)
    net = trained_looking(sd.create_model("small_cnn", num_classes=10))
    export_onnx(net, tmp_path / "net.onnx", (1, 8, 8), timesteps=3)
    model = onnx.load(str(tmp_path / "net.onnx"))
    onnx.checker.check_model(model)
    x = torch.randn(5, 1, 8, 8) * 2  # another batch size than the export's example
    with torch.no_grad():
        expected = net(x, timesteps=3).numpy()
    try:
        import onnxruntime
        run = onnxruntime.InferenceSession(str(tmp_path / "net.onnx")).run
    except ImportError:  # onnx's pure-Python reference runtime
        from onnx.reference import ReferenceEvaluator
        run = ReferenceEvaluator(model).run
    (out,) = run(None, {"input": x.numpy()})
    assert out.shape == (3, 5, 10)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated, still supported
def test_torchscript_export_runs_fixed_timesteps(tmp_path):
    torch.manual_seed(0)
    net = trained_looking(sd.create_model("small_cnn", num_classes=10))
    export_torchscript(net, tmp_path / "net.pt", (1, 8, 8), timesteps=2)
    loaded = torch.jit.load(str(tmp_path / "net.pt"))
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x, timesteps=2))


def test_reader_targets_write_time_in_the_readers_dt_and_fold_what_it_ignores():
    torch.manual_seed(0)
    net = trained_looking(sd.create_model("small_cnn", num_classes=10, widths=(4, 8, 16)))
    plain, snn, norse = (to_nir(net, (1, 8, 8), 4, target) for target in ("nir", "snntorch", "norse"))
    assert plain.metadata["dt"] == 1.0 and snn.metadata["dt"] == 1e-4 and norse.metadata["dt"] == 1e-3
    # d = 0.5: dt/τ = 0.5 in every file; R = 2 written as r (plain, snnTorch) or in the weights (Norse)
    assert plain.nodes["act1"].tau[0, 0, 0] == 2.0 and plain.nodes["act1"].r[0, 0, 0] == 2.0
    assert snn.nodes["act1"].tau[0, 0, 0] == pytest.approx(2e-4) and snn.nodes["act1"].r[0, 0, 0] == 2.0
    assert norse.nodes["act1"].tau[0, 0, 0] == pytest.approx(2e-3) and norse.nodes["act1"].r[0, 0, 0] == 1.0
    np.testing.assert_array_equal(norse.nodes["conv1_conv"].weight, 2 * plain.nodes["conv1_conv"].weight)
    np.testing.assert_array_equal(norse.nodes["conv1_conv"].bias, 2 * plain.nodes["conv1_conv"].bias)
    # global average pool over 2×2: Norse maps SumPool2d only, so the 1/4 moves into the classifier
    assert type(plain.nodes["gap"]).__name__ == "AvgPool2d" and type(norse.nodes["gap"]).__name__ == "SumPool2d"
    np.testing.assert_allclose(norse.nodes["fc"].weight, plain.nodes["fc"].weight / 4)
    np.testing.assert_array_equal(norse.nodes["fc"].bias, plain.nodes["fc"].bias)


def test_residual_identity_edge_gets_its_own_scale_for_readers_that_ignore_r():
    torch.manual_seed(0)
    net = trained_looking(CifarResNet((8, 16), (1, 2), 12, True, num_classes=5, in_channels=3))
    graph = to_nir(net, (3, 8, 8), 4, "norse")
    scale = graph.nodes["stem_act_to_stages_0_0_act2_r"]  # the identity shortcut of the first block
    assert ("stem_act", "stem_act_to_stages_0_0_act2_r") in graph.edges
    assert ("stem_act_to_stages_0_0_act2_r", "stages_0_0_act2") in graph.edges
    np.testing.assert_array_equal(scale.weight[:, :, 0, 0], 2 * np.eye(8))
    assert ("stem_act", "stages_0_0_act2") not in graph.edges


def _with_layer(name, layer, **options):
    net = sd.create_model("small_cnn", num_classes=10, **options)
    setattr(net, name, layer)
    return net


@pytest.mark.parametrize("net, target, message", [
    (lambda: _with_layer("stem_act", torch.nn.Sequential(torch.nn.MaxPool2d(2), sd.LIF())), "nir",
     "layer 'stem_act.0' is a max-pool"),
    (lambda: _with_layer("act1", torch.nn.GELU()), "nir", "layer 'act1' is GELU, which no NIR node represents"),
    (lambda: sd.create_model("small_cnn", v_reset=0.5), "snntorch", "layer 'stem_act' resets to v_reset=0.5"),
    (lambda: sd.create_model("small_cnn", v_reset=0.5), "norse", "layer 'stem_act' resets to v_reset=0.5"),
    (lambda: sd.create_model("small_cnn", decay=1.0), "snntorch", "layer 'stem_act' has decay=1"),
])
def test_preflight_names_the_layer_and_writes_nothing(tmp_path, net, target, message):
    with pytest.raises(sd.SpikeDistillError, match=message) as error:
        write_nir(net(), tmp_path / "net.nir", (1, 8, 8), target=target)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "net.nir").exists()


def test_unknown_target_is_refused_with_the_known_ones():
    with pytest.raises(sd.SpikeDistillError, match="unknown NIR target 'snntroch'; known: nir, snntorch, norse"):
        to_nir(sd.create_model("small_cnn"), (1, 8, 8), target="snntroch")


def test_export_cli_writes_the_file_for_the_chosen_reader(tmp_path, capsys):
    from spikedistill.checkpoint import model_spec, save_checkpoint
    from spikedistill.cli import main

    net = trained_looking(sd.create_model("small_cnn", num_classes=10))
    save_checkpoint(tmp_path / "net.pt", model=net, spec=model_spec("small_cnn", True, 10, in_channels=1),
                    config={"timesteps": 4})
    for target, dt in (("nir", 1.0), ("snntorch", 1e-4), ("norse", 1e-3)):
        out = tmp_path / f"{target}.nir"
        assert main(["export", str(tmp_path / "net.pt"), "--format", "nir", "--nir-target", target, "--out",
                     str(out)]) == 0
        graph = nir.read(str(out))
        assert graph.metadata["nir_target"] == target and float(graph.metadata["dt"]) == dt
    assert "dt=0.001" in capsys.readouterr().out


def test_file_omits_a_zero_v_reset_that_nir_before_1_0_6_cannot_read(tmp_path):
    h5py = pytest.importorskip("h5py")
    write_nir(sd.create_model("small_cnn"), tmp_path / "zero.nir", (1, 8, 8))
    write_nir(sd.create_model("small_cnn", v_reset=-0.25), tmp_path / "other.nir", (1, 8, 8))
    with h5py.File(tmp_path / "zero.nir") as zero, h5py.File(tmp_path / "other.nir") as other:
        assert "v_reset" not in zero["node/nodes/act1"] and "v_reset" in other["node/nodes/act1"]
    assert nir.read(str(tmp_path / "zero.nir")).nodes["act1"].v_reset.max() == 0.0  # read back as the default
    np.testing.assert_array_equal(nir.read(str(tmp_path / "other.nir")).nodes["act1"].v_reset, -0.25)


_OLDEST_NIR_RUN = """
import sys, torch, nir
from spikedistill.export.to_nir import write_nir
from spikedistill.models.resnet import CifarResNet
sys.path.insert(0, sys.argv[2])
from helpers import trained_looking
from nir_runner import run_nir
assert nir.__file__.startswith(sys.argv[1]), nir.__file__
torch.manual_seed(0)
net, x = trained_looking(CifarResNet((8, 16), (1, 2), 12, True, 5, 3)), torch.randn(3, 3, 8, 8)  # every node kind
for target in ("nir", "snntorch", "norse"):
    write_nir(net, sys.argv[1] + "/net.nir", (3, 8, 8), 4, target=target)
    torch.testing.assert_close(run_nir(nir.read(sys.argv[1] + "/net.nir"), x, 4), net(x, timesteps=4))
print("nir", nir.__version__, "ok")
"""


def test_export_works_with_the_lowest_nir_the_package_allows(tmp_path):
    """pyproject's lower bound on nir, whose wheel `make install` keeps in <venv>/oldest-nir (OLDEST_NIR in
    the Makefile), put first on the path of a subprocess."""
    import os
    import re
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    lowest = re.search(r'"nir>=([0-9.]+)"', (root / "pyproject.toml").read_text()).group(1)
    wheels = sorted((Path(sys.prefix) / "oldest-nir").glob("nir-*.whl"))
    if not wheels:
        message = f"no nir wheel in {Path(sys.prefix) / 'oldest-nir'}; make install puts nir=={lowest} there"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    assert wheels[-1].name.startswith(f"nir-{lowest}-"), (
        f"Makefile OLDEST_NIR gives {wheels[-1].name}, pyproject says nir>={lowest}")
    old = tmp_path / "old"
    zipfile.ZipFile(wheels[-1]).extractall(old)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(old), str(root)]))
    run = subprocess.run([sys.executable, "-c", _OLDEST_NIR_RUN, str(old), str(root / "tests")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"nir {lowest} ok" in run.stdout


def _onnx_run(path, x):
    onnxruntime = pytest.importorskip("onnxruntime")
    (out,) = onnxruntime.InferenceSession(str(path)).run(None, {"input": x.numpy()})
    return out


def test_onnx_of_a_user_model_that_unflattens_runs_at_every_batch_size(tmp_path):
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    net = trained_looking(UnflattenStudent())
    export_onnx(net, tmp_path / "net.onnx", (1, 8, 8), timesteps=3)
    for batch in (1, 5):
        x = torch.randn(batch, 1, 8, 8) * 2
        with torch.no_grad():
            expected = net(x, timesteps=3)
        out = _onnx_run(tmp_path / "net.onnx", x)
        assert out.shape == (3, batch, 10)
        np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_that_runs_only_at_the_traced_batch_size_is_refused_and_removed(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    with pytest.raises(sd.SpikeDistillError, match="runs at batch size 2 only .*at batch 3.*unflatten") as error:
        export_onnx(UnflattenStudent(bake_batch=True).eval(), tmp_path / "net.onnx", (1, 8, 8), timesteps=3)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "net.onnx").exists()


def test_onnx_without_onnxruntime_warns_that_the_batch_check_was_skipped(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.warns(UserWarning, match="onnxruntime is not installed.*not run at a second batch size"):
        export_onnx(UnflattenStudent(bake_batch=True).eval(), tmp_path / "net.onnx", (1, 8, 8), timesteps=3)
    assert (tmp_path / "net.onnx").exists()


def _user_students():
    pytest.importorskip("spikingjelly")
    return {"unflatten": (UnflattenStudent(), (1, 8, 8)), "residual": (ResidualStudent(), (3, 8, 8)),
            "spikingjelly": (spikingjelly_student(), (1, 8, 8))}


@pytest.mark.parametrize("target", ["nir", "norse"])
@pytest.mark.parametrize("student", ["unflatten", "residual", "spikingjelly"])
def test_nir_of_user_models_gives_their_spikes_and_logits(tmp_path, student, target):
    """No per-family code: the graph is traced from the model's own forward (plain PyTorch with sd.LIF,
    a residual sum, a converted SpikingJelly network)."""
    torch.manual_seed(0)
    net, shape = _user_students()[student]
    net = trained_looking(net, bias_mean=0.8)
    x = torch.randn(4, *shape) * 2
    write_nir(net, tmp_path / "net.nir", shape, timesteps=4, target=target)
    records = NIRSimulator(nir.read(str(tmp_path / "net.nir")))(x.unsqueeze(0).expand(4, *x.shape))
    spikes, logits = _spikes_and_logits(net, x, 4)
    assert spikes and set(spikes) <= set(records)
    for name, s in spikes.items():
        assert torch.equal(records[name], s), name
        assert 0 < s.mean() < 1, name
    torch.testing.assert_close(records["output"], logits, rtol=1e-4, atol=1e-5)


def test_nir_graph_of_a_residual_user_model_sums_two_edges_and_folds_batchnorm():
    torch.manual_seed(0)
    net = trained_looking(ResidualStudent())
    graph = to_nir(net, (3, 8, 8), 4)
    assert sorted(src for src, dst in graph.edges if dst == "lif2") == ["conv2", "lif1"]
    assert {type(node).__name__ for node in graph.nodes.values()} == {
        "Input", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Affine", "Output"}  # no BatchNorm node: folded
    weight, bias = fold_batchnorm(net.conv1, net.bn1)
    np.testing.assert_array_equal(graph.nodes["conv1"].weight, weight)
    np.testing.assert_array_equal(graph.nodes["conv1"].bias, bias)


class _Student(torch.nn.Module):
    spiking = True

    def __init__(self, forward):
        super().__init__()
        self.conv, self.bn, self.lif, self.fc = (torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), sd.LIF(),
                                                 torch.nn.Linear(4, 3))
        self.body = forward

    def forward(self, x, timesteps=4, return_features=False):
        return self.body(self, x.unsqueeze(0).repeat(timesteps, 1, 1, 1, 1).flatten(0, 1), timesteps)


def _relu(m, x, t):
    return m.fc(torch.relu(m.conv(x)).mean((-2, -1))).unflatten(0, (t, -1))


def _time_mean(m, x, t):
    return m.fc(m.lif(m.bn(m.conv(x)).unflatten(0, (t, -1))).mean((0, -2, -1)))


def _bn_of_a_sum(m, x, t):
    h = m.conv(x)
    return m.fc(m.lif(m.bn(h + h).unflatten(0, (t, -1))).mean((-2, -1)))


@pytest.mark.parametrize("body, message", [
    (_relu, "the model applies 'relu' to the output of conv, which no NIR node represents"),
    (_time_mean, "averages over time .*return per-step logits"),
    (_bn_of_a_sum, "layer 'bn' is a BatchNorm that does not directly follow a conv or linear layer"),
])
def test_nir_tracing_refuses_what_no_node_represents_in_one_line(tmp_path, body, message):
    with pytest.raises(sd.SpikeDistillError, match=message) as error:
        write_nir(_Student(body).eval(), tmp_path / "net.nir", (1, 8, 8))
    assert "\n" not in str(error.value)
    assert not (tmp_path / "net.nir").exists()


def test_zoo_models_outside_nir_are_refused_at_the_layer_nir_lacks():
    """preact_resnet34's stem max-pools real values and ckdsnn_resnet19's last block ends in a ReLU (as
    their papers' code): no NIR node computes either, so the refusal names that layer."""
    with pytest.raises(sd.SpikeDistillError, match="layer 'stem.1' is a max-pool"):
        to_nir(sd.create_model("preact_resnet34", num_classes=10), (3, 32, 32))
    with pytest.raises(sd.SpikeDistillError, match="layer 'stages.2.1.act2' is ReLU, which no NIR node represents"):
        to_nir(sd.create_model("ckdsnn_resnet19", num_classes=10), (3, 32, 32))


def test_vggsnn_adaptive_pool_exports_only_as_a_plain_average_pool():
    net = sd.create_model("vggsnn", num_classes=4, in_channels=1)
    with pytest.raises(sd.SpikeDistillError, match="layer 'pool' pools adaptively from 2×2 to 3×3.*multiple of 3×3"):
        to_nir(net, (1, 32, 32))
