"""BatchNorm folded into the LIF (neurons/batchnorm.py, neurons/lif.py): the torch-ops version and the Triton kernel
(under TRITON_INTERPRET=1, set by conftest) against an unfused ``nn.BatchNorm2d`` + reference LIF."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import nn

from spikedistill.neurons import LIF, LIFConfig, lif_reference
from spikedistill.neurons.kernels import ops
from spikedistill.neurons.lif import batch_norm_lif

from helpers import saved_for_backward

OPTIONS = [
    dict(),
    dict(v_reset=None),
    dict(v_reset=-0.2, decay_input=True, surrogate="atan", surrogate_param=3.0),
    dict(v_reset=None, detach_reset=True, surrogate="triangle"),
]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(ops, "INTERPRETER_BLOCK_SIZE", 64)  # several programs and a partial last block


def make_bn(channels, seed=0, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels, **kwargs)
    with torch.no_grad():
        if bn.affine:
            bn.weight.copy_(torch.rand(channels, generator=generator) * 1.5 + 0.5)
            bn.bias.copy_(torch.rand(channels, generator=generator) - 0.3)
        if bn.running_mean is not None:
            bn.running_mean.copy_(torch.rand(channels, generator=generator) * 0.4 - 0.2)
            bn.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
    return bn


def twin(bn):
    return copy.deepcopy(bn)


def run(fn, x, bn, residual, grad_out):
    """Spikes and every gradient (x, residual, γ, β) of one forward/backward."""
    x = x.detach().clone().requires_grad_()
    residual = None if residual is None else residual.detach().clone().requires_grad_()
    spikes = fn(x, bn, residual)
    (spikes * grad_out).sum().backward()
    grads = [x.grad, None if residual is None else residual.grad]
    grads += [None if p is None else p.grad for p in (bn.weight, bn.bias)]
    return spikes.detach(), grads


def unfused(cfg):
    def fn(x, bn, residual):
        y = bn(x.flatten(0, 1)).unflatten(0, x.shape[:2])
        return lif_reference(y if residual is None else y + residual, cfg)
    return fn


def fused(cfg, backend):
    return lambda x, bn, residual: LIF(backend=backend, **vars(cfg))(x, bn=bn, residual=residual)


def inputs(shape, dtype=torch.float32, seed=0, residual=True):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=generator) * 2 + 0.3).to(dtype)
    r = (torch.rand(shape, generator=generator) < 0.3).to(dtype) if residual else None
    grad_out = torch.randn(shape, generator=generator).to(dtype)
    return x, r, grad_out


def assert_grads_close(got, want, rtol, atol):
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            torch.testing.assert_close(g, w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("training,residual", list(itertools.product((True, False), repeat=2)))
def test_sequence_fusion_equals_batchnorm_then_lif_in_float64(options, training, residual):
    """In float64 the folded affine rounds far below any threshold crossing: spikes identical, the
    gradients of x, the residual, γ and β to 1e-9, running statistics bit-equal."""
    cfg = LIFConfig(**options)
    x, r, grad_out = inputs((3, 4, 5, 6, 7), torch.float64, residual=residual)
    bn = make_bn(5).double().train(training)
    reference_bn = twin(bn)
    spikes, grads = run(fused(cfg, "sequence"), x, bn, r, grad_out)
    want_spikes, want_grads = run(unfused(cfg), x, reference_bn, r, grad_out)
    assert torch.equal(spikes, want_spikes)
    assert_grads_close(grads, want_grads, rtol=1e-9, atol=1e-12)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(bn, name), getattr(reference_bn, name), rtol=1e-12, atol=0)


@pytest.mark.parametrize("options", [dict(), dict(v_reset=None), dict(v_reset=0.2, decay_input=True, decay=0.6),
                                     dict(v_reset=None, decay_input=True, surrogate_param=2.5),
                                     dict(detach_reset=True)])
@pytest.mark.parametrize("training,residual", [(True, True), (False, False)])
def test_one_step_sigmoid_path_equals_batchnorm_then_lif_in_float64(options, training, residual):
    """At T = 1 the sigmoid surrogate's backward takes its own four-pass path (α·u as one addcmul over x,
    with decay_input's leak and v_reset folded into the constants): the same gradients as the unfused layer."""
    cfg = LIFConfig(**options)
    x, r, grad_out = inputs((1, 4, 5, 6, 7), torch.float64, residual=residual)
    bn = make_bn(5).double().train(training)
    spikes, grads = run(fused(cfg, "sequence"), x, bn, r, grad_out)
    want_spikes, want_grads = run(unfused(cfg), x, twin(bn), r, grad_out)
    assert torch.equal(spikes, want_spikes) and 0 < spikes.mean() < 1
    assert_grads_close(grads, want_grads, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("training,residual", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("shape", [(3, 4, 5, 6, 7), (1, 2, 3, 5, 5), (5, 3, 1, 4, 9)])
def test_triton_fusion_equals_the_torch_fusion_exactly(options, training, residual, shape):
    """Kernel and torch ops do the same fp32 arithmetic in the same order (x·scale + shift, + r,
    no FMA): identical spikes; gradients to 1e-5 relative. Shapes leave partial blocks, T = 1."""
    cfg = LIFConfig(**options)
    x, r, grad_out = inputs(shape, residual=residual)
    bn_triton, bn_sequence = make_bn(shape[2]).train(training), make_bn(shape[2]).train(training)
    spikes, grads = run(fused(cfg, "triton"), x, bn_triton, r, grad_out)
    want_spikes, want_grads = run(fused(cfg, "sequence"), x, bn_sequence, r, grad_out)
    assert torch.equal(spikes, want_spikes)
    assert_grads_close(grads, want_grads, rtol=1e-5, atol=1e-6)
    assert torch.equal(bn_triton.running_var, bn_sequence.running_var)


@pytest.mark.parametrize("backend", ["sequence", "triton"])
def test_fp32_fusion_matches_the_unfused_layer(backend):
    """Against nn.BatchNorm2d in fp32 the affine rounds differently; on random data no neuron sits
    within that rounding of the threshold, so spikes agree and gradients are close."""
    cfg = LIFConfig()
    x, r, grad_out = inputs((4, 3, 6, 5, 5))
    bn = make_bn(6)
    spikes, grads = run(fused(cfg, backend), x, bn, r, grad_out)
    want_spikes, want_grads = run(unfused(cfg), x, twin(make_bn(6)), r, grad_out)
    assert torch.equal(spikes, want_spikes)
    assert_grads_close(grads, want_grads, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["sequence", "triton"])
def test_channels_last_and_half_precision_inputs(backend):
    """Conv outputs under autocast on a GPU are bf16 channels_last: the kernel finds each element's
    channel in that order too; bf16 gives the fp32 layer's spikes up to rounding of the input."""
    cfg = LIFConfig()
    x, r, grad_out = inputs((3, 4, 6, 5, 5))
    to_cl = lambda t: t.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (3, 4))  # noqa: E731
    spikes, grads = run(fused(cfg, backend), to_cl(x), make_bn(6), to_cl(r), to_cl(grad_out))
    want_spikes, want_grads = run(fused(cfg, backend), x, make_bn(6), r, grad_out)
    assert torch.equal(spikes, want_spikes)
    assert_grads_close(grads, want_grads, rtol=1e-5, atol=1e-6)
    half_spikes, _ = run(fused(cfg, backend), x.bfloat16(), make_bn(6), r.bfloat16(), grad_out.bfloat16())
    assert half_spikes.dtype == torch.bfloat16
    assert (half_spikes.float() != want_spikes).float().mean() < 0.02


@pytest.mark.parametrize("momentum,track", [(None, True), (0.3, True), (0.1, False)])
def test_running_statistics_follow_batchnorm(momentum, track):
    """Cumulative average (momentum=None) over several batches, another momentum, and no running
    statistics at all (batch statistics in eval mode too)."""
    bn = make_bn(4, momentum=momentum, track_running_stats=track)
    reference = twin(bn)
    for seed in range(3):
        x, _, grad_out = inputs((2, 3, 4, 5, 5), torch.float64, seed=seed, residual=False)
        run(fused(LIFConfig(), "sequence"), x, bn.double(), None, grad_out)
        run(unfused(LIFConfig()), x, reference.double(), None, grad_out)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert (getattr(bn, name) is None) == (not track)
        if track:
            torch.testing.assert_close(getattr(bn, name), getattr(reference, name), rtol=1e-12, atol=0)
    bn.eval(), reference.eval()
    x, _, grad_out = inputs((2, 3, 4, 5, 5), torch.float64, seed=9, residual=False)
    assert torch.equal(run(fused(LIFConfig(), "sequence"), x, bn, None, grad_out)[0],
                       run(unfused(LIFConfig()), x, reference, None, grad_out)[0])


def saved_bytes(fn):
    return saved_for_backward(fn, min_bytes=1025)[1]  # activations; per-channel vectors aside


@pytest.mark.parametrize("backend", ["sequence", "triton"])
def test_only_the_batchnorm_input_is_kept_for_backward(backend):
    """Unfused, BN keeps its input and the LIF keeps u; folded, only the input (and the residual,
    shared with whatever produced it) is kept — u is recomputed in the backward pass."""
    x, r, _ = inputs((4, 3, 6, 5, 5))
    x.requires_grad_()
    bn = make_bn(6)
    fused_bytes = saved_bytes(lambda: LIF(backend=backend)(x, bn=bn))
    unfused_bytes = saved_bytes(lambda: LIF(backend=backend)(bn(x.flatten(0, 1)).unflatten(0, (4, 3))))
    assert fused_bytes == x.numel() * 4
    assert unfused_bytes == 2 * x.numel() * 4
    residual_bytes = saved_bytes(lambda: LIF(backend=backend)(x, bn=bn, residual=r))
    assert residual_bytes == 2 * x.numel() * 4


def test_layers_it_cannot_fold_run_unfused():
    """backend="torch", a SyncBatchNorm, an input that is not [T, B, C, H, W] with dense steps, and a
    training batch with one value per channel (BatchNorm's own error) all take the unfused path."""
    cfg = LIFConfig()
    x, r, grad_out = inputs((3, 4, 5, 6, 6))
    want = run(unfused(cfg), x, make_bn(5), r, grad_out)[0]
    assert torch.equal(run(fused(cfg, "torch"), x, make_bn(5), r, grad_out)[0], want)
    strided = x.transpose(0, 1).contiguous().transpose(0, 1)  # steps not N apart
    assert torch.equal(run(fused(cfg, "sequence"), strided, make_bn(5), r, grad_out)[0], want)
    sync = nn.SyncBatchNorm(5).eval()
    sync.load_state_dict(make_bn(5).state_dict())
    assert torch.equal(batch_norm_lif(x, sync, cfg, "sequence", r), unfused(cfg)(x, make_bn(5).eval(), r))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batch_norm_lif(torch.randn(1, 1, 5, 1, 1), make_bn(5), cfg, "sequence")


def test_torch_compile_traces_the_folded_layer_without_graph_breaks():
    cfg = LIFConfig(v_reset=None)
    x, r, grad_out = inputs((3, 2, 4, 5, 5))
    bn, reference_bn = make_bn(4), make_bn(4)
    layer = LIF(backend="triton", v_reset=None)
    compiled = torch.compile(lambda x, r: layer(x, bn=bn, residual=r) * 2.0, backend="aot_eager", fullgraph=True)
    spikes, grads = run(lambda x, _, r: compiled(x, r) / 2.0, x, bn, r, grad_out)
    want_spikes, want_grads = run(fused(cfg, "triton"), x, reference_bn, r, grad_out)
    assert torch.equal(spikes, want_spikes)
    assert_grads_close(grads, want_grads, rtol=1e-5, atol=1e-6)
    assert torch.equal(bn.running_mean, reference_bn.running_mean)
    assert bn.num_batches_tracked.item() == 1


@pytest.mark.parametrize("name", ["resnet19", "vggsnn"])
def test_models_fold_batchnorm_and_match_the_unfused_network(name):
    """A whole network: the folded layers (sequence backend, the CPU default) against the autograd
    loop with nn.BatchNorm2d, in float64 — same logits, same gradients, same running statistics."""
    from spikedistill import create_model

    torch.manual_seed(0)
    in_channels = 2 if name == "vggsnn" else 3
    if name == "resnet19":  # its block structure (identity and conv shortcuts, hidden FC), narrower
        from spikedistill.models.resnet import CifarResNet

        models = [CifarResNet((8, 16), (2, 1), 8, True, in_channels=3) for _ in range(2)]
    else:
        models = [create_model(name, spiking=True, in_channels=in_channels) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    images = torch.randn(2, in_channels, 16, 16, dtype=torch.float64)
    results = []
    for model, backend in zip(models, ("sequence", "torch")):
        model.double()
        for module in model.modules():
            if isinstance(module, LIF):
                module.backend = backend
        logits = model(images, timesteps=3)
        logits.square().sum().backward()
        results.append((logits.detach(), [p.grad for p in model.parameters()], list(model.buffers())))
    assert torch.equal(results[0][0], results[1][0])
    for got, want in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-12)
    for got, want in zip(results[0][2], results[1][2]):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("timesteps", [1, 3])
def test_a_stem_that_is_not_broadcast_folds_its_batchnorm_too(timesteps):
    """At T = 1, and on event frames, nothing is broadcast: the stem is one more folded conv → BN → LIF,
    so the SNN keeps for backward what its ReLU twin keeps on the same images (the next layer's saved
    input is the spikes, as it is the ReLU output in the ANN), and the logits are the unfolded stem's."""
    from spikedistill import create_model

    from helpers import saved_for_backward

    torch.manual_seed(0)
    snn, ann = (create_model("small_cnn", spiking=True, in_channels=3),
                create_model("small_cnn", spiking=False, in_channels=3))
    inputs = torch.randn(4, 3, 16, 16) if timesteps == 1 else torch.randn(timesteps, 4, 3, 16, 16)
    _, snn_bytes = saved_for_backward(lambda: snn(inputs, timesteps=timesteps if inputs.dim() == 4 else None))
    _, ann_bytes = saved_for_backward(lambda: ann(inputs.flatten(0, 1) if inputs.dim() == 5 else inputs))
    assert snn_bytes <= ann_bytes
    unfolded = create_model("small_cnn", spiking=True, in_channels=3)
    unfolded.load_state_dict(snn.state_dict())
    unfolded.stem_act.fold_batchnorm = False
    with torch.no_grad():
        assert torch.equal(snn.eval()(inputs), unfolded.eval()(inputs))
