"""Export a trained SNN to NIR (the Neuromorphic Intermediate Representation, ``nir`` package).

What the graph holds
--------------------
* ``Input`` (C, H, W) → ``Conv2d`` / ``Affine`` with **BatchNorm folded in** (eval statistics):
  ``W' = W·γ/√(σ²+ε)``, ``b' = (b − μ)·γ/√(σ²+ε) + β`` → ``LIF`` → ... → ``AvgPool2d`` (the global
  average pool, kernel = feature map) → ``Flatten`` → ``Affine`` → ``Output`` (per-step logits, no
  output neuron). Residual additions are NIR's implicit sum of a node's incoming edges. Shapes are
  NIR's batch-free ones, so ``Flatten`` uses ``start_dim=0`` on (C, 1, 1).
* Static images use direct encoding: feed the same image at every step (our model computes the stem
  once and holds it; with a stateless stem both are the same). ``metadata["timesteps"]`` records T.

LIF convention (``metadata["lif_convention"]``)
-----------------------------------------------
Our discrete charge is ``H[t] = V[t−1] − (1−d)(V[t−1] − V_rest) + X[t]`` (``H = d·V + X`` for
V_rest = 0), fire ``S = Θ(H − V_th)``, hard reset ``V = V_reset`` where it fired. NIR's LIF is
``τ·dv/dt = (v_leak − v) + R·I``; one forward-Euler step of length dt gives
``v ← v + (dt/τ)(v_leak − v + R·I)``. Matching term by term with dt = 1:

    τ = dt / (1 − d)        (d = 0.5 → τ = 2, the τ_m of §1.4)
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
to ONNX), model families without a builder here, and what a target's reader would run differently.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..errors import SpikeDistillError
from ..models.layers import ConvBN
from ..neurons import LIF, LIFConfig
from .nir_targets import NIRTarget, avgpool_to_sumpool, check_neuron, fold_r_into_inputs, get_target, neuron_node



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
    as64 = lambda t: t.detach().cpu().double()  # noqa: E731  (fold in float64, store float32)
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


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1)


class _GraphBuilder:
    """Collects NIR nodes and edges while tracking each node's batch-free output shape."""

    def __init__(self, input_shape: tuple[int, int, int], target: NIRTarget):
        nir = _nir()
        self.nir = nir
        self.target = target
        self.nodes = {"input": nir.Input(input_type=np.array(input_shape))}
        self.edges: list[tuple[str, str]] = []
        self.shapes = {"input": tuple(input_shape)}

    def _add(self, name: str, node, sources: list[str], shape: tuple[int, ...]) -> str:
        name = name.replace(".", "_")
        if name in self.nodes:
            raise SpikeDistillError(f"NIR node '{name}' defined twice; this is a bug in the exporter")
        self.nodes[name] = node
        self.edges += [(source, name) for source in sources]
        self.shapes[name] = shape
        return name

    def conv_bn(self, name: str, block: ConvBN, source: str) -> str:
        conv = block.conv
        if not isinstance(conv.padding, tuple) or conv.padding_mode != "zeros":
            raise SpikeDistillError(f"layer '{name}' uses padding {conv.padding!r}/{conv.padding_mode}; NIR export supports numeric zero padding")
        channels, height, width = self.shapes[source]
        weight, bias = fold_batchnorm(conv, block.bn)
        out = (conv.out_channels,
               _conv_out(height, conv.kernel_size[0], conv.stride[0], conv.padding[0], conv.dilation[0]),
               _conv_out(width, conv.kernel_size[1], conv.stride[1], conv.padding[1], conv.dilation[1]))
        node = self.nir.Conv2d(input_shape=(height, width), weight=weight, stride=conv.stride, padding=conv.padding,
                               dilation=conv.dilation, groups=conv.groups, bias=bias)
        return self._add(name, node, [source], out)

    def lif(self, name: str, module: nn.Module, sources: list[str]) -> str:
        if not isinstance(module, LIF):
            raise SpikeDistillError(f"layer '{name}' is {type(module).__name__}, not an LIF; NIR export needs a spiking model "
                                    "(export ANN teachers with --format onnx)")
        shape = self.shapes[sources[0]]
        check_neuron(module.cfg, self.target, f"layer '{name}'")
        return self._add(name, neuron_node(self.nir, module.cfg, shape, self.target), sources, shape)

    def avgpool(self, name: str, kernel: tuple[int, int], source: str) -> str:
        channels, height, width = self.shapes[source]
        node = self.nir.AvgPool2d(kernel_size=np.array(kernel), stride=np.array(kernel), padding=np.array([0, 0]))
        return self._add(name, node, [source], (channels, height // kernel[0], width // kernel[1]))

    def global_avgpool(self, name: str, source: str) -> str:
        _, height, width = self.shapes[source]
        return self.avgpool(name, (height, width), source)

    def flatten(self, name: str, source: str) -> str:
        shape = self.shapes[source]
        node = self.nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
        return self._add(name, node, [source], (int(np.prod(shape)),))

    def affine(self, name: str, linear: nn.Linear, source: str) -> str:
        weight, bias = fold_batchnorm(linear, None)
        return self._add(name, self.nir.Affine(weight=weight, bias=bias), [source], (linear.out_features,))

    def output(self, source: str) -> None:
        self._add("output", self.nir.Output(output_type=np.array(self.shapes[source])), [source], self.shapes[source])

    def graph(self, metadata: dict):
        if self.target.unit_r:
            fold_r_into_inputs(self.nir, self.nodes, self.edges, self.shapes)
        if self.target.sum_pool:
            avgpool_to_sumpool(self.nir, self.nodes, self.edges)
        return self.nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata)


def _small_cnn(model, g: _GraphBuilder) -> str:
    h = g.lif("stem_act", model.stem_act, [g.conv_bn("stem", model.stem, "input")])
    h = g.lif("act1", model.act1, [g.conv_bn("conv1", model.conv1, h)])
    h = g.lif("act2", model.act2, [g.conv_bn("conv2", model.conv2, h)])
    return g.affine("fc", model.fc, g.flatten("flatten", g.global_avgpool("gap", h)))


def _cifar_resnet(model, g: _GraphBuilder) -> str:
    h = g.lif("stem_act", model.stem_act, [g.conv_bn("stem", model.stem, "input")])
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage):
            prefix = f"stages.{i}.{j}"
            out = g.lif(f"{prefix}.act1", block.act1, [g.conv_bn(f"{prefix}.branch1", block.branch1, h)])
            out = g.conv_bn(f"{prefix}.branch2", block.branch2, out)
            identity = h if block.shortcut is None else g.conv_bn(f"{prefix}.shortcut", block.shortcut, h)
            h = g.lif(f"{prefix}.act2", block.act2, [out, identity])  # NIR sums incoming edges
    h = g.flatten("flatten", g.global_avgpool("gap", h))
    if model.fc1 is not None:
        h = g.lif("fc1_act", model.fc1_act, [g.affine("fc1", model.fc1, h)])
    return g.affine("fc", model.fc, h)


