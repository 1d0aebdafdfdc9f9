"""LIF dynamics: the library against an explicit per-step reference and finite differences."""

import math

import pytest
import torch

from spikedistill.errors import SpikeDistillError
from spikedistill.neurons import LIF, LIFConfig, lif_multistep
from spikedistill.neurons.surrogates import SURROGATES

# Primitives g with g' = the surrogate: used to build the surrogate-relaxed dynamics in the tests.
PRIMITIVES = {
    "sigmoid": lambda x, a: torch.sigmoid(a * x),
    "atan": lambda x, a: torch.atan(math.pi / 2 * a * x) / math.pi + 0.5,
    "triangle": lambda x, g: torch.where(
        x < 0, (torch.clamp(g + x, min=0) ** 2) / (2 * g * g), 1 - (torch.clamp(g - x, min=0) ** 2) / (2 * g * g)
    ),
    "rectangular": lambda x, a: torch.clamp(x / a + 0.5, 0.0, 1.0),
}
DEFAULTS = {"sigmoid": 4.0, "atan": 2.0, "triangle": 1.0, "rectangular": 1.0}

CONFIGS = [
    dict(),
    dict(v_reset=None),
    dict(decay=0.2, v_reset=None, threshold=0.7),
    dict(detach_reset=True),
    dict(decay_input=True, decay=0.75),
    dict(v_reset=-0.3, decay=0.9),
]


def explicit_lif(x_seq, decay, threshold, v_reset, surrogate, param, detach_reset, decay_input, offsets=None):
    """Written out step by step. Spikes: Θ(h−θ) forward with g'(h−θ) backward via g(u) − g(u).detach().
    With ``offsets`` the spike is g(u) + offset_t instead: smooth dynamics for finite differences."""
    g = PRIMITIVES[surrogate]
    v_rest = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x_seq[0], v_rest)
    out = []
    for t in range(x_seq.shape[0]):
        inp = (1 - decay) * x_seq[t] if decay_input else x_seq[t]
        h = v - (1 - decay) * (v - v_rest) + inp
        u = h - threshold
        if offsets is None:
            s = (u >= 0).to(u.dtype) + (g(u, param) - g(u, param).detach())
        else:
            s = g(u, param) + offsets[t]
        r = s.detach() if detach_reset else s
        v = h - threshold * r if v_reset is None else h * (1 - r) + v_reset * r
        out.append(s)
    return torch.stack(out)


def _full(cfg):
    c = LIFConfig(**cfg)
    return c, dict(decay=c.decay, threshold=c.threshold, v_reset=c.v_reset, surrogate=c.surrogate,
                   param=c.surrogate_param, detach_reset=c.detach_reset, decay_input=c.decay_input)


