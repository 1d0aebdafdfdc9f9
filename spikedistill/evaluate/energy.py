"""Per-timestep cost of a spiking network: synaptic operations, MACs, firing rates and energy.

Counted with forward hooks during the same single pass that gives accuracy at every k ≤ T_max, so
cost and accuracy describe the same samples. Independent of SpikingJelly: only ``nn.Conv2d``,
``nn.Linear`` and our :class:`~spikedistill.neurons.LIF` are hooked.

Energy policy (also written into every report as ``energy_policy``):

* E = 4.6 pJ · MAC + 0.9 pJ · AC (45 nm figures, Horowitz 2014, as used across the SNN literature).
* A conv/linear layer whose input (one sample, one step) is binary (0/1 spikes) costs accumulates (ACs = SOPs).
  They are counted **exactly**: every nonzero input times its real fan-out (C_out/groups × the
  number of output positions whose receptive field holds it, so zero-padding borders are right).
  This is "input firing rate × FLOPs" without the border approximation.
* Any other input (the analog image, event counts above 1, averages of spikes after pooling/GAP, all
  layers of an ANN) costs dense MACs: C_out·H_out·W_out·(C_in/groups)·k_h·k_w per step
  (in·out for linear), whatever the values. So does a layer fed a real-valued residual sum: the
  downsampling conv1×1 of ``preact_resnet34``, which reads its block's input as the FR code does, and
  the AvgPool → conv1×1 shortcuts of ``ckdsnn_resnet19``.
* Static images: the stem conv runs once per sample and its output is held for every step (the model
  does exactly this), so its MACs count **once**, at step 1 (``stem_macs="once"``, the default;
  Spikformer-style). ``stem_macs="per_step"`` charges them at every step instead, as hardware that
  re-injects the image each step would pay. Frame inputs run the first layer at every step.
* Ignored: BatchNorm (folded into the preceding conv/linear at deployment), biases, pooling, residual
  additions, neuron updates (leak, threshold, reset), data movement and memory access.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SpikeDistillError
from ..neurons import LIF

E_MAC_PJ = 4.6
E_AC_PJ = 0.9
STEM_MAC_POLICIES = ("once", "per_step")


def energy_policy(stem_macs: str = "once") -> dict:
    """The policy as data, written beside every energy number."""
    return {
        "e_mac_pj": E_MAC_PJ,
        "e_ac_pj": E_AC_PJ,
        "formula": "E = 4.6 pJ * MACs + 0.9 pJ * ACs, per sample, cumulative over steps 1..k",
        "binary_input_layers": "ACs (SOPs) = nonzero inputs x exact fan-out (conv borders included)",
        "analog_input_layers": "dense MACs per step (image, pooled or averaged spikes, every ANN layer)",
        "static_image_stem_macs": stem_macs,
        "ignored": ["batchnorm (folded)", "biases", "pooling", "residual additions",
                    "neuron updates (leak, threshold, reset)", "memory access"],
    }


def conv_fanout(conv: nn.Conv2d, height: int, width: int, device=None) -> torch.Tensor:
    """``[H, W]``: how many synapses one input element at each position drives (all output channels
    of its group, every output position whose receptive field covers it)."""
    if conv.padding_mode != "zeros":
        raise SpikeDistillError(f"energy counting supports zero-padded convolutions only (got padding_mode='{conv.padding_mode}')")
    ones = torch.ones(1, 1, height, width, device=device, requires_grad=True)
    with torch.enable_grad():
        kernel = torch.ones(1, 1, *conv.kernel_size, device=device)
        out = F.conv2d(ones, kernel, stride=conv.stride, padding=conv.padding, dilation=conv.dilation)
        (coverage,) = torch.autograd.grad(out.sum(), ones)
    return coverage[0, 0] * (conv.out_channels // conv.groups)


def conv_synaptic_ops(conv: nn.Conv2d, spikes: torch.Tensor, fanout: torch.Tensor | None = None) -> torch.Tensor:
    """Exact accumulate count of ``conv`` on binary input ``[..., C, H, W]`` → ``[...]`` counts.
    ``fanout``: a precomputed :func:`conv_fanout` map for this input size."""
    if fanout is None:
        fanout = conv_fanout(conv, spikes.shape[-2], spikes.shape[-1], spikes.device)
    return ((spikes != 0).sum(-3).to(fanout.dtype) * fanout).sum((-2, -1))


def linear_synaptic_ops(linear: nn.Linear, spikes: torch.Tensor) -> torch.Tensor:
    """Exact accumulate count of ``linear`` on binary input ``[..., F]`` → ``[...]`` counts."""
    return (spikes != 0).sum(-1).to(torch.float64) * linear.out_features


@dataclass
class LayerCost:
    """Running totals for one conv/linear layer: ``[T]`` sums over samples, per step."""

    name: str
    kind: str  # "conv" or "linear"
    acs: torch.Tensor
    macs: torch.Tensor
    input_nonzero: torch.Tensor
    input_numel: torch.Tensor
    inputs_seen: set = field(default_factory=set)  # {"spikes", "analog"}


@dataclass
class NeuronCount:
    name: str
    spikes: torch.Tensor  # [T] spike totals over samples
    neurons: int = 0  # neurons per sample


class CostRecorder:
    """Forward hooks counting per-step, per-sample cost during evaluation passes.

    Use as a context manager; call :meth:`begin_batch` before each forward with the batch size and the
    number of steps the model will run. After the passes, :meth:`summary` gives cumulative curves.
    """

    def __init__(self, model: nn.Module, max_timesteps: int, stem_macs: str = "once", spiking: bool | None = None):
        if stem_macs not in STEM_MAC_POLICIES:
            raise SpikeDistillError(f"unknown stem_macs policy '{stem_macs}'; known: {', '.join(STEM_MAC_POLICIES)}")
        self.model = model
        self.max_timesteps = max_timesteps
        self.stem_macs = stem_macs
        self.spiking = any(isinstance(m, LIF) for m in model.modules()) if spiking is None else spiking
        self.layers: dict[str, LayerCost] = {}
        self.neurons: dict[str, NeuronCount] = {}
        self.samples = 0
        self._handles = []
        self._fanouts: dict = {}  # (layer name, H, W) → conv_fanout map, computed once
        self._batch = 0
        self._steps = 0
        self._sample_pj: torch.Tensor | None = None  # [T, B] energy of the current batch
        self.sample_energy_pj: list[torch.Tensor] = []  # per batch, [T, B], per step (not cumulative)

    # -- hooks ---------------------------------------------------------------------------------
    def __enter__(self) -> "CostRecorder":
        for name, module in self.model.named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                self._handles.append(module.register_forward_hook(self._layer_hook(name)))
            elif isinstance(module, LIF):
                self._handles.append(module.register_forward_hook(self._neuron_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def begin_batch(self, batch_size: int, steps: int) -> None:
        if steps > self.max_timesteps:
            raise SpikeDistillError(f"batch runs {steps} steps but the recorder counts at most {self.max_timesteps}")
        if self._sample_pj is not None:
            self.sample_energy_pj.append(self._sample_pj.cpu())
        self._batch, self._steps = batch_size, steps
        self._sample_pj = torch.zeros(self.max_timesteps, batch_size, dtype=torch.float64)
        self.samples += batch_size

    def end(self) -> None:
        if self._sample_pj is not None:
            self.sample_energy_pj.append(self._sample_pj.cpu())
            self._sample_pj = None

    def _zeros(self) -> torch.Tensor:
        return torch.zeros(self.max_timesteps, dtype=torch.float64)

    def _as_steps(self, x: torch.Tensor, name: str, feature_dims: int) -> tuple[torch.Tensor, bool]:
        """View a layer input as ``[S, B, ...features]``; ``True`` when it ran once for all steps."""
        lead = x.shape[: x.dim() - feature_dims]
        features = x.shape[x.dim() - feature_dims:]
        count = 1
        for size in lead:
            count *= size
        if count == self._steps * self._batch:
            return x.reshape(self._steps, self._batch, *features), False
        if count == self._batch:
            return x.reshape(1, self._batch, *features), True
        raise SpikeDistillError(
            f"cannot align layer '{name}' input {tuple(x.shape)} with batch {self._batch} × {self._steps} steps; "
            "energy counting needs time-first [T, B, ...] models from spikedistill.models"
        )

    def _add(self, name: str, kind: str, x: torch.Tensor, synaptic_ops, dense_macs: int, once: bool):
        cost = self.layers.get(name)
        if cost is None:
            cost = self.layers[name] = LayerCost(name, kind, self._zeros(), self._zeros(), self._zeros(), self._zeros())
        # Decided per step and sample, so a sample's cost never depends on what it is batched with.
        flat = x.flatten(2)
        binary = ((flat == 0) | (flat == 1)).all(-1).cpu() if self.spiking else torch.zeros(x.shape[:2], dtype=torch.bool)
        nonzero = (flat != 0).sum(-1).to(torch.float64).cpu()  # [S, B]
        cost.inputs_seen.update(("spikes",) if binary.all() else ("analog",) if not binary.any() else ("spikes", "analog"))
        step_acs = synaptic_ops(x).to(torch.float64).cpu() if binary.any() else torch.zeros(binary.shape, dtype=torch.float64)
        step_acs = torch.where(binary, step_acs, 0.0)
        step_macs = torch.where(binary, 0.0, float(dense_macs)).to(torch.float64)
        if once and self.stem_macs == "per_step":  # charge the held result again at every step
            repeat = (self._steps, 1)
            step_acs, step_macs, nonzero = step_acs.repeat(repeat), step_macs.repeat(repeat), nonzero.repeat(repeat)
        steps = step_acs.shape[0]
        cost.acs[:steps] += step_acs.sum(1)
        cost.macs[:steps] += step_macs.sum(1)
        cost.input_nonzero[:steps] += nonzero.sum(1)
        cost.input_numel[:steps] += flat.shape[-1] * self._batch
        self._sample_pj[:steps] += E_MAC_PJ * step_macs + E_AC_PJ * step_acs

    def _layer_hook(self, name: str):
        def hook(module, inputs, output):
            x = inputs[0]
            if isinstance(module, nn.Conv2d):
                x, once = self._as_steps(x, name, 3)
                dense = output[0].numel() * (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
                self._add(name, "conv", x, lambda s: conv_synaptic_ops(module, s, self._fanout(name, module, s)), dense, once)
            else:
                x, once = self._as_steps(x, name, 1)
                dense = module.in_features * module.out_features
                self._add(name, "linear", x, lambda s: linear_synaptic_ops(module, s), dense, once)

        return hook

    def _fanout(self, name: str, conv: nn.Conv2d, spikes: torch.Tensor) -> torch.Tensor:
        key = (name, spikes.shape[-2], spikes.shape[-1])
        if key not in self._fanouts:
            self._fanouts[key] = conv_fanout(conv, key[1], key[2], spikes.device)
        return self._fanouts[key]

    def _neuron_hook(self, name: str):
        def hook(module, inputs, output):
            spikes, _ = self._as_steps(output, name, output.dim() - 2)
            count = self.neurons.get(name)
            if count is None:
                count = self.neurons[name] = NeuronCount(name, self._zeros())
            count.neurons = spikes[0, 0].numel()
            count.spikes[: spikes.shape[0]] += spikes.flatten(1).sum(1).to(torch.float64).cpu()

        return hook

    # -- results -------------------------------------------------------------------------------
    def per_sample_energy_pj(self) -> torch.Tensor:
        """``[T, N]`` cumulative energy (pJ) of every sample after steps 1..k."""
        self.end()
        if not self.sample_energy_pj:
            return torch.zeros(self.max_timesteps, 0, dtype=torch.float64)
        return torch.cat(self.sample_energy_pj, 1).cumsum(0)

    def summary(self) -> dict:
        """Cumulative per-sample curves over k = 1..T_max and per-layer detail (JSON-ready lists)."""
        self.end()
        if self.samples == 0:
            raise SpikeDistillError("no samples were counted; check that the loader yields data")
        n = self.samples
        acs = sum((c.acs for c in self.layers.values()), self._zeros()).cumsum(0) / n
        macs = sum((c.macs for c in self.layers.values()), self._zeros()).cumsum(0) / n
        steps = torch.arange(1, self.max_timesteps + 1, dtype=torch.float64)
        spikes = sum((c.spikes for c in self.neurons.values()), self._zeros()).cumsum(0)
        neurons = sum(c.neurons for c in self.neurons.values())
        firing = spikes / (neurons * n * steps) if neurons else torch.zeros_like(spikes)
        layers = []
        for c in self.layers.values():
            seen = c.input_numel.cumsum(0)
            layers.append({
                "name": c.name,
                "type": c.kind,
                "input": "spikes" if c.inputs_seen == {"spikes"} else "analog" if c.inputs_seen == {"analog"} else "mixed",
                "input_rate": _tolist(c.input_nonzero.cumsum(0) / seen.clamp(min=1)),
                "sops": _tolist(c.acs.cumsum(0) / n),
                "macs": _tolist(c.macs.cumsum(0) / n),
                "energy_mj": _tolist(_mj(c.macs.cumsum(0) / n, c.acs.cumsum(0) / n)),
            })
        neuron_rows = [
            {"name": c.name, "neurons": c.neurons, "firing_rate": _tolist(c.spikes.cumsum(0) / (c.neurons * n * steps))}
            for c in self.neurons.values()
        ]
        return {
            "sops": _tolist(acs),
            "macs": _tolist(macs),
            "energy_mj": _tolist(_mj(macs, acs)),
            "firing_rate": _tolist(firing),
            "layers": layers,
            "neurons": neuron_rows,
            "energy_policy": energy_policy(self.stem_macs),
        }


def _mj(macs: torch.Tensor, acs: torch.Tensor) -> torch.Tensor:
    return (E_MAC_PJ * macs + E_AC_PJ * acs) * 1e-9  # pJ → mJ


def _tolist(x: torch.Tensor) -> list[float]:
    return [float(v) for v in x.tolist()]
