"""``spikedistill bench``: the SNN training step against its cost floor, in one run.

The floor of training an SNN at T timesteps is the same network run as an ANN (ReLU twin) on T·B
images; everything above it is the price of spiking. For each model and T this times one training
step — forward, cross-entropy on the time-mean logits, backward, SGD step — for:

* ``ann_floor``     the ANN twin on T·B images,
* ``snn_torch``     our SNN with the plain PyTorch LIF loop (``backend="torch"``),
* ``snn_sequence``  our SNN with the LIF recurrence as one autograd node that saves only u
                    (``backend="sequence"``, the eager default off CUDA),
* ``snn_triton``    our SNN with the fused Triton LIF (``backend="triton"``, docs/speed.md), BatchNorm
                    folded into the neuron where a conv → BN → LIF allows (``neurons/batchnorm.py``),
* ``snn_triton_unfolded``  the same with every BatchNorm run as its own layer (only when asked for:
                    it measures what the folding buys),
* ``spikingjelly``  our SNN with SpikingJelly's multi-step ``LIFNode`` in place of ours (when installed),

each eager and under ``torch.compile``, and prints one JSON line per case with ``ms`` (median step),
``peak_gb`` (CUDA peak allocated during the timed steps; null on the CPU), ``saved_gb`` (bytes saved for
backward by one eager forward, eager cases only), ``ratio_to_floor`` (ms over the same mode's floor),
``mem_ratio_to_floor`` (peak) and ``saved_ratio_to_floor``. On CUDA: bf16 autocast and channels_last, as in training.

``--device cpu --smoke`` runs a tiny version (the 3-layer ``small_cnn`` on 4 images of 8×8, T = 2;
the Triton kernel under its interpreter; torch.compile with the ``aot_eager`` backend, which traces
the custom ops without generating code) in well under a minute: a check that every case runs, not a
measurement. ``benchmarks/bench_step.py --device cpu --smoke --models resnet19`` smokes ResNet-19.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

CASES = ("ann_floor", "snn_torch", "snn_sequence", "snn_triton", "spikingjelly")
EXTRA_CASES = ("snn_triton_unfolded",)  # run only when named
MODES = ("eager", "compile")


@dataclass
class BenchPlan:
    device: str
    models: tuple[str, ...] = ("resnet19",)
    timesteps: tuple[int, ...] = (4, 6)
    batch: int = 128
    cases: tuple[str, ...] = CASES
    modes: tuple[str, ...] = MODES
    warmup: int = 5
    iters: int = 20
    image_size: dict = field(default_factory=dict)  # model name → side; default 32 (48 for vggsnn)
    compile_backend: str = "inductor"

    @classmethod
    def from_args(cls, args) -> "BenchPlan":
        device = getattr(args, "device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
        if getattr(args, "smoke", False):
            plan = cls(device, models=("small_cnn",), timesteps=(2,), batch=4, warmup=0, iters=2,
                       image_size={"small_cnn": 8, "resnet19": 8},
                       compile_backend="aot_eager" if device == "cpu" else "inductor")
        else:
            plan = cls(device)
        for name in ("models", "timesteps", "cases", "modes"):
            value = getattr(args, name, None)
            if value:
                setattr(plan, name, tuple(value))
        for name in ("batch", "warmup", "iters", "compile_backend"):
            value = getattr(args, name, None)
            if value:
                setattr(plan, name, value)
        return plan


def run_bench(args) -> int:
    """Entry point of ``spikedistill bench``; prints one JSON line per case to stdout."""
    from .errors import SpikeDistillError

    plan = BenchPlan.from_args(args)
    unknown = set(plan.cases) - set(CASES + EXTRA_CASES) | set(plan.modes) - set(MODES)
    if unknown:
        raise SpikeDistillError(
            f"unknown bench case or mode {sorted(unknown)}; known: {', '.join(CASES + EXTRA_CASES + MODES)}")
    if plan.device.startswith("cuda") and not torch.cuda.is_available():
        raise SpikeDistillError("--device cuda was asked but no CUDA GPU is visible; use --device cpu --smoke")
    if not plan.device.startswith("cuda"):
        # The Triton kernels run on the CPU only under the interpreter, chosen when they are first imported.
        os.environ.setdefault("TRITON_INTERPRET", "1")
    for record in bench_records(plan):
        print(json.dumps(record), flush=True)
    return 0


def bench_records(plan: BenchPlan):
    """Yield one dict per (model, T, case, mode); the floor of each (model, T, mode) comes first."""
    for model_name in plan.models:
        for timesteps in plan.timesteps:
            floors = {}
            for case in plan.cases:
                for mode in plan.modes:
                    record = dict(model=model_name, timesteps=timesteps, batch=plan.batch, case=case, mode=mode,
                                  device=_device_name(plan.device),
                                  dtype="bf16" if plan.device.startswith("cuda") else "fp32",
                                  compile_backend=plan.compile_backend if mode == "compile" else None)
                    try:
                        result = time_training_step(plan, model_name, timesteps, case, mode)
                    except _Skip as reason:
                        yield dict(record, skipped=str(reason))
                        continue
                    except torch.cuda.OutOfMemoryError:
                        _free_memory(True)
                        yield dict(record, skipped="CUDA out of memory")
                        continue
                    except Exception as exc:  # a foreign library's failure skips its case; ours are bugs
                        if case != "spikingjelly":
                            raise
                        yield dict(record, skipped=f"{type(exc).__name__}: {exc}"[:300])
                        continue
                    record.update(result)
                    if case == "ann_floor":
                        floors[mode] = result
                    floor = floors.get(mode)
                    record["ratio_to_floor"] = _ratio(result["ms"], floor and floor["ms"])
                    record["mem_ratio_to_floor"] = _ratio(result["peak_gb"], floor and floor["peak_gb"])
                    record["saved_ratio_to_floor"] = _ratio(result["saved_gb"], floor and floor["saved_gb"])
                    yield record


class _Skip(Exception):
    """A case that cannot run here (SpikingJelly not installed, no Triton)."""


def _ratio(value, floor):
    return round(value / floor, 3) if value is not None and floor else None


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({torch.get_num_threads()} threads)"


def build_case(plan: BenchPlan, model_name: str, case: str) -> nn.Module:
    from . import create_model
    from .neurons import LIF

    in_channels = 2 if model_name == "vggsnn" else 3
    model = create_model(model_name, spiking=case != "ann_floor", num_classes=10, in_channels=in_channels)
    if case in ("snn_torch", "snn_sequence", "snn_triton", "snn_triton_unfolded"):
        if case.startswith("snn_triton"):
            from .neurons.lif import triton_available

            if not triton_available():
                raise _Skip("triton is not installed, or neither CUDA nor TRITON_INTERPRET=1")
        for module in model.modules():
            if isinstance(module, LIF):
                module.backend = case.split("_")[1]
                module.fold_batchnorm = not case.endswith("_unfolded")
    elif case == "spikingjelly":
        _swap_in_spikingjelly(model, plan.device)
    model = model.to(plan.device)
    if plan.device.startswith("cuda"):
        model = model.to(memory_format=torch.channels_last)
    return model


def _swap_in_spikingjelly(model: nn.Module, device: str) -> None:
    """Replace every LIF by SpikingJelly's multi-step LIFNode with the same dynamics."""
    try:
        from spikingjelly.activation_based import neuron, surrogate
    except ImportError:
        raise _Skip("spikingjelly is not installed (pip install spikingjelly)") from None
    from .neurons import LIF

    class SpikingJellyLIF(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            if cfg.surrogate != "sigmoid":
                raise _Skip(f"the SpikingJelly case maps only the sigmoid surrogate, not {cfg.surrogate}")
            backend = "cupy" if device.startswith("cuda") else "torch"
            kwargs = dict(tau=1.0 / (1.0 - cfg.decay), decay_input=cfg.decay_input, v_threshold=cfg.threshold,
                          v_reset=cfg.v_reset, surrogate_function=surrogate.Sigmoid(alpha=cfg.surrogate_param),
                          detach_reset=cfg.detach_reset, step_mode="m")
            try:
                self.node = neuron.LIFNode(backend=backend, **kwargs)
            except Exception:  # this version has no such backend
                self.node = neuron.LIFNode(**kwargs)

        def forward(self, x_seq):
            self.node.reset()  # SpikingJelly neurons keep state between calls; ours start from rest
            return self.node(x_seq)

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LIF):
                setattr(parent, name, SpikingJellyLIF(child.cfg))