BACKENDS = ("torch", "sequence")  # the autograd loop, and the one-node recurrence that saves only u


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("surrogate", sorted(DEFAULTS))
@pytest.mark.parametrize("cfg", CONFIGS + [dict(detach_reset=True, v_reset=None)])
def test_lif_matches_explicit_per_step_reference(surrogate, cfg, backend):
    torch.manual_seed(0)
    cfg = dict(cfg, surrogate=surrogate)
    lif_cfg, explicit_args = _full(cfg)
    x = (torch.randn(6, 3, 5, dtype=torch.float64) * 1.2 + 0.5).requires_grad_()
    weights = torch.randn(6, 3, 5, dtype=torch.float64)
    ours = lif_multistep(x, lif_cfg, backend=backend)
    (ours * weights).sum().backward()
    grad_ours = x.grad.clone()
    x.grad = None
    ref = explicit_lif(x, **explicit_args)
    (ref * weights).sum().backward()
    assert torch.equal(ours, ref.detach())
    assert ours.sum() > 0 and ours.sum() < ours.numel()  # some neurons fire, some do not
    torch.testing.assert_close(grad_ours, x.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("surrogate", sorted(DEFAULTS))
@pytest.mark.parametrize("cfg", [dict(), dict(v_reset=None), dict(decay_input=True, decay=0.6)])
def test_lif_gradient_equals_finite_differences_of_relaxed_dynamics(surrogate, cfg, backend):
    """The surrogate gradient is the exact gradient of the relaxed dynamics S = g(u) + c_t, where the
    constants c_t = Θ(u*) − g(u*) pin the relaxed trajectory to the spiking one at the base point."""
    torch.manual_seed(1)
    lif_cfg, args = _full(dict(cfg, surrogate=surrogate))
    x0 = torch.randn(5, 7, dtype=torch.float64) + 0.6
    weights = torch.randn(5, 7, dtype=torch.float64)
    x = x0.clone().requires_grad_()
    (lif_multistep(x, lif_cfg, backend=backend) * weights).sum().backward()

    # Record the base trajectory's offsets, step by step, from the explicit relaxed dynamics.
    g = PRIMITIVES[surrogate]
    offsets, v_rest = [], 0.0 if args["v_reset"] is None else args["v_reset"]
    v = torch.full_like(x0[0], v_rest)
    for t in range(x0.shape[0]):
        inp = (1 - args["decay"]) * x0[t] if args["decay_input"] else x0[t]
        h = v - (1 - args["decay"]) * (v - v_rest) + inp
        u = h - args["threshold"]
        s = (u >= 0).double()
        offsets.append(s - g(u, args["param"]))
        v = h - args["threshold"] * s if args["v_reset"] is None else h * (1 - s) + args["v_reset"] * s

    def relaxed(xv):
        return (explicit_lif(xv, offsets=offsets, **args) * weights).sum()

    eps = 1e-6
    fd = torch.zeros_like(x0)
    for i in range(x0.numel()):
        d = torch.zeros_like(x0).view(-1)
        d[i] = eps
        d = d.view_as(x0)
        fd.view(-1)[i] = (relaxed(x0 + d) - relaxed(x0 - d)) / (2 * eps)
    torch.testing.assert_close(x.grad, fd, rtol=1e-5, atol=1e-7)
    assert x.grad.abs().sum() > 0


def test_lif_has_no_state_between_calls():
    lif = LIF(decay=0.5)
    x = torch.rand(4, 2, 3) * 2
    assert torch.equal(lif(x), lif(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_lif_half_precision_input_keeps_fp32_state(backend):
    torch.manual_seed(0)
    x = (torch.randn(4, 64) + 0.8).bfloat16().requires_grad_()
    ours = lif_multistep(x, LIFConfig(), backend=backend)
    ref = lif_multistep(x.detach().float(), LIFConfig(), backend="torch")
    assert ours.dtype == torch.bfloat16
    assert torch.equal(ours.float(), ref)
    ours.sum().backward()
    assert x.grad.dtype == torch.bfloat16


def test_sequence_backend_is_the_default_off_cuda_and_keeps_one_tensor():
    """On a CPU ``auto`` runs the recurrence that saves u alone: one [T, ...] fp32 tensor for backward,
    where the autograd loop keeps three per step (u, H and 1 − S for a hard reset)."""
    from spikedistill.neurons.dynamics import lif_reference

    from helpers import saved_for_backward as saved_bytes

    x = (torch.randn(6, 32, 16) + 0.5).requires_grad_()

    auto, auto_bytes = saved_bytes(lambda: lif_multistep(x, LIFConfig(), backend="auto"))
    ref, ref_bytes = saved_bytes(lambda: lif_reference(x, LIFConfig()))
    assert torch.equal(auto, ref)
    assert auto_bytes == x.numel() * 4               # u, fp32
    assert ref_bytes >= 3 * x.numel() * 4            # u, H and 1 − S per step
    with torch.no_grad():                            # evaluation keeps nothing
        _, eval_bytes = saved_bytes(lambda: lif_multistep(x, LIFConfig()))
    assert eval_bytes == 0


@pytest.mark.parametrize("cfg", [dict(), dict(v_reset=None, surrogate="atan"), dict(decay_input=True, decay=0.6)])
def test_input_expanded_over_time_keeps_one_step_and_recomputes_u(cfg):
    """A static-image stem broadcasts one step over T (stride 0): the sequence backend keeps that step,
    not T steps of u, and recomputes u in backward — the same spikes and gradients as the reference."""
    from helpers import saved_for_backward

    cfg = LIFConfig(**cfg)
    step = (torch.randn(3, 8, 5, dtype=torch.float64) + 0.8).requires_grad_()
    weights = torch.randn(5, 3, 8, 5, dtype=torch.float64)
    grads = []
    for backend in ("sequence", "torch"):
        step.grad = None
        spikes, kept = saved_for_backward(lambda: lif_multistep(step.expand(5, 3, 8, 5), cfg, backend=backend),
                                          storage=True)
        (spikes * weights).sum().backward()
        grads.append((spikes.detach(), step.grad.clone(), kept))
    (spikes, grad, kept), (ref_spikes, ref_grad, _) = grads
    assert torch.equal(spikes, ref_spikes) and 0 < spikes.mean() < 1
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-12)
    assert kept == step.numel() * 8                   # the one step (fp64), not 5 steps of u


def test_detach_reset_changes_the_gradient():
    torch.manual_seed(0)
    x = (torch.randn(5, 20, dtype=torch.float64) + 0.8).requires_grad_()
    grads = []
    for detach in (False, True):
        x.grad = None
        lif_multistep(x, LIFConfig(detach_reset=detach)).sum().backward()
        grads.append(x.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_surrogate_values_at_zero():
    x = torch.zeros(1)
    expected = {"sigmoid": 1.0, "atan": 1.0, "triangle": 1.0, "rectangular": 1.0}
    for name, value in expected.items():
        s = SURROGATES.get(name)
        assert s.grad(x, s.default_param).item() == pytest.approx(value)


def test_unknown_surrogate_lists_known_names():
    with pytest.raises(SpikeDistillError,
                       match=r"unknown surrogate 'sigmod'; did you mean 'sigmoid'\? known: sigmoid, atan"):
        LIFConfig(surrogate="sigmod")


@pytest.mark.parametrize("bad", [dict(decay=0.0), dict(decay=1.5), dict(threshold=-1.0), dict(surrogate_param=0.0)])
def test_bad_neuron_options_are_rejected(bad):
    with pytest.raises(SpikeDistillError):
        LIFConfig(**bad)
