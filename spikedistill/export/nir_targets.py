"""What each NIR reader runs correctly, and the graph rewrites that meet it (``--nir-target``).

The spec-plain file (target ``nir``) integrates at dt = 1 with τ = 1/(1−d) and R = τ/dt. The readers
of the ecosystem read it differently (measured with snnTorch 1.0.0 and Norse 1.1.0, see
docs/deployment.md):

* **snnTorch** ``import_from_nir`` integrates at a fixed dt = 1e-4 (β = 1 − dt/τ), folds R·dt/τ into
  the threshold, resets to zero, asserts v_leak = 0, and maps ``IF`` to a leaky neuron with β = 0.9.
  So: τ written in units of its dt (τ = 1e-4/(1−d)), hard reset to 0, no IF.
* **Norse** ``from_nir`` integrates at the dt it is given (default 1e-3), ignores ``r`` (it expects
  r = 1), resets to 0 whatever ``v_reset`` says, and maps ``SumPool2d`` but not ``AvgPool2d``.
  So: τ in units of its dt, R folded into every incoming edge with r = 1, average pools written as
  sum pools with 1/(k_h·k_w) folded into the weights that read them, hard reset to 0.

Every rewrite leaves the graph's meaning unchanged under forward Euler at ``metadata["dt"]``, so
the tests' NIR simulator (``tests/nir_runner.py``) runs every target's file to the same logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpikeDistillError


@dataclass(frozen=True)
class NIRTarget:
    name: str
    dt: float  # the step the reader integrates with; time constants are written in units of it
    unit_r: bool  # the reader ignores r: fold R into the incoming weights and write r = 1
    sum_pool: bool  # the reader maps SumPool2d but not AvgPool2d
    zero_reset: bool  # the reader resets to 0 (and needs v_leak = 0): v_reset must be 0
    maps_if: bool  # the reader runs nir.IF as an integrate-and-fire neuron
    load: str  # how the reader loads the file, for messages and the graph's metadata


TARGETS = {
    "nir": NIRTarget("nir", 1.0, False, False, False, True,
                     "any NIR reader that integrates with forward Euler at metadata['dt']"),
    "snntorch": NIRTarget("snntorch", 1e-4, False, False, True, False,
                          "snntorch.import_nir.import_from_nir(graph), one sample at a time"),
    "norse": NIRTarget("norse", 1e-3, True, True, True, True,
                       "norse.torch.from_nir(graph, dt=metadata['dt']), one sample at a time"),
}


def get_target(name: str) -> NIRTarget:
    if name not in TARGETS:
        raise SpikeDistillError(f"unknown NIR target '{name}'; known: {', '.join(TARGETS)}")
    return TARGETS[name]


def check_neuron(cfg, target: NIRTarget, where: str) -> None:
    """Refuse, in one line, an LIF configuration the target's reader would run differently."""
    if cfg.soft_reset:
        raise SpikeDistillError(
            f"{where} uses soft reset (v_reset=None), which NIR neurons cannot express (they reset to a value); "
            "export a hard-reset model (v_reset=0.0) or use --format onnx/torchscript")
    if target.zero_reset and cfg.v_reset != 0.0:
        raise SpikeDistillError(
            f"{where} resets to v_reset={cfg.v_reset}, but the {target.name} reader resets to 0; "
            "export with --nir-target nir or train with v_reset=0.0")
    if cfg.decay >= 1.0 and not target.maps_if:
        raise SpikeDistillError(
            f"{where} has decay=1 (NIR IF), which the {target.name} reader runs as a leaky neuron (beta=0.9); "
            "export with --nir-target nir or norse")


def _fields(node_class) -> set[str]:
    return set(getattr(node_class, "__dataclass_fields__", {}))


def neuron_node(nir, cfg, shape: tuple[int, ...], target: NIRTarget):
    """The NIR ``LIF`` / ``IF`` for one of our LIF layers, time in units of ``target.dt``.

    Euler at dt gives ``v ← v + (dt/τ)(v_leak − v + R·I)``; matching ``H = d·V + X`` needs
    dt/τ = 1 − d and R·dt/τ = 1, so τ = dt/(1−d) and R = 1/(1−d) (R = 1 with decay_input, whose
    input term is (1−d)·X). ``v_reset`` is written only when the installed ``nir`` has the field
    (1.0.6 on); older releases reset to 0, so a non-zero reset needs a newer ``nir``.
    """
    full = lambda value: np.full(shape, value, dtype=np.float32)  # noqa: E731
    node_class = nir.IF if cfg.decay >= 1.0 else nir.LIF
    fields = {"v_threshold": full(cfg.threshold)}
    if "v_reset" in _fields(node_class):
        fields["v_reset"] = full(cfg.v_reset)
    elif cfg.v_reset != 0.0:
        raise SpikeDistillError(f"v_reset={cfg.v_reset} needs nir>=1.0.6 (this nir has no LIF.v_reset); "
                                "pip install -U 'nir>=1.0.6'")
    if node_class is nir.IF:
        return nir.IF(r=full(1.0), **fields)
    tau = target.dt / (1.0 - cfg.decay)
    r = 1.0 if cfg.decay_input else 1.0 / (1.0 - cfg.decay)
    return nir.LIF(tau=full(tau), r=full(r), v_leak=full(cfg.v_reset), **fields)


