"""A small NIR simulator in PyTorch, the tests' oracle for the NIR export: runs a (read-back) NIR graph
step by step, from NIR's own semantics.

It knows nothing of our models — only the NIR node definitions — so running an exported graph through
it and comparing with the model checks the export (BN folding, LIF mapping, wiring). Continuous-time
neurons are integrated with forward Euler at ``dt`` (``graph.metadata["dt"]``, else 1):

    LIF  v ← v + (dt/τ)(v_leak − v + R·I);  z = [v > v_th];  v ← v_reset where z
    IF   v ← v + dt·R·I;                     z = [v > v_th];  v ← v_reset where z
    LI   v ← v + (dt/τ)(v_leak − v + R·I);  output v

A node's input is the sum of its predecessors' outputs at the same step (NIR's edge semantics);
recurrent graphs are refused. Shapes are NIR's batch-free ones; a batch dimension is added in front.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from spikedistill.errors import SpikeDistillError


def _t(value, like: torch.Tensor | None = None) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(value), dtype=torch.float32)
    return tensor if like is None else tensor.to(like.device)


def _pair(value) -> tuple[int, int]:
    value = np.atleast_1d(np.asarray(value)).astype(int).tolist()
    return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])


def _topological_order(graph) -> list[str]:
    incoming = {name: 0 for name in graph.nodes}
    for _, dst in graph.edges:
        incoming[dst] += 1
    ready = [name for name, count in incoming.items() if count == 0]
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for src, dst in graph.edges:
            if src == name:
                incoming[dst] -= 1
                if incoming[dst] == 0:
                    ready.append(dst)
    if len(order) != len(graph.nodes):
        raise SpikeDistillError("the NIR graph has a cycle (recurrent edges); this simulator runs feed-forward graphs "
                                "only")
    return order


class NIRSimulator:
    """``NIRSimulator(graph)(inputs)``: inputs ``[T, B, ...]`` → ``{node: [T, B, ...]}`` for every node."""

    def __init__(self, graph, dt: float | None = None):
        self.graph = graph
        metadata = getattr(graph, "metadata", None) or {}
        self.dt = float(dt if dt is not None else np.asarray(metadata.get("dt", 1.0)))
        self.order = _topological_order(graph)
        self.sources = {name: [src for src, dst in graph.edges if dst == name] for name in graph.nodes}

    def _step(self, name: str, node, x: torch.Tensor, state: dict) -> torch.Tensor:
        kind = type(node).__name__
        dt = self.dt
        if kind in ("Input", "Output"):
            return x
        if kind == "Conv2d":
            padding = node.padding if isinstance(node.padding, str) else _pair(node.padding)
            return F.conv2d(x, _t(node.weight, x), _t(node.bias, x), _pair(node.stride), padding,
                            _pair(node.dilation), int(np.asarray(node.groups)))
        if kind == "Affine":
            return x @ _t(node.weight, x).T + _t(node.bias, x)
        if kind == "Linear":
            return x @ _t(node.weight, x).T
        if kind in ("AvgPool2d", "SumPool2d"):
            kernel = _pair(node.kernel_size)
            out = F.avg_pool2d(x, kernel, _pair(node.stride), _pair(node.padding))
            return out * (kernel[0] * kernel[1]) if kind == "SumPool2d" else out
        if kind == "Flatten":
            end = int(node.end_dim)
            return x.flatten(int(node.start_dim) + 1, end + 1 if end >= 0 else end)
        if kind == "Scale":
            return x * _t(node.scale, x)
        if kind == "Threshold":
            return (x > _t(node.threshold, x)).to(x.dtype)
        if kind in ("LIF", "IF", "LI"):
            v = state.get(name)
            if v is None:  # every run starts from rest, like our models
                rest = node.v_leak if kind != "IF" else getattr(node, "v_reset", None)
                v = torch.zeros_like(x) + (0.0 if rest is None else _t(rest, x))
            if kind == "IF":
                v = v + dt * _t(node.r, x) * x
            else:
                v = v + dt / _t(node.tau, x) * (_t(node.v_leak, x) - v + _t(node.r, x) * x)
            if kind == "LI":
                state[name] = v
                return v
            spikes = (v > _t(node.v_threshold, x)).to(x.dtype)
            v_reset = getattr(node, "v_reset", None)  # nir < 1.0.6 has no v_reset: it resets to 0
            v_reset = torch.zeros_like(v) if v_reset is None else _t(v_reset, x).expand_as(v)
            state[name] = torch.where(spikes.bool(), v_reset, v)
            return spikes
        raise SpikeDistillError(f"NIR node '{name}' of type {kind} is not supported by this simulator")

    @torch.no_grad()
    def __call__(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        inputs = torch.as_tensor(inputs, dtype=torch.float32)
        state: dict = {}
        records: dict[str, list] = {name: [] for name in self.order}
        for x in inputs:
            outputs: dict[str, torch.Tensor] = {}
            for name in self.order:
                node = self.graph.nodes[name]
                if type(node).__name__ == "Input":
                    current = x
                else:
                    current = sum(outputs[src] for src in self.sources[name])
                outputs[name] = self._step(name, node, current, state)
                records[name].append(outputs[name])
        return {name: torch.stack(values) for name, values in records.items()}


def run_nir(graph, inputs: torch.Tensor, timesteps: int | None = None) -> torch.Tensor:
    """Per-step outputs ``[T, B, ...]`` of the graph's ``output`` node. Static inputs ``[B, C, H, W]``
    are fed at every one of ``timesteps`` steps (direct encoding)."""
    if timesteps is not None:
        inputs = inputs.unsqueeze(0).expand((timesteps,) + tuple(inputs.shape))
    records = NIRSimulator(graph)(inputs)
    outputs = [name for name, node in graph.nodes.items() if type(node).__name__ == "Output"]
    if len(outputs) != 1:
        raise SpikeDistillError(f"the NIR graph has {len(outputs)} Output nodes; run NIRSimulator for multi-output "
                                "graphs")
    return records[outputs[0]]
