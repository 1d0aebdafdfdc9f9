"""The fused Triton LIF against the torch reference, on the CPU through Triton's interpreter.

Forward spikes must be bit-identical and fp32 input gradients equal to 1e-5 relative, for every reset,
surrogate and option, T = 1..8, and sizes that leave a partial block (the block is shrunk to 64 so a
few hundred neurons span several programs).
"""

import os

os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are first imported: @triton.jit reads it

import pytest
import torch

pytest.importorskip("triton")

from spikedistill.neurons import LIFConfig, lif_multistep, lif_reference  # noqa: E402
from spikedistill.neurons.kernels import lif_fused, ops, triton_available  # noqa: E402

SURROGATE_NAMES = ("sigmoid", "atan", "triangle", "rectangular")
CONFIGS = [
    dict(),
    dict(v_reset=None),
    dict(decay=0.2, v_reset=None, threshold=0.7),
    dict(detach_reset=True),
    dict(detach_reset=True, v_reset=None),
    dict(decay_input=True, decay=0.75),
    dict(v_reset=-0.3, decay=0.9, surrogate_param=0.6),
]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(ops, "INTERPRETER_BLOCK_SIZE", 64)


def run_both(x, cfg, weights=None):
    """(spikes, grad) from the kernel and from the reference for loss = Σ spikes·weights (seeded: the
    same weights in every run, whatever ran before)."""
    if weights is None:
        weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    results = []
    for fn in (lif_fused, lif_reference):
        leaf = x.detach().clone().requires_grad_()
        spikes = fn(leaf, cfg)
        (spikes.float() * weights).sum().backward()
        results.append((spikes.detach(), leaf.grad))
    return results


def assert_parity(x, cfg, rtol=1e-5, atol=1e-6):
    (spikes, grad), (ref_spikes, ref_grad) = run_both(x, cfg)
    assert spikes.dtype == ref_spikes.dtype and spikes.shape == ref_spikes.shape
    assert torch.equal(spikes, ref_spikes)
    assert 0 < ref_spikes.float().mean() < 1  # some neurons fire, some do not
    assert grad.dtype == ref_grad.dtype
    torch.testing.assert_close(grad, ref_grad, rtol=rtol, atol=atol)
    assert ref_grad.abs().sum() > 0


def currents(*shape, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=generator) * 1.2 + 0.5).to(dtype)


def test_triton_is_available_under_the_interpreter():
    assert triton_available()


@pytest.mark.parametrize("surrogate", SURROGATE_NAMES)
@pytest.mark.parametrize("options", CONFIGS)
def test_kernel_matches_reference_for_every_option_and_surrogate(surrogate, options):
    assert_parity(currents(5, 3, 50), LIFConfig(surrogate=surrogate, **options))


@pytest.mark.parametrize("timesteps", range(1, 9))
def test_kernel_matches_reference_for_each_timestep_count(timesteps):
    cfg = LIFConfig(v_reset=None) if timesteps % 2 else LIFConfig(surrogate="atan")
    assert_parity(currents(timesteps, 2, 71, seed=timesteps), cfg)


@pytest.mark.parametrize("shape", [(4, 1, 1), (3, 63), (3, 65), (2, 3, 5, 7, 11), (4, 1000)])
def test_kernel_matches_reference_for_sizes_off_the_block_size(shape):
    assert_parity(currents(*shape), LIFConfig(surrogate="triangle"))


def test_gpu_block_size_matches_reference(monkeypatch):
    monkeypatch.setattr(ops, "INTERPRETER_BLOCK_SIZE", ops.BLOCK_SIZE)
    assert_parity(currents(4, 3, 700), LIFConfig())


