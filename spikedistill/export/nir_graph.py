"""The NIR graph of any model, read from one traced forward pass: :func:`trace_graph`.

The model runs once on a small example (``TRACE_TIMESTEPS`` steps, batch ``TRACE_BATCH``) while forward
hooks on its layers and a ``TorchFunctionMode`` on the tensor operations between them follow every
tensor that derives from the input. What each one is, in NIR terms, is the sum of some nodes' outputs
(NIR sums a node's incoming edges) and a batch-free sample shape:

* ``Conv2d`` / ``Linear`` → ``Conv2d`` / ``Affine`` node; a ``BatchNorm`` right after one (as a layer,
  or handed to our LIF to fold) is folded into it (eval statistics).
* our ``LIF`` → ``LIF`` / ``IF`` node (its ``residual`` input is one more incoming edge).
* ``AvgPool2d``, ``AdaptiveAvgPool2d`` to a divisor of the map, and ``x.mean((-2, -1))`` (a global average
  pool) → ``AvgPool2d`` (+ ``Flatten``); ``nn.Flatten`` and ``x.flatten(2)`` of a sample → ``Flatten``.
* ``a + b`` → both sets of edges (NIR's implicit sum); reshapes that only move time and batch
  (``flatten(0, 1)``, ``unflatten``, ``view``, ``expand``/``repeat`` of a static input over steps) → the
  same value; ``Identity`` and ``Dropout`` (eval) → the same value.

Anything else applied to a traced tensor (another layer type, ``torch.relu``, an average over time, a
per-step loop that indexes time) is refused in one line naming it. Time is told apart from the batch by
size: the trace runs with T = 2 and B = 3, so a tensor's leading dims are ``[T, B]``, ``[T·B]`` or ``[B]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import SpikeDistillError
from ..neurons import LIF
from .nir_targets import NIRTarget, check_neuron, neuron_node

TRACE_TIMESTEPS, TRACE_BATCH = 2, 3

_PASS_THROUGH = {"view", "reshape", "flatten", "unflatten", "contiguous", "expand", "expand_as", "unsqueeze",
                 "repeat", "clone", "float", "to", "type_as", "detach", "_unsafe_view"}
_ADD = {"add", "__add__", "__radd__", "add_", "__iadd__"}
_SAME_VALUE_LAYERS = (nn.Identity, nn.Dropout)
MAPPED_LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, LIF, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                 nn.Flatten) + _SAME_VALUE_LAYERS


@dataclass
class _Value:
    """A traced tensor in graph terms: the sum of ``sources``' outputs, one sample of ``shape``."""

    sources: tuple[str, ...]
    shape: tuple[int, ...]


@dataclass
class _Node:
    kind: str  # input, conv, affine (a BatchNorm after either is folded in: bn), lif, avgpool, flatten, output
    shape: tuple[int, ...]  # batch-free output shape
    module: nn.Module | None = None
    bn: nn.Module | None = None
    options: dict = field(default_factory=dict)


def _sample_shape(tensor: torch.Tensor) -> tuple[int, ...] | None:
    """The batch-free shape of a traced tensor laid out [T, B, ...], [1, B, ...], [T·B, ...] or [B, ...]."""
    shape = tuple(tensor.shape)
    if len(shape) >= 2 and shape[1] == TRACE_BATCH and shape[0] in (TRACE_TIMESTEPS, 1):
        return shape[2:]
    if shape and shape[0] in (TRACE_TIMESTEPS * TRACE_BATCH, TRACE_BATCH):
        return shape[1:]
    return None


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(int(v) for v in value)