def _successors(edges, name):
    return [dst for src, dst in edges if src == name]


def _predecessors(edges, name):
    return [src for src, dst in edges if dst == name]


def _scaled(nir, node, weight_factor: float, bias_factor: float):
    """A copy of a Conv2d / Affine / Linear node with its weight and bias multiplied by the factors."""
    kind = type(node).__name__
    if kind == "Conv2d":
        return nir.Conv2d(input_shape=node.input_shape, weight=node.weight * weight_factor, stride=node.stride,
                          padding=node.padding, dilation=node.dilation, groups=node.groups,
                          bias=node.bias * bias_factor)
    if kind == "Affine":
        return nir.Affine(weight=node.weight * weight_factor, bias=node.bias * bias_factor)
    return nir.Linear(weight=node.weight * weight_factor)


def _channel_scale(nir, shape: tuple[int, ...], factor: float):
    """A node that multiplies its input by ``factor``, from nodes every reader maps: a 1×1 conv with a
    diagonal weight for (C, H, W) (not a depthwise one: nir's type inference ignores ``groups``), a
    diagonal Affine for (N,)."""
    identity = np.eye(shape[0], dtype=np.float32) * factor
    if len(shape) == 3:
        return nir.Conv2d(input_shape=shape[1:], weight=identity[:, :, None, None], stride=(1, 1), padding=(0, 0),
                          dilation=(1, 1), groups=1, bias=np.zeros(shape[0], dtype=np.float32))
    return nir.Affine(weight=identity, bias=np.zeros(shape[0], dtype=np.float32))


def fold_r_into_inputs(nir, nodes: dict, edges: list, shapes: dict) -> None:
    """Write r = 1 on every LIF and multiply each of its incoming edges by R instead (in place).

    An edge from a Conv2d / Affine that feeds only this neuron scales that node's weight and bias;
    any other edge (a residual identity from spikes) gets a scaling node of its own, so a residual
    sum ``R·(branch + identity)`` is scaled on both terms."""
    for name, node in list(nodes.items()):
        if type(node).__name__ != "LIF":
            continue
        values = np.unique(np.asarray(node.r))
        if values.size != 1:
            raise SpikeDistillError(f"LIF '{name}' has per-neuron r; cannot fold it into the incoming weights")
        factor = float(values[0])
        if factor == 1.0:
            continue
        for source in _predecessors(edges, name):
            kind = type(nodes[source]).__name__
            if kind in ("Conv2d", "Affine", "Linear") and _successors(edges, source) == [name]:
                nodes[source] = _scaled(nir, nodes[source], factor, factor)  # output × R
                continue
            scale = f"{source}_to_{name}_r"
            nodes[scale] = _channel_scale(nir, shapes[source], factor)
            shapes[scale] = shapes[source]
            edges[edges.index((source, name))] = (source, scale)
            edges.append((scale, name))
        fields = {key: getattr(node, key) for key in ("tau", "v_leak", "v_threshold",
                                                      "v_reset") if key in _fields(nir.LIF)}
        nodes[name] = nir.LIF(r=np.ones_like(node.r), **fields)


def avgpool_to_sumpool(nir, nodes: dict, edges: list) -> None:
    """Replace each AvgPool2d by a SumPool2d and fold 1/(k_h·k_w) into the weights that read it (in
    place); those readers, reached through any Flatten, must be Conv2d / Affine / Linear nodes whose
    only input is this pool."""
    for name, node in list(nodes.items()):
        if type(node).__name__ != "AvgPool2d":
            continue
        kernel = np.atleast_1d(np.asarray(node.kernel_size)).astype(int)
        factor = 1.0 / float(np.prod(kernel) if kernel.size == 2 else kernel[0] ** 2)
        nodes[name] = nir.SumPool2d(kernel_size=np.asarray(node.kernel_size), stride=np.asarray(node.stride),
                                    padding=np.asarray(node.padding))
        frontier = _successors(edges, name)
        while frontier:
            reader = frontier.pop()
            kind = type(nodes[reader]).__name__
            if kind == "Flatten":
                frontier += _successors(edges, reader)
            elif kind in ("Conv2d", "Affine", "Linear") and len(_predecessors(edges, reader)) == 1:
                nodes[reader] = _scaled(nir, nodes[reader], factor, 1.0)  # reads a sum: weight / (k_h·k_w)
            else:
                raise SpikeDistillError(f"average pool '{name}' feeds '{reader}' ({kind}); the sum-pool rewrite needs "
                                        "a conv or linear layer after it — export with --nir-target nir")