@pytest.mark.parametrize("weight_seed", [0, 26, 34])
def test_kernel_gradient_is_as_close_to_float64_as_the_fp32_reference(monkeypatch, weight_seed):
    """The fp32 reference is itself ~1e-6 off the float64 gradient at this size (the hard reset's
    (v_reset − H)·gV against (1 − S)·gV: O(1) terms that cancel to |g| ≈ 0.05), so two fp32
    implementations can differ by ~2e-6 for some weight draws (seeds 26 and 34 here; 2 of 60 draws).
    What the kernel owes is to be as accurate as the reference: its error against float64 within 1.5×
    the reference's own (measured: 1.0–1.2×)."""
    monkeypatch.setattr(ops, "INTERPRETER_BLOCK_SIZE", ops.BLOCK_SIZE)
    x = currents(4, 3, 700)
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(weight_seed))
    grads = {}
    for name, fn, dtype in (("kernel", lif_fused, torch.float32), ("fp32", lif_reference, torch.float32),
                            ("fp64", lif_reference, torch.float64)):
        leaf = x.to(dtype).clone().requires_grad_()
        (fn(leaf, LIFConfig()).to(dtype) * weights.to(dtype)).sum().backward()
        grads[name] = leaf.grad.double()
    kernel_error = (grads["kernel"] - grads["fp64"]).abs().max()
    reference_error = (grads["fp32"] - grads["fp64"]).abs().max()
    assert 0 < reference_error < 2e-6
    assert kernel_error <= 1.5 * reference_error


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("options", [dict(), dict(v_reset=None, surrogate="atan")])
def test_half_precision_input_gives_identical_spikes_and_close_gradients(dtype, options):
    """State is fp32 in both; the kernel saves u in the input dtype, so gradients differ from the
    reference's (fp32 u) by about one half-precision rounding, like the reference's own output cast."""
    (spikes, grad), (ref_spikes, ref_grad) = run_both(currents(6, 4, 90, dtype=dtype), LIFConfig(**options))
    assert spikes.dtype == dtype and grad.dtype == dtype
    assert torch.equal(spikes, ref_spikes)
    scale = ref_grad.float().abs().max()
    assert (grad.float() - ref_grad.float()).abs().max() <= 0.03 * scale
    assert (grad.float() - ref_grad.float()).norm() <= 0.01 * ref_grad.float().norm()


def test_negative_zero_potential_in_fp16_is_read_back_as_no_spike():
    """u = H − V_th = −2⁻²⁶ rounds to −0.0 in fp16; the backward must still see 'no spike' at that step
    (a plain u ≥ 0 on the stored value would say 'spike' and zero the reset path's gradient)."""
    threshold = 0.125 + 2.0**-26
    cfg = LIFConfig(threshold=threshold, decay=0.8)
    x = torch.tensor([[0.125], [0.01]], dtype=torch.float16)
    (spikes, grad), (ref_spikes, ref_grad) = run_both(x, cfg, weights=torch.ones(2, 1))
    assert spikes.sum() == 0 and torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(grad, ref_grad, rtol=2e-3, atol=1e-6)


def test_input_expanded_over_time_is_read_without_copy_and_gets_summed_gradient():
    """The models broadcast the stem output with .expand over T (stride 0)."""
    stem = currents(1, 3, 4, 5, 5).requires_grad_()
    expanded = stem.expand(4, 3, 4, 5, 5)
    assert ops._step_layout(expanded) == 0
    weights = torch.randn(expanded.shape)
    grads = []
    for fn in (lif_fused, lif_reference):
        stem.grad = None
        spikes = fn(stem.expand(4, 3, 4, 5, 5), LIFConfig())
        (spikes * weights).sum().backward()
        grads.append((spikes.detach(), stem.grad.clone()))
    assert torch.equal(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-6)


def test_channels_last_input_keeps_its_memory_order():
    x = currents(3 * 2, 4, 5, 6).to(memory_format=torch.channels_last).unflatten(0, (3, 2))
    assert not x.is_contiguous()
    spikes = lif_fused(x, LIFConfig())
    assert spikes.stride() == x.stride()  # no copy in, no copy out: the next conv stays channels_last
    assert_parity(x, LIFConfig(v_reset=None))


def test_non_dense_input_is_copied_and_still_exact():
    x = currents(4, 30, 8).transpose(1, 2)[:, ::2]  # strided and transposed
    assert ops._step_layout(x) is None
    assert_parity(x, LIFConfig())