def _inputs(plan: BenchPlan, model_name: str, timesteps: int, case: str):
    side = plan.image_size.get(model_name, 48 if model_name == "vggsnn" else 32)
    channels = 2 if model_name == "vggsnn" else 3
    images_per_step = plan.batch * (timesteps if case == "ann_floor" else 1)  # the floor sees T·B images
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(images_per_step, channels, side, side, generator=generator).to(plan.device)
    labels = torch.randint(0, 10, (images_per_step,), generator=generator).to(plan.device)
    if plan.device.startswith("cuda"):
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels


def time_training_step(plan: BenchPlan, model_name: str, timesteps: int, case: str, mode: str) -> dict:
    """Median ms of one training step, peak and saved-for-backward memory, for one case."""
    cuda = plan.device.startswith("cuda")
    _free_memory(cuda)
    model = build_case(plan, model_name, case)
    images, labels = _inputs(plan, model_name, timesteps, case)
    run_timesteps = 1 if case == "ann_floor" else timesteps
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    forward = model
    if mode == "compile":
        torch._dynamo.reset()
        forward = torch.compile(model, backend=plan.compile_backend)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
            logits = forward(images, timesteps=run_timesteps)  # [T, B, K]; the floor: [1, T·B, K]
            loss = F.cross_entropy(logits.float().mean(0), labels)
        loss.backward()
        optimizer.step()

    saved_gb = _saved_for_backward_gb(model, images, run_timesteps, cuda) if mode == "eager" else None
    for _ in range(plan.warmup + (1 if mode == "compile" else 0)):  # the first compiled call compiles
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(plan.iters):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            start = time.perf_counter()
            step()
            times.append((time.perf_counter() - start) * 1e3)
    peak_gb = torch.cuda.max_memory_allocated() / 1e9 if cuda else None
    del model, forward, optimizer
    _free_memory(cuda)
    return dict(ms=round(statistics.median(times), 3), peak_gb=peak_gb and round(peak_gb, 3),
                saved_gb=saved_gb and round(saved_gb, 6))


def _saved_for_backward_gb(model: nn.Module, images, timesteps: int, cuda: bool) -> float:
    """Bytes autograd keeps for the backward pass over one forward (parameters excluded), in GB:
    the activation memory of training, comparable across devices."""
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters and storage.device.type != "meta":
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
            logits = model(images, timesteps=timesteps)
    del logits
    model.zero_grad(set_to_none=True)
    return sum(storages.values()) / 1e9


def _free_memory(cuda: bool) -> None:
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
