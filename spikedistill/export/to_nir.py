"""Export a trained SNN to NIR (the Neuromorphic Intermediate Representation, ``nir`` package).

What the graph holds
--------------------
* The graph is read from one forward pass of the model (:mod:`spikedistill.export.nir_graph`), so any
  model of these layers exports, ours or a user's: ``Input`` (C, H, W) → ``Conv2d`` / ``Affine`` with
  **BatchNorm folded in** (eval statistics): ``W' = W·γ/√(σ²+ε)``, ``b' = (b − μ)·γ/√(σ²+ε) + β`` →
  ``LIF`` → ... → ``AvgPool2d`` (average pools, and the global average pool ``x.mean((-2, -1))``) →
  ``Flatten`` → ``Affine`` → ``Output`` (per-step logits, no output neuron). Nodes are named after the
  model's layers (``conv1.conv`` → ``conv1_conv``). Residual additions are NIR's implicit sum of a
  node's incoming edges. Shapes are NIR's batch-free ones, so ``Flatten`` uses ``start_dim=0``.
* Static images use direct encoding: feed the same image at every step (our model computes the stem
  once and holds it; with a stateless stem both are the same). ``metadata["timesteps"]`` records T.

LIF convention (``metadata["lif_convention"]``)
-----------------------------------------------
Our discrete charge is ``H[t] = V[t−1] − (1−d)(V[t−1] − V_rest) + X[t]`` (``H = d·V + X`` for
V_rest = 0), fire ``S = Θ(H − V_th)``, hard reset ``V = V_reset`` where it fired. NIR's LIF is
``τ·dv/dt = (v_leak − v) + R·I``; one forward-Euler step of length dt gives
``v ← v + (dt/τ)(v_leak − v + R·I)``. Matching term by term with dt = 1:

    τ = dt / (1 − d)        (d = 0.5 → τ = 2, the τ_m of the full-range paper's neuron)
    R = τ / dt = 1/(1 − d)  (R = 1 when decay_input=True, whose input term is (1 − d)·X)
    v_leak = v_reset = V_reset,  v_threshold = V_th

``dt`` is stored in ``metadata["dt"]``; a simulator must integrate with forward Euler at that dt.
d = 1 (no leak) becomes NIR's ``IF`` with R = 1. NIR writes the spike condition as ``v > v_th``; ours
fires at equality too (a measure-zero difference for real-valued currents).

Targets: ``target="nir"`` writes the above at dt = 1. ``snntorch`` and ``norse`` write the same
network in the time unit and form their importers run correctly (dt = 1e-4 and 1e-3, R folded into
the weights, sum pools; :mod:`spikedistill.export.nir_targets`).

Refused before anything is built (:func:`check_exportable`), naming the layer: soft reset (NIR neurons
reset to a value), max-pool and any other layer without a NIR node, ANN twins (no neurons; export them
to ONNX), and what a target's reader would run differently; while tracing, naming the operation: any
tensor operation between layers that no NIR node computes (``torch.relu``, a mean over time, ...).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import SpikeDistillError
from ..neurons import LIF, LIFConfig
from .nir_graph import MAPPED_LAYERS, trace_graph
from .nir_targets import (
    NIRTarget,
    avgpool_to_sumpool,
    check_neuron,
    fold_r_into_inputs,
    get_target,
    neuron_node,
)


def lif_convention(target: NIRTarget) -> str:
    """The neuron convention written into the graph's metadata."""
    r = ("r = 1, R = 1/(1-decay) folded into every incoming edge's weights" if target.unit_r
         else "r = 1/(1-decay) (1 if decay_input)")
    return (f"forward Euler, dt={target.dt:g}: v <- v + (dt/tau)*(v_leak - v + r*I); tau = dt/(1-decay), {r}, "
            "v_leak = v_reset; spike when v >= v_threshold, then v = v_reset")


def _nir():
    try:
        import nir
    except ImportError:
        raise SpikeDistillError("NIR export needs the 'nir' package; pip install 'spikedistill[export]'") from None
    return nir


def fold_batchnorm(layer: nn.Module, bn: nn.Module | None) -> tuple[np.ndarray, np.ndarray]:
    """Weight and bias of ``layer`` (conv or linear) with the eval-mode ``bn`` after it folded in."""
    as64 = lambda t: t.detach().cpu().double()
    weight = as64(layer.weight)
    bias = as64(layer.bias) if layer.bias is not None else torch.zeros(weight.shape[0], dtype=torch.float64)
    if bn is not None:
        scale = as64(bn.weight) / torch.sqrt(as64(bn.running_var) + bn.eps)
        weight = weight * scale.view(-1, *([1] * (weight.dim() - 1)))
        bias = (bias - as64(bn.running_mean)) * scale + as64(bn.bias)
    return weight.float().numpy(), bias.float().numpy()