def test_only_u_in_the_input_dtype_is_saved_for_backward():
    saved = []
    x = currents(4, 2, 50, dtype=torch.bfloat16).requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        lif_fused(x, LIFConfig())
    assert [(t.dtype, t.shape) for t in saved] == [(torch.bfloat16, x.shape)]


def test_lif_multistep_dispatches_to_the_kernel():
    x = currents(3, 40)
    assert torch.equal(lif_multistep(x, LIFConfig(), backend="triton"), lif_reference(x, LIFConfig()))


def test_float64_input_falls_back_to_the_reference():
    x = currents(3, 40, dtype=torch.float64)
    assert lif_fused(x, LIFConfig()).dtype == torch.float64


def test_custom_ops_are_registered_with_fake_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    args = (0.5, 1.0, 0.0, False, False, False, 0, 4.0)
    assert hasattr(torch.ops.spikedistill, "lif_forward") and hasattr(torch.ops.spikedistill, "lif_backward")
    with FakeTensorMode():
        step = torch.empty(2, 3, 5, 5, dtype=torch.bfloat16).to(memory_format=torch.channels_last)
        x = step.unsqueeze(0).expand(3, 2, 3, 5, 5)  # stem output broadcast over T, channels_last
        spikes, u = torch.ops.spikedistill.lif_forward(x, *args)
        grad = torch.ops.spikedistill.lif_backward(spikes, u, *args)
    assert spikes.shape == u.shape == grad.shape == (3, 2, 3, 5, 5)
    assert spikes.dtype == u.dtype == grad.dtype == torch.bfloat16
    assert spikes.stride() == (150, 75, 1, 15, 3)  # steps N apart, channels_last within a step


def test_torch_compile_traces_the_op_without_graph_breaks():
    cfg = LIFConfig(v_reset=None, surrogate="atan")
    compiled = torch.compile(lambda x: lif_fused(x, cfg) * 2.0, backend="aot_eager", fullgraph=True)
    x = currents(4, 3, 20).requires_grad_()
    out = compiled(x)
    out.sum().backward()
    compiled_grad, x.grad = x.grad, None
    (lif_reference(x, cfg) * 2.0).sum().backward()
    assert torch.equal(out.detach(), lif_reference(x.detach(), cfg) * 2.0)
    torch.testing.assert_close(compiled_grad, x.grad, rtol=1e-5, atol=1e-6)


def test_a_model_gives_the_same_logits_and_gradients_with_either_backend():
    from spikedistill import create_model
    from spikedistill.neurons import LIF

    torch.manual_seed(0)
    model = create_model("small_cnn", spiking=True, in_channels=3, widths=(8, 16, 16))
    images = torch.randn(3, 3, 8, 8)
    results = []
    for backend in ("torch", "triton"):
        for module in model.modules():
            if isinstance(module, LIF):
                module.backend = backend
        model.zero_grad()
        logits = model(images, timesteps=3)
        logits.square().sum().backward()
        results.append((logits.detach(), model.stem.conv.weight.grad.clone()))
    assert torch.equal(results[0][0], results[1][0])
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-4, atol=1e-6)



def test_kernels_compile_for_hopper_without_a_gpu():
    """The interpreter skips Triton's compiler; build the kernels for sm_90 (PTX and cubin, with the
    ptxas in the triton wheel) to catch what only the compiler rejects. A fresh process, since this
    one has Triton in interpreter mode."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "compile_kernels.py"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "16-byte vectors: yes" in result.stdout and "forward FMAs: 0" in result.stdout


def test_broadcast_output_gradient_from_sum_is_handled():
    """``spikes.sum().backward()`` hands the backward a gradient expanded with stride 0 everywhere."""
    x = currents(3, 5, 20).requires_grad_()
    lif_fused(x, LIFConfig(v_reset=None)).sum().backward()
    grad, x.grad = x.grad, None
    lif_reference(x, LIFConfig(v_reset=None)).sum().backward()
    torch.testing.assert_close(grad, x.grad, rtol=1e-5, atol=1e-6)