class _Tracer(TorchFunctionMode):
    """Runs inside the model's forward: layer hooks add nodes, tensor operations between layers are
    followed (same value, a sum, a pool or flatten node) or refused."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...]):
        super().__init__()
        self.nodes: dict[str, _Node] = {"input": _Node("input", tuple(input_shape))}
        self.edges: list[tuple[str, str]] = []
        self.values: dict[int, _Value] = {}
        self.alive: list[torch.Tensor] = []  # every traced tensor stays referenced, so ids stay unique
        self.folded: dict[int, str] = {}  # tensors whose BatchNorm was folded into their conv: reading them is wrong
        self.inside = 0  # depth of mapped layers being run: what happens inside them is theirs
        self.hooks = []
        for name, module in model.named_modules():
            if isinstance(module, MAPPED_LAYERS):
                self.hooks.append(module.register_forward_pre_hook(self._enter))
                self.hooks.append(module.register_forward_hook(
                    lambda m, args, kwargs, out, n=name: self._layer(n, m, args, kwargs, out), with_kwargs=True))

    # --- bookkeeping -------------------------------------------------------------------------------
    def track(self, tensor: torch.Tensor, value: _Value) -> None:
        self.values[id(tensor)] = value
        self.alive.append(tensor)

    def value(self, tensor, where: str) -> _Value | None:
        if not isinstance(tensor, torch.Tensor):
            return None
        if id(tensor) in self.folded:
            raise SpikeDistillError(f"{where} reads the output of '{self.folded[id(tensor)]}' before its BatchNorm, "
                                    "which is folded into it in NIR; export with --format onnx or torchscript")
        return self.values.get(id(tensor))

    def add(self, name: str, node: _Node, sources: tuple[str, ...]) -> str:
        name = name.replace(".", "_") or "model"
        unique, count = name, 1
        while unique in self.nodes:
            count += 1
            unique = f"{name}_{count}"
        self.nodes[unique] = node
        self.edges += [(source, unique) for source in sources]
        return unique

    def sample(self, tensor: torch.Tensor, where: str) -> tuple[int, ...]:
        shape = _sample_shape(tensor)
        if shape is None:
            raise SpikeDistillError(f"{where} gives a tensor of shape {tuple(tensor.shape)} whose leading dims are not "
                                    "time and batch ([T, B, ...] or [T·B, ...]); NIR export follows per-sample tensors "
                                    "only")
        return shape

    def fold_batchnorm(self, value: _Value, bn: nn.Module, tensor: torch.Tensor, where: str) -> None:
        source = value.sources[0] if len(value.sources) == 1 else None
        node = self.nodes.get(source)
        if node is None or node.kind not in ("conv", "affine") or node.bn is not None or \
                any(src == source for src, _ in self.edges):
            raise SpikeDistillError(f"{where} is a BatchNorm that does not directly follow a conv or linear layer; "
                                    "NIR has no BatchNorm node to fold it into")
        node.bn = bn
        self.folded[id(tensor)] = source

    # --- layers ------------------------------------------------------------------------------------
    def _enter(self, module, args):
        self.inside += 1

    def _layer(self, name: str, module: nn.Module, args, kwargs, out):
        self.inside -= 1
        if self.inside:
            return  # called by another mapped layer (a BatchNorm inside our LIF): part of that layer
        where = f"layer '{name}'"
        x = args[0] if args else kwargs.get("x_seq", kwargs.get("input"))
        value = self.value(x, where)
        if value is None or not isinstance(out, torch.Tensor):
            return
        if isinstance(module, _SAME_VALUE_LAYERS):
            self.track(out, value)
            return
        shape = self.sample(out, where)
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            self.fold_batchnorm(value, module, x, where)
            self.track(out, value)
            return
        if isinstance(module, LIF):
            bn = kwargs.get("bn", args[1] if len(args) > 1 else None)
            residual = kwargs.get("residual", args[2] if len(args) > 2 else None)
            if bn is not None:
                self.fold_batchnorm(value, bn, x, where)
            sources = value.sources
            if residual is not None:
                sources = sources + self.value(residual, where).sources
            self.track(out, _Value((self.add(name, _Node("lif", shape, module), sources),), shape))
            return
        if isinstance(module, nn.Conv2d):
            if not isinstance(module.padding, tuple) or module.padding_mode != "zeros":
                raise SpikeDistillError(f"{where} uses padding {module.padding!r}/{module.padding_mode}; NIR export "
                                        "supports numeric zero padding")
            node = _Node("conv", shape, module, options={"input_hw": value.shape[1:]})
        elif isinstance(module, nn.Linear):
            if len(value.shape) != 1:
                raise SpikeDistillError(f"{where} (Linear) reads a sample of shape {value.shape}; flatten it first")
            node = _Node("affine", shape, module)
        elif isinstance(module, nn.Flatten):
            self.track(out, self.flatten(name, value, shape) if shape != value.shape else value)
            return
        else:  # average pools
            node = _Node("avgpool", shape, options=self.pool_options(module, value.shape, shape, where))
        self.track(out, _Value((self.add(name, node, value.sources),), shape))

    def pool_options(self, module, in_shape, out_shape, where) -> dict:
        if isinstance(module, nn.AdaptiveAvgPool2d):
            (height, width), (out_h, out_w) = in_shape[1:], out_shape[1:]
            if height % out_h or width % out_w:
                raise SpikeDistillError(f"{where} pools adaptively from {height}×{width} to {out_h}×{out_w}, which is "
                                        "not a plain average pool; export with an input size whose map there is a "
                                        f"multiple of {out_h}×{out_w}")
            kernel = (height // out_h, width // out_w)
            return {"kernel": kernel, "stride": kernel}
        if any(_pair(module.padding)) or module.ceil_mode:
            raise SpikeDistillError(f"{where} is an average pool with padding or ceil_mode, which NIR's AvgPool2d "
                                    "does not express; use padding=0")
        kernel = _pair(module.kernel_size)
        return {"kernel": kernel, "stride": _pair(module.stride or kernel)}

    def flatten(self, name: str, value: _Value, shape) -> _Value:
        if len(shape) != 1 or math.prod(shape) != math.prod(value.shape):
            raise SpikeDistillError(f"'{name}' reshapes a sample from {value.shape} to {shape}; NIR export "
                                    "follows reshapes of time and batch and flattening a sample only")
        return _Value((self.add(name, _Node("flatten", shape, options={"input": value.shape}), value.sources),), shape)

    # --- tensor operations between layers ----------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.inside or not isinstance(out, torch.Tensor):
            return out
        name = getattr(func, "__name__", str(func))
        operands = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)]
        traced = [self.value(a, f"'{name}'") for a in operands]
        if not any(v is not None for v in traced):
            return out
        first = traced[0]
        if name in _PASS_THROUGH and first is not None:
            shape = self.sample(out, f"'{name}'")
            self.track(out, first if shape == first.shape else self.flatten("flatten", first, shape))
        elif name in _ADD and len(operands) == 2 and None not in traced and kwargs.get("alpha", 1) == 1:
            if traced[0].shape != traced[1].shape:
                raise SpikeDistillError(f"'{name}' adds samples of shapes {traced[0].shape} and {traced[1].shape}; "
                                        "NIR sums equal shapes only")
            self.track(out, _Value(traced[0].sources + traced[1].sources, traced[0].shape))
        elif name == "mean" and first is not None and len(operands) == 1:
            self.track(out, self.global_pool(args, kwargs, first, out))
        else:
            sources = sorted({s for v in traced if v is not None for s in v.sources})
            raise SpikeDistillError(f"the model applies '{name}' to the output of {', '.join(sources)}, which no NIR "
                                    "node represents; export with --format onnx or torchscript")
        return out

    def global_pool(self, args, kwargs, value: _Value, out: torch.Tensor) -> _Value:
        """``x.mean((-2, -1))`` over the spatial dims of a (C, H, W) sample: AvgPool2d over the map, then
        Flatten (unless ``keepdim``)."""
        tensor = args[0]
        dims = kwargs.get("dim", args[1] if len(args) > 1 else None)
        dims = (dims,) if isinstance(dims, int) else tuple(dims or range(tensor.dim()))
        spatial = {tensor.dim() - 2, tensor.dim() - 1}
        if len(value.shape) != 3 or {d % tensor.dim() for d in dims} != spatial:
            over = "time" if 0 in {d % tensor.dim() for d in dims} else f"dims {dims}"
            raise SpikeDistillError(f"the model averages over {over} of a sample of shape {value.shape}; NIR export "
                                    "maps a mean over the last two (spatial) dims only, and runs step by step: "
                                    "return per-step logits [T, B, K]")
        channels, height, width = value.shape
        pooled = _Node("avgpool", (channels, 1, 1), options={"kernel": (height, width), "stride": (height, width)})
        pooled = _Value((self.add("gap", pooled, value.sources),), (channels, 1, 1))
        shape = self.sample(out, "'mean'")
        return pooled if shape == pooled.shape else self.flatten("flatten", pooled, shape)

    def close(self) -> None:
        for hook in self.hooks:
            hook.remove()


def trace_graph(model: nn.Module, input_shape: tuple[int, ...], target: NIRTarget, fold_batchnorm, nir):
    """``(nodes, edges, shapes)`` of ``model``'s NIR graph for one input of ``input_shape`` (C, H, W), read
    from one forward pass in eval mode (module docstring); ``fold_batchnorm(layer, bn)`` gives the folded
    weight and bias. The model's training flags are restored afterwards."""
    modes = {module: module.training for module in model.modules()}
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    images = torch.randn((TRACE_BATCH,) + tuple(input_shape), device=device)
    tracer = _Tracer(model, input_shape)
    tracer.track(images, _Value(("input",), tuple(input_shape)))
    try:
        model.eval()
        with torch.no_grad(), tracer:
            logits = model(images, timesteps=TRACE_TIMESTEPS)
        value = tracer.value(logits, "the model's output")
    except (RuntimeError, TypeError, IndexError) as exc:
        first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise SpikeDistillError(f"the model cannot run on one input of shape {tuple(input_shape)} for NIR export "
                                f"({type(exc).__name__}: {first_line}); check --input-shape C,H,W") from None
    finally:
        tracer.close()
        for module, training in modes.items():
            module.training = training
    if value is None or tuple(logits.shape[:2]) != (TRACE_TIMESTEPS, TRACE_BATCH) or logits.dim() != 3:
        raise SpikeDistillError(f"the model returned {tuple(logits.shape)} for {TRACE_TIMESTEPS} steps of "
                                f"{TRACE_BATCH} images; NIR export needs per-step logits [T, B, K] computed from the "
                                "input")
    tracer.add("output", _Node("output", value.shape), value.sources)
    return _materialise(tracer, target, fold_batchnorm, nir)


