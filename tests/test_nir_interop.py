"""NIR files that other frameworks run to spikedistill's predictions: snnTorch 1.0.0 and Norse 1.1.0.

Each reader loads the file written for it (``--nir-target snntorch|norse``) with the lines that
docs/deployment.md gives, one sample at a time (both readers flatten the batch, see the docs), for
T = 4 steps. The digits network is the demo recipe's student (configs/digits/twkd_small_cnn.yaml,
trained by the recipe; its weights ship as tests/fixtures/digits_twkd_small_cnn.pt, see
tests/fixtures/README.md), scored on the 360 test images; the residual network is a random
resnet-style one with BatchNorm statistics far from their initial values.

CI installs both readers (``make install``: ``pip install --no-deps snntorch==1.0.0 norse==1.1.0``,
since norse's torchvision requirement would replace the CPU torch); under CI a missing reader fails.
"""

import contextlib
import io
import os
from functools import partial
from pathlib import Path

import pytest
import torch
from user_models import ResidualStudent, UnflattenStudent, spikingjelly_student

import spikedistill as sd
from spikedistill.export.to_nir import write_nir
from spikedistill.models.resnet import CifarResNet

from helpers import trained_looking

if os.environ.get("CI"):  # CI must run these, not skip them
    import nir
    import norse  # noqa: F401
    import sklearn  # noqa: F401
    import snntorch  # noqa: F401
nir = pytest.importorskip("nir")
pytest.importorskip("snntorch")
pytest.importorskip("norse")

TIMESTEPS = 4  # one image per call to the readers: one thread is faster for such small steps
FIXTURE = Path(__file__).parent / "fixtures" / "digits_twkd_small_cnn.pt"
# Logits may differ by float rounding (BatchNorm folded, another summation order); a membrane within
# rounding of the threshold could flip a spike and move one image's logits further, hence the 99 %.
LOGIT_TOLERANCE = 1e-4


def snntorch_logits(path, images):
    """The three lines of docs/deployment.md for snnTorch (its import prints warnings: silenced)."""
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):
        net = import_from_nir(nir.read(str(path)))
    per_image = []
    with torch.no_grad():
        for image in images:  # snnTorch's Flatten(start_dim=0) flattens a batch: one image at a time
            snntorch.utils.reset(net)  # its neurons keep their state between calls
            per_image.append(torch.stack([net(image)[0] for _ in range(TIMESTEPS)]))
    return torch.stack(per_image, dim=1)


def norse_logits(path, images):
    """The lines of docs/deployment.md for Norse: ``from_nir`` for feed-forward graphs; graphs with a
    residual sum go through nirtorch's newer interpreter with Norse's own node mapping, because
    ``from_nir``'s executor runs a sum before all of its inputs (see the docs)."""
    import nirtorch
    import norse.torch
    from norse.torch.utils.import_nir import _import_norse_module

    graph = nir.read(str(path))
    dt = float(graph.metadata["dt"])
    if any(sum(dst == name for _, dst in graph.edges) > 1 for name in graph.nodes):
        kinds = (nir.LIF, nir.IF, nir.Affine, nir.Linear, nir.Conv2d, nir.SumPool2d, nir.Flatten)
        net = nirtorch.nir_to_torch(graph, {kind: partial(_import_norse_module, dt=dt) for kind in kinds})
    else:
        net = norse.torch.from_nir(graph, dt=dt)
    per_image = []
    with torch.no_grad():
        for image in images:  # Flatten(start_dim=0) again: one image at a time
            state, steps = None, []
            for _ in range(TIMESTEPS):
                out, state = net(image, state)
                steps.append(out)
            per_image.append(torch.stack(steps))
    return torch.stack(per_image, dim=1)


READERS = {"snntorch": snntorch_logits, "norse": norse_logits}


def _agreement(ours, theirs):
    """(fraction of images with the same prediction, fraction with every logit within tolerance)."""
    same_prediction = ours.mean(0).argmax(-1) == theirs.mean(0).argmax(-1)
    close = (ours - theirs).abs().amax(dim=(0, 2)) <= LOGIT_TOLERANCE
    return same_prediction.float().mean().item(), close.float().mean().item()


@pytest.fixture(scope="module")
def digits_student():
    pytest.importorskip("sklearn")
    from spikedistill.data.arrays import load_digits
    from spikedistill.data.augment import normalize

    saved = torch.load(FIXTURE, weights_only=True)
    net = sd.create_model(saved["model"], num_classes=10, **saved["options"])
    net.load_state_dict(saved["state_dict"])
    net.eval()
    test = load_digits(split="test")  # normalised with the training split's statistics, as in training
    images = normalize(test.images, test.mean, test.std)
    with torch.no_grad():
        logits = net(images, timesteps=TIMESTEPS)
    assert (logits.mean(0).argmax(-1) == test.labels).float().mean() > 0.95  # a trained network
    return net, images, logits