def _vggsnn(model, g: _GraphBuilder) -> str:
    h = "input"
    for i, stage in enumerate(model.stages):
        for j, layer in enumerate(stage):
            name = f"stages.{i}.{j}"
            if isinstance(layer, ConvBN):
                h = g.conv_bn(name, layer, h)
            elif isinstance(layer, nn.AvgPool2d):
                h = g.avgpool(name, (layer.kernel_size, layer.kernel_size) if isinstance(layer.kernel_size, int) else layer.kernel_size, h)
            else:
                h = g.lif(name, layer, [h])
    _, height, width = g.shapes[h]
    if (height, width) != (3, 3):
        if height % 3 or width % 3:
            raise SpikeDistillError(f"vggsnn's adaptive pool to 3×3 from {height}×{width} is not a plain average pool; "
                                    "export with an input size whose last feature map is a multiple of 3 (e.g. 2,48,48)")
        h = g.avgpool("pool", (height // 3, width // 3), h)
    return g.affine("fc", model.fc, g.flatten("flatten", h))


def _builders():
    from ..models import CifarResNet, SmallConvNet, VGGSNN

    return {SmallConvNet: _small_cnn, CifarResNet: _cifar_resnet, VGGSNN: _vggsnn}


# Layers with a NIR node (or folded into one: BatchNorm into the conv, dropout is the identity at eval).
_MAPPED_LAYERS = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, LIF, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Identity,
                  nn.Dropout, nn.Flatten)


def check_exportable(model: nn.Module, target: str = "nir") -> None:
    """Pre-flight: one clear error naming the first layer that no NIR node represents, or that the
    ``target``'s reader would run differently — before any graph is built or file written."""
    chosen = get_target(target)
    if not getattr(model, "spiking", False):
        raise SpikeDistillError("NIR export needs a spiking model (this one is an ANN twin); export it with --format onnx or torchscript")
    for name, module in model.named_modules():
        if isinstance(module, nn.MaxPool2d):
            raise SpikeDistillError(f"layer '{name}' is a max-pool (MaxPool2d), which no NIR node represents; "
                                    "export with --format onnx or torchscript")
        if isinstance(module, LIF):
            check_neuron(module.cfg, chosen, f"layer '{name}'")
        elif not any(True for _ in module.children()) and not isinstance(module, _MAPPED_LAYERS):
            raise SpikeDistillError(f"layer '{name}' is {type(module).__name__}, which no NIR node represents; "
                                    "export with --format onnx or torchscript")
    if not any(isinstance(model, cls) for cls in _builders()):
        raise SpikeDistillError(f"no NIR exporter for {type(model).__name__}; supported: small_cnn, resnet18/19/34, vggsnn")


def to_nir(model: nn.Module, input_shape: tuple[int, int, int], timesteps: int | None = None, target: str = "nir"):
    """The NIR graph of ``model`` (eval-mode weights, BN folded) for one input of ``input_shape`` (C, H, W),
    written for ``target``'s reader (``nir``: the spec-plain graph at dt = 1; ``snntorch``, ``norse``:
    see :mod:`spikedistill.export.nir_targets`)."""
    check_exportable(model, target)
    chosen = get_target(target)
    builder = next(b for cls, b in _builders().items() if isinstance(model, cls))
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3 or input_shape[0] != model.in_channels:
        raise SpikeDistillError(f"input shape must be C,H,W with C = {model.in_channels} for this model (got {input_shape})")
    g = _GraphBuilder(input_shape, chosen)
    g.output(builder(model, g))
    metadata = {"producer": "spikedistill", "nir_target": chosen.name, "dt": chosen.dt,
                "lif_convention": lif_convention(chosen), "reader": chosen.load,
                "encoding": "direct: feed the input at every step; logits are per step, average them over steps",
                "batchnorm": "folded into the preceding conv/linear (eval statistics)"}
    if timesteps:
        metadata["timesteps"] = int(timesteps)
    return g.graph(metadata)


def write_nir(model: nn.Module, path, input_shape: tuple[int, int, int], timesteps: int | None = None,
              target: str = "nir"):
    """Build the graph and write it to ``path`` (HDF5, ``nir.write``); returns the graph."""
    nir = _nir()
    graph = to_nir(model, input_shape, timesteps, target)
    import io

    from ..checkpoint import atomic_write_bytes

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
