"""Per-timestep cost of a spiking network: synaptic operations, MACs, firing rates and energy.

Counted with forward hooks during the same single pass that gives accuracy at every k ≤ T_max, so
cost and accuracy describe the same samples. The hooks sit on every ``nn.Conv2d`` and ``nn.Linear``
(SpikingJelly's layers included: they are subclasses) and on the spike sources: our
:class:`~spikedistill.neurons.LIF`, SpikingJelly 2.0 neurons (``BaseNode``, ``SimpleBaseNode``) and
snnTorch neurons (``SpikingNeuron``) when those packages are imported. A model with none of them is
refused in one line unless it declares itself an ANN (``model.spiking = False``), and so is a model
with a layer whose operations the count would leave out (``Conv1d``, ``Conv3d``, transposed
convolutions, recurrent or attention layers).

Where a layer runs in time (every count is per sample and per step, whatever the batch):

* on ``[T·B, ...]`` or ``[T, B, ...]`` (time-first, as our models and SpikingJelly's multi-step
  layers do): one call covers steps 1..T;
* on ``[B, ...]`` once per step (a loop over steps, snnTorch, SpikingJelly's single-step mode): the
  n-th call of a layer within a forward is step n;
* on ``[B, ...]`` once in a forward of T > 1 steps: a result computed once and held for every step
  (our stem on a static image), charged at step 1 (see ``stem_macs`` below).

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
  the AvgPool → conv1×1 shortcuts of ``ckdsnn_resnet19``. Every layer's row also gives ``dense_macs``,
  what it would cost on dense input (the ANN count of the same run).
* Static images: a stem conv run once per sample with its output held for every step (our models do
  exactly this) counts its MACs **once**, at step 1 (``stem_macs="once"``, the default;
  Spikformer-style). ``stem_macs="per_step"`` charges them at every step instead, as hardware that
  re-injects the image each step would pay. Frame inputs, and models that call their first layer at
  every step, run it per step and pay per step under either policy.
* Firing rate: nonzero outputs of the spike sources over neurons × steps (spikes for 0/1 neurons).
* Ignored: BatchNorm (folded into the preceding conv/linear at deployment), biases, pooling, residual
  additions, neuron updates (leak, threshold, reset), data movement and memory access.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from functools import partial

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
        raise SpikeDistillError("energy counting supports zero-padded convolutions only (got "
                                f"padding_mode='{conv.padding_mode}')")
    coverage = receptive_coverage(tuple(conv.kernel_size), tuple(conv.stride),
                                  conv.padding if isinstance(conv.padding, str)
                                  else tuple(conv.padding), tuple(conv.dilation), height, width)
    return (coverage * (conv.out_channels // conv.groups)).to(device)


@functools.lru_cache(maxsize=256)
def receptive_coverage(kernel_size, stride, padding, dilation, height: int, width: int) -> torch.Tensor:
    """``[H, W]``: how many output positions of a one-channel convolution see each input position."""
    ones = torch.ones(1, 1, height, width, requires_grad=True)
    with torch.enable_grad():
        out = F.conv2d(ones, torch.ones(1, 1, *kernel_size), stride=stride, padding=padding, dilation=dilation)
        (coverage,) = torch.autograd.grad(out.sum(), ones)
    return coverage[0, 0]


def conv_synaptic_ops(conv: nn.Conv2d, spikes: torch.Tensor, fanout: torch.Tensor | None = None) -> torch.Tensor:
    """Exact accumulate count of ``conv`` on binary input ``[..., C, H, W]`` → ``[...]`` counts.
    ``fanout``: a precomputed :func:`conv_fanout` map for this input size."""
    if fanout is None:
        fanout = conv_fanout(conv, spikes.shape[-2], spikes.shape[-1], spikes.device)
    return ((spikes != 0).sum(-3).to(fanout.dtype) * fanout).sum((-2, -1))


def channel_counts(spikes: torch.Tensor) -> torch.Tensor:
    """Binary ``[..., C, H, W]`` → ``[..., H·W]`` float64: the spikes at each position over all channels
    (exact: each count is at most C), one matrix product instead of a reduction over a middle dim."""
    channels, height, width = spikes.shape[-3:]
    flat = spikes.reshape(-1, channels, height * width)
    flat = flat.float() if flat.dtype in (torch.float16, torch.bfloat16) else flat
    counts = torch.matmul(torch.ones(1, channels, dtype=flat.dtype, device=flat.device), flat)
    return counts.reshape(*spikes.shape[:-3], height * width).to(torch.float64)


def linear_synaptic_ops(linear: nn.Linear, spikes: torch.Tensor) -> torch.Tensor:
    """Exact accumulate count of ``linear`` on binary input ``[..., F]`` → ``[...]`` counts."""
    return (spikes != 0).sum(-1).to(torch.float64) * linear.out_features


def spike_neuron_types() -> tuple[type, ...]:
    """The module classes whose outputs are spikes: our LIF, and SpikingJelly 2.0's and snnTorch's
    neuron bases when those packages are imported (a model can hold their neurons only then; this
    never imports them itself)."""
    import sys

    types: list[type] = [LIF]
    spikingjelly = sys.modules.get("spikingjelly.activation_based.neuron")
    types += [getattr(spikingjelly, name) for name in ("BaseNode", "SimpleBaseNode") if hasattr(spikingjelly, name)]
    snntorch = sys.modules.get("snntorch")
    if hasattr(snntorch, "SpikingNeuron"):
        types.append(snntorch.SpikingNeuron)
    return tuple(types)


# Layers with multiply-accumulates that the count does not model: refused rather than left out.
UNCOUNTED_LAYERS = (nn.Conv1d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                    nn.Bilinear, nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention)


def binary_rows(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``[N, D]`` rows: which are all 0/1 (``[N]`` bool) and how many nonzero values each holds
    (``[N]`` float64), exactly. A row is binary when it lies in [0, 1] and Σ x·(1 − x) = 0: every term
    is ≥ 0 there and 0 only at 0 and 1, so no rounding can hide a 0.5 or a 0.999. Sums, minima and maxima
    run at memory speed where comparisons into bool tensors do not (the cost of an evaluation pass)."""
    flat = flat.float() if flat.dtype in (torch.float16, torch.bfloat16) else flat
    inside = (flat.amin(1) >= 0) & (flat.amax(1) <= 1)
    rows = flat.shape[0] if flat.is_cuda else max(1, (1 << 18) // max(flat.shape[1], 1))  # stay in cache on a CPU
    spread = torch.cat([torch.addcmul(part, part, part, value=-1).sum(1) for part in flat.split(rows)])
    binary = inside & (spread == 0)
    if bool(binary.all()):
        return binary, flat.sum(1).to(torch.float64)  # 0/1 values: the sum is the count (exact below 2^24)
    return binary, (flat != 0).sum(1).to(torch.float64)


def linear_ops(out_features: int, spikes: torch.Tensor, nonzero: torch.Tensor) -> torch.Tensor:
    """SOPs of a linear layer on binary rows: each spike drives every output."""
    return nonzero * out_features


@dataclass
class LayerCost:
    """Running totals for one conv/linear layer: ``[T]`` sums over samples, per step."""

    name: str
    kind: str  # "conv" or "linear"
    acs: torch.Tensor
    macs: torch.Tensor
    dense_macs: torch.Tensor
    input_nonzero: torch.Tensor
    input_numel: torch.Tensor
    inputs_seen: set = field(default_factory=set)  # {"spikes", "analog"}


@dataclass
class NeuronCount:
    name: str
    spikes: torch.Tensor  # [T] spike totals over samples
    neurons: int = 0  # neurons per sample


class NeuronOutput:
    """One neuron call's output ``[N, D]`` (rows: steps × samples) and, once known, its rows' statistics
    ``(binary, nonzero)``, which credit the neuron's spike count. Our LIF's spikes are left unread until
    the conv they feed counts them right before its SOPs, while they are in cache (or until no layer will)."""

    def __init__(self, flat: torch.Tensor, count: NeuronCount, step: int, steps_batch: torch.Size):
        self.flat, self.count, self.step, self.steps_batch = flat, count, step, steps_batch
        self.stats = None

    def resolve(self, binary: torch.Tensor, nonzero: torch.Tensor) -> None:
        self.stats = (binary, nonzero)
        end = self.step + self.steps_batch[0]
        self.count.spikes[self.step:end] += nonzero.view(self.steps_batch).sum(1).cpu()

    def statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.stats is None:  # our LIF emits exactly 0.0 and 1.0: the sum is the count (in float32 at least)
            self.resolve(torch.ones(self.flat.shape[0], dtype=torch.bool, device=self.flat.device),
                         self.flat.sum(1, dtype=torch.promote_types(self.flat.dtype, torch.float32)).to(torch.float64))
        return self.stats


class CostRecorder:
    """Forward hooks counting per-step, per-sample cost during evaluation passes.

    Use as a context manager; call :meth:`begin_batch` before each forward with the batch size and the
    number of steps the model will run. After the passes, :meth:`summary` gives cumulative curves.
    ``spiking``: ``None`` decides from the model (its spike sources, or ``model.spiking = False`` for an
    ANN); ``False`` counts every layer as dense MACs.
    """

    def __init__(self, model: nn.Module, max_timesteps: int, stem_macs: str = "once", spiking: bool | None = None):
        if stem_macs not in STEM_MAC_POLICIES:
            raise SpikeDistillError(f"unknown stem_macs policy '{stem_macs}'; known: {', '.join(STEM_MAC_POLICIES)}")
        self.model = model
        self.max_timesteps = max_timesteps
        self.stem_macs = stem_macs
        self.neuron_types = spike_neuron_types()
        self.spiking = self._spiking(model) if spiking is None else spiking
        self.layers: dict[str, LayerCost] = {}
        self.neurons: dict[str, NeuronCount] = {}
        self.samples = 0
        self._handles = []
        self._fanouts: dict = {}  # (layer name, C, H, W, dtype, device) → its fan-out, computed once
        self._batch = 0
        self._steps = 0
        self._calls: dict[str, int] = {}  # per-step calls ([B, ...] inputs) of each layer in this batch
        self._held: dict[str, tuple] = {}  # a layer's step-1 cost from its one [B, ...] call (stem_macs)
        self._recent: list[NeuronOutput] = []  # the last two neuron outputs, for the layers they feed
        self._sample_pj: torch.Tensor | None = None  # [T, B] energy of the current batch
        self.sample_energy_pj: list[torch.Tensor] = []  # per batch, [T, B], per step (not cumulative)

    def _spiking(self, model: nn.Module) -> bool:
        """Whether to look for spikes: the model has a spike source; or it declares itself an ANN."""
        declared = getattr(model, "spiking", None)
        if declared is False:
            return False
        if any(isinstance(m, self.neuron_types) for m in model.modules()):
            return True
        raise SpikeDistillError(
            f"energy counting found no spiking neuron in {type(model).__name__} (it knows spikedistill's LIF, "
            "SpikingJelly's BaseNode/SimpleBaseNode and snnTorch's SpikingNeuron); use one of those, or set "
            "model.spiking = False to report it as an ANN (dense MACs)")

    # -- hooks ---------------------------------------------------------------------------------
    def __enter__(self) -> "CostRecorder":
        for name, module in self.model.named_modules():
            if isinstance(module, UNCOUNTED_LAYERS):
                raise SpikeDistillError(
                    f"energy counting covers Conv2d and Linear layers; '{name}' is a {type(module).__name__}, "
                    "whose operations it would leave out; score this model with fullrange_accuracy instead")
        for name, module in self.model.named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                self._handles.append(module.register_forward_hook(self._layer_hook(name)))
            elif isinstance(module, self.neuron_types):
                self._handles.append(module.register_forward_hook(self._neuron_hook(name, module)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def begin_batch(self, batch_size: int, steps: int) -> None:
        if steps > self.max_timesteps:
            raise SpikeDistillError(f"batch runs {steps} steps but the recorder counts at most {self.max_timesteps}")
        self.end()
        self._batch, self._steps = batch_size, steps
        self._sample_pj = torch.zeros(self.max_timesteps, batch_size, dtype=torch.float64)
        self.samples += batch_size

    def end(self) -> None:
        """Close the current batch: a result held for every step is charged again under ``per_step``."""
        if self._steps > 1 and self.stem_macs == "per_step":
            for name, (acs, macs, nonzero, numel) in self._held.items():
                if self._calls.get(name) == 1:
                    for step in range(1, self._steps):
                        self._book(self.layers[name], step, acs, macs, nonzero, numel)
        self._calls.clear()
        self._held.clear()
        for output in self._recent:
            output.statistics()
        self._recent = []
        if self._sample_pj is not None:
            self.sample_energy_pj.append(self._sample_pj.cpu())
        self._sample_pj = None
        self._steps = 0

    def _zeros(self) -> torch.Tensor:
        return torch.zeros(self.max_timesteps, dtype=torch.float64)

    def _align(self, x: torch.Tensor, name: str, feature_dims: int | None) -> tuple[torch.Tensor, int]:
        """View a layer input or neuron output as ``[S, B, ...features]`` and give the step of its first
        row (see the module docstring). ``feature_dims=None``: ``x`` is time-first ``[T, B, ...]``."""
        steps, batch = self._steps, self._batch
        if steps == 0:
            raise SpikeDistillError("the model ran outside an evaluation batch; call begin_batch(batch, steps) first")
        lead = 2 if feature_dims is None else x.dim() - feature_dims
        shape = tuple(x.shape[:lead])
        features = x.shape[lead:]
        if shape in ((steps * batch,), (steps, batch)):
            return x.reshape(steps, batch, *features), 0
        if shape in ((batch,), (1, batch)):  # one step: [B, ...], or [1, B, ...] into a multi-step neuron
            step = self._calls.get(name, 0)
            self._calls[name] = step + 1
            if step >= steps:
                raise SpikeDistillError(
                    f"layer '{name}' ran {step + 1} times on a batch of {batch} in a {steps}-step forward; energy "
                    "counting needs each layer once per step on [B, ...], or once on [T*B, ...] or [T, B, ...]")
            return x.reshape(1, batch, *features), step
        raise SpikeDistillError(
            f"cannot align layer '{name}' input {tuple(x.shape)} with batch {batch} × {steps} steps; energy "
            "counting needs time-first [T, B, ...] or flattened [T*B, ...] tensors, or one call per step on [B, ...]")

    def _layer(self, name: str, kind: str) -> LayerCost:
        cost = self.layers.get(name)
        if cost is None:
            cost = self.layers[name] = LayerCost(name, kind, *(self._zeros() for _ in range(5)))
        return cost

    def _add(self, cost: LayerCost, x: torch.Tensor, step: int, synaptic_ops, dense_macs: int,
             counts_and_ops=None) -> None:
        """Charge one call of a layer: ``x`` its input ``[S, B, ...]`` starting at ``step``. ``synaptic_ops(x,
        nonzero)`` gives the SOPs of binary rows; ``counts_and_ops(x)`` both the spike counts and the SOPs."""
        flat = x.reshape(x.shape[0] * x.shape[1], -1)
        acs = None
        if not self.spiking:
            binary, nonzero = torch.zeros(flat.shape[0], dtype=torch.bool), (flat != 0).sum(1).to(torch.float64)
        else:
            recent = self._recent_output(flat)
            if recent is not None and recent.stats is None and counts_and_ops is not None:
                nonzero, acs = counts_and_ops(x)  # our LIF's spikes: their count and SOPs in one pass
                recent.resolve(torch.ones(flat.shape[0], dtype=torch.bool, device=flat.device), nonzero.flatten())
            binary, nonzero = recent.statistics() if recent is not None else binary_rows(flat)
        binary, nonzero = binary.view(x.shape[:2]).cpu(), nonzero.view(x.shape[:2]).cpu()  # [S, B]
        any_binary, all_binary = bool(binary.any()), bool(binary.all())
        cost.inputs_seen.update(("spikes",) if all_binary else ("spikes", "analog") if any_binary else ("analog",))
        if acs is None:
            acs = synaptic_ops(x, nonzero) if any_binary else torch.zeros(binary.shape, dtype=torch.float64)
        acs = acs.to(torch.float64).cpu()
        acs = acs if all_binary else torch.where(binary, acs, 0.0)
        macs = torch.where(binary, 0.0, float(dense_macs)).to(torch.float64)
        numel = flat.shape[1]
        cost.dense_macs[step:step + x.shape[0]] += float(dense_macs) * x.shape[1]
        self._book(cost, step, acs, macs, nonzero, numel)
        if x.shape[0] == 1 and step == 0 and self._steps > 1:
            self._held[cost.name] = (acs, macs, nonzero, numel)

    def _recent_output(self, flat: torch.Tensor) -> NeuronOutput | None:
        """The recent neuron output that ``flat`` is (the same memory, unchanged): a layer fed straight
        from a neuron, the common case, reuses its statistics instead of reading the spikes again."""
        if not flat.is_contiguous():
            return None
        for recent in self._recent:
            spikes = recent.flat
            if (spikes.data_ptr() == flat.data_ptr() and spikes.numel() == flat.numel() and spikes.dtype == flat.dtype
                    and spikes._version == flat._version and spikes.shape[0] == flat.shape[0]):
                return recent
        return None

    def _book(self, cost: LayerCost, step: int, acs, macs, nonzero, numel: int) -> None:
        """Add per-sample ``[S, B]`` counts to steps ``step..step+S-1``."""
        end = step + acs.shape[0]
        cost.acs[step:end] += acs.sum(1)
        cost.macs[step:end] += macs.sum(1)
        cost.input_nonzero[step:end] += nonzero.sum(1)
        cost.input_numel[step:end] += numel * self._batch
        self._sample_pj[step:end] += E_MAC_PJ * macs + E_AC_PJ * acs

    def _layer_hook(self, name: str):
        def hook(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                x, step = self._align(inputs[0], name, 3)
                per_row = output.numel() // (x.shape[0] * x.shape[1])  # C_out·H_out·W_out of one sample-step
                dense = per_row * (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
                self._add(self._layer(name, "conv"), x, step, partial(self._conv_ops, name, module), dense,
                          partial(self._conv_counts_and_ops, name, module))
            else:
                x, step = self._align(inputs[0], name, 1)
                self._add(self._layer(name, "linear"), x, step, partial(linear_ops, module.out_features),
                          module.in_features * module.out_features)

        return hook

    def _conv_fanout(self, name: str, conv: nn.Conv2d, spikes: torch.Tensor) -> tuple[bool, torch.Tensor]:
        """``(small, fan-out)``: where no row can reach 2^24 (float32 counts exactly below it), the float32
        ``[C·H·W]`` fan-out for one matrix-vector product over the flat input; otherwise the float64
        ``[H·W]`` fan-out, applied to per-position spike counts (at most C each)."""
        channels, height, width = spikes.shape[-3:]
        key = (name, channels, height, width, spikes.dtype, spikes.device)
        if key not in self._fanouts:
            fanout = conv_fanout(conv, height, width).flatten()
            if spikes.dtype == torch.float32 and float(fanout.sum()) * channels < 2**24:
                self._fanouts[key] = (True, fanout.repeat(channels).to(spikes.device))
            else:
                self._fanouts[key] = (False, fanout.to(spikes.device, torch.float64))
        return self._fanouts[key]

    def _conv_ops(self, name: str, conv: nn.Conv2d, spikes: torch.Tensor, nonzero: torch.Tensor) -> torch.Tensor:
        """Exact SOPs ``[S, B]`` of binary ``[S, B, C, H, W]``: every spike times its fan-out."""
        small, fanout = self._conv_fanout(name, conv, spikes)
        if small:
            return spikes.reshape(*spikes.shape[:2], -1) @ fanout
        return channel_counts(spikes) @ fanout

    def _conv_counts_and_ops(self, name: str, conv: nn.Conv2d, spikes: torch.Tensor):
        """``(spike counts, SOPs)``, each ``[S, B]`` float64, of binary ``[S, B, C, H, W]``, read back to back
        (the second read finds the spikes in cache)."""
        small, fanout = self._conv_fanout(name, conv, spikes)
        if small:
            flat = spikes.reshape(*spikes.shape[:2], -1)
            return flat.sum(-1).to(torch.float64), (flat @ fanout).to(torch.float64)
        counts = channel_counts(spikes)
        return counts.sum(-1), counts @ fanout

    def _neuron_hook(self, name: str, module: nn.Module):
        # Our LIF and SpikingJelly's multi-step mode run all steps at once, time-first; snnTorch and
        # SpikingJelly's single-step mode run once per step on [B, ...].
        all_steps = isinstance(module, LIF) or getattr(module, "step_mode", "s") == "m"
        exact_spikes = isinstance(module, LIF)

        def hook(module, inputs, output):
            spikes = output[0] if isinstance(output, (tuple, list)) else output  # snnTorch: (spikes, membrane)
            spikes, step = self._align(spikes, name, None if all_steps else spikes.dim() - 1)
            count = self.neurons.get(name)
            if count is None:
                count = self.neurons[name] = NeuronCount(name, self._zeros())
            count.neurons = spikes[0, 0].numel()
            flat = spikes.reshape(spikes.shape[0] * spikes.shape[1], -1)
            output = NeuronOutput(flat, count, step, spikes.shape[:2])
            if not exact_spikes:
                output.resolve(*binary_rows(flat))
            elif not flat.is_contiguous():
                output.statistics()
            if flat.is_contiguous():  # held so that its memory is not reused while it may be looked up
                for old in self._recent[1:]:
                    old.statistics()  # no layer will read it now: count its spikes
                self._recent = [output] + self._recent[:1]

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
                "input": ("spikes" if c.inputs_seen == {"spikes"}
                          else "analog" if c.inputs_seen == {"analog"} else "mixed"),
                "input_rate": _tolist(c.input_nonzero.cumsum(0) / seen.clamp(min=1)),
                "sops": _tolist(c.acs.cumsum(0) / n),
                "macs": _tolist(c.macs.cumsum(0) / n),
                "dense_macs": _tolist(c.dense_macs.cumsum(0) / n),
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
