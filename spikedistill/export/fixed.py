"""Fixed-timestep exports: TorchScript and ONNX graphs that run the model for exactly T steps.

The exported graph takes images ``[B, C, H, W]`` (or frames ``[T, B, C, H, W]`` with ``frames=True``)
and returns per-step logits ``[T, B, K]``; average over the first k steps for the k-step answer.
The loop over T is unrolled by tracing, so T is fixed in the file.

Tracing cannot record our LIF's surrogate-gradient ``autograd.Function``, so the exported copy swaps
each LIF for :class:`InferenceLIF`: the same forward dynamics in plain tensor ops, without a backward
(tests check it spike for spike against :class:`~spikedistill.neurons.LIF`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import SpikeDistillError
from ..io import atomic_write_bytes
from ..neurons import LIF, LIFConfig


class InferenceLIF(nn.Module):
    """Forward-only LIF for export: ``H = V − (1−d)(V − V_rest) + X``; ``S = [H ≥ V_th]``; reset."""

    def __init__(self, cfg: LIFConfig):
        super().__init__()
        self.decay = float(cfg.decay)
        self.threshold = float(cfg.threshold)
        self.soft_reset = cfg.soft_reset
        self.v_reset = 0.0 if cfg.soft_reset else float(cfg.v_reset)
        self.decay_input = bool(cfg.decay_input)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        leak = 1.0 - self.decay
        v_rest = self.v_reset
        v = v_rest  # a number, not zeros_like(x[0]): a traced zeros_like fixes the batch size in the file
        spikes = []
        for t in range(x_seq.shape[0]):
            x = x_seq[t].float()
            h = v - leak * (v - v_rest) + (leak * x if self.decay_input else x)
            s = (h >= self.threshold).to(h.dtype)
            v = h - self.threshold * s if self.soft_reset else h * (1.0 - s) + self.v_reset * s
            spikes.append(s)
        return torch.stack(spikes).to(x_seq.dtype)


def _swap_lif(model: nn.Module) -> nn.Module:
    for module in list(model.modules()):
        for name, child in list(module._modules.items()):
            if isinstance(child, LIF):
                module._modules[name] = InferenceLIF(child.cfg)
    return model


class FixedTimesteps(nn.Module):
    """``model`` frozen to ``timesteps`` steps, in eval mode, with export-friendly neurons."""

    def __init__(self, model: nn.Module, timesteps: int, frames: bool = False):
        super().__init__()
        if not isinstance(timesteps, int) or timesteps < 1:
            raise SpikeDistillError(f"--timesteps must be a positive integer for a fixed-T export (got {timesteps!r})")
        self.model = _swap_lif(copy.deepcopy(model).eval())
        self.timesteps = timesteps
        self.frames = frames
        self.eval()  # the exporters restore the mode they found: eval, so BatchNorm keeps its running statistics

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frames:
            return self.model(x)
        return self.model(x, timesteps=self.timesteps if getattr(self.model, "spiking", True) else None)


def example_input(model: nn.Module, input_shape: tuple[int, int, int], timesteps: int, frames: bool,
                  batch: int = 2) -> torch.Tensor:
    device = next(model.parameters()).device
    shape = ((timesteps,) if frames else ()) + (batch,) + tuple(input_shape)
    return torch.randn(shape, device=device)


def export_torchscript(model: nn.Module, path, input_shape, timesteps: int, frames: bool = False) -> Path:
    """Trace the fixed-T model and save it with ``torch.jit.save``; load with ``torch.jit.load``."""
    wrapper = FixedTimesteps(model, timesteps, frames)
    example = example_input(model, input_shape, timesteps, frames)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, (example,), check_trace=False)
        buffer = io.BytesIO()  # written whole, then renamed: a full disk or a crash never leaves half a file
        torch.jit.save(traced, buffer)
    atomic_write_bytes(buffer.getvalue(), path)
    return Path(path)


EXAMPLE_BATCH, CHECK_BATCH = 2, 3  # the batch size the graph is traced at, and the second one it is run at


def export_onnx(model: nn.Module, path, input_shape, timesteps: int, frames: bool = False, opset: int = 17) -> Path:
    """Export the fixed-T model to ONNX (batch size dynamic), check it with ``onnx.checker``, then run it
    with onnxruntime at a second batch size against the model; a file that disagrees is removed and
    refused with the cause (:func:`check_onnx_batch`)."""
    wrapper = FixedTimesteps(model, timesteps, frames)
    example = example_input(model, input_shape, timesteps, frames, batch=EXAMPLE_BATCH)
    batch_axis = 1 if frames else 0
    with torch.no_grad(), warnings.catch_warnings(), _unflatten_as_reshape():
        warnings.simplefilter("ignore")
        buffer = io.BytesIO()  # written whole, then renamed: a full disk or a crash never leaves half a file
        torch.onnx.export(wrapper, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {batch_axis: "batch"}, "logits": {1: "batch"}})
    try:
        import onnx
    except ImportError:
        onnx = None
    model_bytes = buffer.getvalue()
    if onnx is not None:
        onnx.checker.check_model(onnx.load_from_string(model_bytes))
    # run at a second batch size before anything is written: a refused file never reaches the disk
    check_onnx_batch(wrapper, model_bytes, example_input(model, input_shape, timesteps, frames, batch=CHECK_BATCH))
    atomic_write_bytes(model_bytes, path)
    return Path(path)


@contextlib.contextmanager
def _unflatten_as_reshape():
    """While tracing for ONNX, ``Tensor.unflatten`` as the equal ``reshape``: torch's ONNX tracer records an
    unflatten's output with fixed sizes, so a shape read from it later (``x.shape[:2]`` in the next
    layer, as SpikingJelly's multi-step layers do) bakes the example's batch size into the file."""
    original = torch.Tensor.unflatten

    def unflatten(self, dim, sizes):
        if isinstance(dim, str):  # named dimensions: torch's own
            return original(self, dim, sizes)
        dim = dim % self.dim()
        return self.reshape(tuple(self.shape[:dim]) + tuple(sizes) + tuple(self.shape[dim + 1:]))

    torch.Tensor.unflatten = unflatten
    try:
        yield
    finally:
        torch.Tensor.unflatten = original


def check_onnx_batch(wrapper: nn.Module, model, inputs: torch.Tensor) -> None:
    """Run the ONNX model (a file's path or its bytes) on ``inputs`` (another batch size than the traced example)
    with onnxruntime and refuse, in one line, a file that fails or whose logits differ from ``wrapper``'s: a model
    that turns a size into a Python number or builds a tensor of a fixed shape while traced runs only at the
    example's batch size. Without onnxruntime: a warning, and no check."""
    try:
        import onnxruntime
    except ImportError:
        warnings.warn("onnxruntime is not installed, so the ONNX file was not run at a second batch size; "
                      "pip install onnxruntime to check it", stacklevel=3)
        return
    batch = inputs.shape[1] if inputs.dim() == 5 and getattr(wrapper, "frames", False) else inputs.shape[0]
    with torch.no_grad():
        expected = wrapper(inputs).float().cpu().numpy()
    try:
        source = model if isinstance(model, bytes) else str(model)
        session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {"input": inputs.cpu().numpy()})
    except Exception as exc:  # noqa: BLE001  (onnxruntime's Fail, InvalidArgument... derive from Exception only)
        cause = str(exc).strip().splitlines()[-1][-300:] if str(exc).strip() else type(exc).__name__
        raise SpikeDistillError(
            f"the ONNX file runs at batch size {EXAMPLE_BATCH} only (at batch {batch} onnxruntime fails: {cause}); "
            "the model fixes the batch size while traced (a size turned into a Python number, or a tensor built "
            "with a fixed shape): build shapes from the input, e.g. x.unflatten(0, (timesteps, -1)), "
            "torch.zeros_like") from None
    # a wrong graph is off by the logits' own size; a spike that rounding flips moves them far less
    scale = 1.0 + float(abs(expected).max()) if expected.size else 1.0
    if got.shape != expected.shape or float(abs(got - expected).max()) > 1e-2 * scale:
        difference = (f"shape {tuple(got.shape)} instead of {tuple(expected.shape)}" if got.shape != expected.shape
                      else f"logits differ by up to {float(abs(got - expected).max()):.3g}")
        raise SpikeDistillError(
            f"the ONNX file disagrees with the model at batch size {batch} ({difference}); the model fixes the batch "
            "size while traced (a size turned into a Python number, or a tensor built with a fixed shape): build "
            "shapes from the input, e.g. x.unflatten(0, (timesteps, -1)), torch.zeros_like")