@pytest.mark.filterwarnings("ignore:nirtorch.load is being deprecated:DeprecationWarning")  # Norse's from_nir
@pytest.mark.parametrize("target", ["snntorch", "norse"])
def test_reader_runs_the_digits_student_to_our_predictions(tmp_path, digits_student, target, one_thread):
    net, images, ours = digits_student
    write_nir(net, tmp_path / "net.nir", (1, 8, 8), TIMESTEPS, target=target)
    theirs = READERS[target](tmp_path / "net.nir", images)
    assert theirs.shape == ours.shape == (TIMESTEPS, 360, 10)
    same_prediction, close = _agreement(ours, theirs)
    assert same_prediction >= 0.99 and close >= 0.99, (same_prediction, close)


@pytest.mark.parametrize("hidden_fc", [None, 12])  # 12: a hidden FC neuron layer, as in resnet19
@pytest.mark.parametrize("target", ["snntorch", "norse"])
def test_reader_runs_a_residual_network_to_our_logits(tmp_path, target, hidden_fc, one_thread):
    torch.manual_seed(0)  # identity and conv shortcuts (residual sums of two edges)
    net = trained_looking(CifarResNet((8, 16), (1, 2), hidden_fc, True, num_classes=5, in_channels=3))
    images = torch.randn(24, 3, 8, 8) * 2
    with torch.no_grad():
        ours = net(images, timesteps=TIMESTEPS)
    assert ours.std(dim=1).mean() > 0.02  # logits that depend on the image: the network is not silent
    write_nir(net, tmp_path / "net.nir", (3, 8, 8), TIMESTEPS, target=target)
    same_prediction, close = _agreement(ours, READERS[target](tmp_path / "net.nir", images))
    assert same_prediction >= 0.99 and close >= 0.99, (same_prediction, close)


def test_the_spec_plain_file_is_not_what_snntorch_runs(tmp_path, digits_student, one_thread):
    """Why the targets exist: snnTorch reads τ = 2 in its dt = 1e-4, so nearly nothing fires."""
    net, images, ours = digits_student
    write_nir(net, tmp_path / "net.nir", (1, 8, 8), TIMESTEPS, target="nir")
    same_prediction, _ = _agreement(ours[:, :40], snntorch_logits(tmp_path / "net.nir", images[:40]))
    assert same_prediction < 0.5


@pytest.mark.filterwarnings("ignore:nirtorch.load is being deprecated:DeprecationWarning")
def test_norse_from_nir_still_runs_residual_sums_out_of_order(tmp_path):
    """Pins the upstream bug docs/deployment.md works around: when this fails, Norse's from_nir runs
    residual graphs and the docs can drop the nir_to_torch lines."""
    import norse.torch

    torch.manual_seed(0)
    net = trained_looking(CifarResNet((8, 16), (1, 2), None, True, num_classes=5, in_channels=3))
    write_nir(net, tmp_path / "net.nir", (3, 8, 8), TIMESTEPS, target="norse")
    graph = nir.read(str(tmp_path / "net.nir"))
    out, _ = norse.torch.from_nir(graph, dt=float(graph.metadata["dt"]))(torch.randn(3, 8, 8), None)
    assert tuple(out.shape) != (5,)  # a feature map of the last node walked, not the logits


@pytest.mark.filterwarnings("ignore:nirtorch.load is being deprecated:DeprecationWarning")
@pytest.mark.parametrize("target", ["snntorch", "norse"])
@pytest.mark.parametrize("student", ["unflatten", "residual", "spikingjelly"])
def test_reader_runs_user_models_to_our_logits(tmp_path, target, student, one_thread):
    """Students we did not write (plain PyTorch with sd.LIF; a converted SpikingJelly CNN) export through
    the traced graph and run in both readers as the zoo's do."""
    torch.manual_seed(0)
    if student == "spikingjelly":
        pytest.importorskip("spikingjelly")
    net, shape = {"unflatten": (UnflattenStudent, (1, 8, 8)), "residual": (ResidualStudent, (3, 8, 8)),
                  "spikingjelly": (spikingjelly_student, (1, 8, 8))}[student]
    net = trained_looking(net(), bias_mean=0.8)
    images = torch.randn(16, *shape) * 2
    with torch.no_grad():
        ours = net(images, timesteps=TIMESTEPS)
    assert ours.std(dim=1).mean() > 0.02  # logits that depend on the image
    write_nir(net, tmp_path / "net.nir", shape, TIMESTEPS, target=target)
    same_prediction, close = _agreement(ours, READERS[target](tmp_path / "net.nir", images))
    assert same_prediction >= 0.99 and close >= 0.99, (same_prediction, close)