def _materialise(tracer: _Tracer, target: NIRTarget, fold_batchnorm, nir):
    nodes, shapes = {}, {}
    for name, node in tracer.nodes.items():
        shapes[name] = node.shape
        if node.kind == "input":
            nodes[name] = nir.Input(input_type=np.array(node.shape))
        elif node.kind == "output":
            nodes[name] = nir.Output(output_type=np.array(node.shape))
        elif node.kind == "conv":
            conv = node.module
            weight, bias = fold_batchnorm(conv, node.bn)
            nodes[name] = nir.Conv2d(input_shape=tuple(node.options["input_hw"]), weight=weight, stride=conv.stride,
                                     padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=bias)
        elif node.kind == "affine":
            weight, bias = fold_batchnorm(node.module, node.bn)
            nodes[name] = nir.Affine(weight=weight, bias=bias)
        elif node.kind == "lif":
            check_neuron(node.module.cfg, target, f"layer '{name}'")
            nodes[name] = neuron_node(nir, node.module.cfg, node.shape, target)
        elif node.kind == "avgpool":
            nodes[name] = nir.AvgPool2d(kernel_size=np.array(node.options["kernel"]),
                                        stride=np.array(node.options["stride"]), padding=np.array([0, 0]))
        else:  # flatten (batch-free shapes: the sample's dims from 0)
            nodes[name] = nir.Flatten(input_type={"input": np.array(node.options["input"])}, start_dim=0, end_dim=-1)
    return nodes, list(tracer.edges), shapes