def lif_node(cfg: LIFConfig, shape: tuple[int, ...], where: str = "LIF", target: str = "nir"):
    """The NIR neuron equivalent to one of our LIF layers for ``target``'s reader (module docstring)."""
    chosen = get_target(target)
    check_neuron(cfg, chosen, where)
    return neuron_node(_nir(), cfg, shape, chosen)


def check_exportable(model: nn.Module, target: str = "nir") -> None:
    """Pre-flight: one clear error naming the first layer that no NIR node represents, or that the
    ``target``'s reader would run differently — before any graph is built or file written."""
    chosen = get_target(target)
    if getattr(model, "spiking", None) is False or not any(isinstance(m, LIF) for m in model.modules()):
        raise SpikeDistillError("NIR export needs a spiking model (this one is an ANN twin, or has no LIF layer); "
                                "export it with --format onnx or torchscript")
    for name, module in model.named_modules():
        if isinstance(module, nn.MaxPool2d):
            raise SpikeDistillError(f"layer '{name}' is a max-pool (MaxPool2d), which no NIR node represents; "
                                    "export with --format onnx or torchscript")
        if isinstance(module, LIF):
            check_neuron(module.cfg, chosen, f"layer '{name}'")
        elif not any(True for _ in module.children()) and not isinstance(module, MAPPED_LAYERS):
            raise SpikeDistillError(f"layer '{name}' is {type(module).__name__}, which no NIR node represents; "
                                    "export with --format onnx or torchscript")


def to_nir(model: nn.Module, input_shape: tuple[int, int, int], timesteps: int | None = None, target: str = "nir"):
    """The NIR graph of ``model`` (eval-mode weights, BN folded) for one input of ``input_shape`` (C, H, W),
    written for ``target``'s reader (``nir``: the spec-plain graph at dt = 1; ``snntorch``, ``norse``:
    see :mod:`spikedistill.export.nir_targets`)."""
    check_exportable(model, target)
    chosen = get_target(target)
    input_shape = tuple(int(s) for s in input_shape)
    in_channels = getattr(model, "in_channels", None)
    if len(input_shape) != 3 or (in_channels is not None and input_shape[0] != in_channels):
        wanted = f" with C = {in_channels}" if in_channels is not None else ""
        raise SpikeDistillError(f"input shape must be C,H,W{wanted} for this model (got {input_shape})")
    nir = _nir()
    nodes, edges, shapes = trace_graph(model, input_shape, chosen, fold_batchnorm, nir)
    if chosen.unit_r:
        fold_r_into_inputs(nir, nodes, edges, shapes)
    if chosen.sum_pool:
        avgpool_to_sumpool(nir, nodes, edges)
    metadata = {"producer": "spikedistill", "nir_target": chosen.name, "dt": chosen.dt,
                "lif_convention": lif_convention(chosen), "reader": chosen.load,
                "encoding": "direct: feed the input at every step; logits are per step, average them over steps",
                "batchnorm": "folded into the preceding conv/linear (eval statistics)"}
    if timesteps:
        metadata["timesteps"] = int(timesteps)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(model: nn.Module, path, input_shape: tuple[int, int, int], timesteps: int | None = None,
              target: str = "nir"):
    """Build the graph and write it to ``path`` (HDF5, ``nir.write``); returns the graph."""
    nir = _nir()
    graph = to_nir(model, input_shape, timesteps, target)
    import io

    from ..io import atomic_write_bytes

    buffer = io.BytesIO()  # written whole, then renamed: a full disk or a crash never leaves half a file
    nir.write(buffer, graph)
    _omit_default_v_reset(buffer)
    atomic_write_bytes(buffer.getvalue(), path)
    return graph


def _omit_default_v_reset(path) -> None:
    """Drop each neuron's all-zero ``v_reset`` from the file: nir ≤ 1.0.5 (which sinabs 3.1 pins) has
    no such field and refuses a file that has it, and nir ≥ 1.0.6 reads a missing one as 0."""
    import h5py  # nir's own dependency

    def visit(group) -> None:
        for key in list(group.keys()):
            item = group[key]
            if not isinstance(item, h5py.Group):
                continue
            kind = item["type"][()] if "type" in item else b""
            if kind in (b"LIF", b"IF", b"CubaLIF") and "v_reset" in item and not np.any(item["v_reset"][()]):
                del item["v_reset"]
            visit(item)

    with h5py.File(path if hasattr(path, "read") else str(path), "r+") as file:
        visit(file)
