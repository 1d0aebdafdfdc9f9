"""Fixed-timestep exports: TorchScript and ONNX graphs that run the model for exactly T steps.

The exported graph takes images ``[B, C, H, W]`` (or frames ``[T, B, C, H, W]`` with ``frames=True``)
and returns per-step logits ``[T, B, K]``; average over the first k steps for the k-step answer.
The loop over T is unrolled by tracing, so T is fixed in the file.

Tracing cannot record our LIF's surrogate-gradient ``autograd.Function``, so the exported copy swaps
each LIF for :class:`InferenceLIF`: the same forward dynamics in plain tensor ops, without a backward
(tests check it spike for spike against :class:`~spikedistill.neurons.LIF`).
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import atomic_write_bytes
from ..errors import SpikeDistillError
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
        v = torch.zeros_like(x_seq[0], dtype=torch.float32) + v_rest
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frames:
            return self.model(x)
        return self.model(x, timesteps=self.timesteps if getattr(self.model, "spiking", True) else None)


def example_input(model: nn.Module, input_shape: tuple[int, int, int], timesteps: int, frames: bool, batch: int = 2) -> torch.Tensor:
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


def export_onnx(model: nn.Module, path, input_shape, timesteps: int, frames: bool = False, opset: int = 17) -> Path:
    """Export the fixed-T model to ONNX (batch size dynamic); check with ``onnx.checker``."""
    wrapper = FixedTimesteps(model, timesteps, frames)
    example = example_input(model, input_shape, timesteps, frames)
    batch_axis = 1 if frames else 0
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buffer = io.BytesIO()  # written whole, then renamed: a full disk or a crash never leaves half a file
        torch.onnx.export(wrapper, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {batch_axis: "batch"}, "logits": {1: "batch"}})
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    atomic_write_bytes(buffer.getvalue(), path)
    return Path(path)
