"""The SNN training step against its cost floor, measured so that a busy machine cannot fool it.

    python benchmarks/bench_step.py                       # GPU: ResNet-19, T = 4 and 6, B = 128
    python benchmarks/bench_step.py --device cpu          # CPU: small_cnn, B = 8, T = 1 2 4 8, eager
    python benchmarks/bench_step.py --device cpu --cases ann_floor snn_default snn_torch spikingjelly \\
        --timesteps 4 --threads 2 --iters 21
    python benchmarks/bench_step.py --device cpu --smoke  # a tiny run that checks every case works
    python benchmarks/bench_step.py --table results.jsonl # print a saved run as the markdown table

``spikedistill bench ARGS`` runs this script of the source checkout with the same arguments.

The floor of training an SNN at T timesteps is the same network run as an ANN (ReLU twin) on T·B
images; everything above it is the price of spiking. For each model and T this times one training
step — forward, cross-entropy on the time-mean logits, backward, SGD step — for:

* ``ann_floor``     the ANN twin on T·B images,
* ``snn_default``   our SNN as it trains by default: the fused Triton LIF on CUDA, the same algorithm in
                    torch ops (``sequence``) elsewhere; BatchNorm folded into the neuron,
* ``snn_torch``     our SNN with the plain PyTorch LIF loop (``backend="torch"``, BatchNorm unfolded),
* ``snn_sequence``  our SNN with the ``sequence`` backend on any device (BatchNorm folded),
* ``snn_triton``    our SNN with the fused Triton LIF (on a CPU only under ``TRITON_INTERPRET=1``, set
                    before Python starts; its interpreter times say nothing about a GPU),
* ``snn_triton_unfolded``  the same with every BatchNorm run as its own layer (only when named),
* ``spikingjelly``  our SNN with SpikingJelly's multi-step ``LIFNode`` in place of ours (when installed;
                    SpikingJelly 2.0 picks its own implementation by device: a custom op on the CPU,
                    its CUDA/Triton kernels on a GPU),
* ``snntorch``      our SNN with snnTorch's ``Leaky`` stepped over T (when installed),

each eager and/or under ``torch.compile``. Our static-image stem runs once on B images and is broadcast
over T (``models.layers.stem_forward``), while the floor's stem runs on T·B images — the output says so.

**Round-robin timing.** All cases of one (model, T, mode) are built first and warmed up; then every
round runs one step of each case, in an order rotated each round, and each case's step time is divided
by the floor's step time *of the same round*. Load from other processes hits neighbouring steps alike,
so the per-round ratio survives it where absolute times do not. Reported per case: the median step time,
the median ratio to the floor and its min–max over the rounds, and ``trusted: false`` (with a line on
stderr) when that spread is too wide (max/min of the ratio above ``SPREAD_LIMIT``).

**Memory.** ``saved_gb``: what autograd keeps for backward over one eager forward (parameters excluded;
device-independent). On CUDA ``peak_step_gb``: the peak allocated during one step above what was
allocated before it. On the CPU ``peak_rss_gb``: the peak resident memory of a child process that builds
only that case and runs a few steps, and ``step_rss_gb``: how far those steps took it above its resident
memory before the first step (``--no-memory`` skips the children); each ratio is to the floor's, the
CPU one on ``step_rss_gb`` (a process's peak is mostly torch itself).

``--device cpu --smoke`` is a tiny run (the 3-layer ``small_cnn`` on 4 images of 8×8, T = 2,
torch.compile with the ``aot_eager`` backend, no child processes): a check that every case runs, not
a measurement. ``bench_records(plan)`` yields the records; ``run_bench(args)`` prints them as JSON
lines on stdout and the table on stderr; ``--out FILE`` also appends the JSON lines to FILE. Global
state (thread count, dynamo caches) is restored or reset on the way out; nothing here sets environment
variables.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's spikedistill

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from spikedistill.cli import positive_int  # noqa: E402
from spikedistill.device import autocast, device_name, resolve_device, use_bf16  # noqa: E402
from spikedistill.errors import SpikeDistillError, run_command  # noqa: E402

CASES = ("ann_floor", "snn_default", "snn_torch", "snn_sequence", "snn_triton", "spikingjelly", "snntorch")
EXTRA_CASES = ("snn_triton_unfolded",)  # run only when named
MODES = ("eager", "compile")
FOREIGN_CASES = ("spikingjelly", "snntorch")  # another library's failure skips its case; ours are bugs
SPREAD_LIMIT = 1.5  # max/min of a case's per-round ratios above which its median is flagged untrusted
STEM_NOTE = ("our static-image stem runs once on B images (broadcast over T); the floor's runs on T·B images "
             "— part of the SNN's advantage at T > 1")


@dataclass
class BenchPlan:
    device: str
    models: tuple[str, ...] = ("resnet19",)
    timesteps: tuple[int, ...] = (4, 6)
    batch: int = 128
    cases: tuple[str, ...] = ("ann_floor", "snn_default", "snn_torch", "snn_sequence", "spikingjelly")
    modes: tuple[str, ...] = MODES
    warmup: int = 3
    iters: int = 20  # rounds: each times one step of every case
    threads: int | None = None  # torch.set_num_threads for the run (restored afterwards); None: unchanged
    image_size: dict = field(default_factory=dict)  # model name → side; default 32 (48 for vggsnn)
    compile_backend: str = "inductor"
    memory: bool = True  # CPU: peak RSS of a child process per case

    @classmethod
    def from_args(cls, args) -> "BenchPlan":
        device = getattr(args, "device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
        if getattr(args, "smoke", False):
            plan = cls(device, models=("small_cnn",), timesteps=(2,), batch=4, warmup=1, iters=3,
                       cases=CASES, image_size={"small_cnn": 8, "resnet19": 8},
                       compile_backend="aot_eager" if device == "cpu" else "inductor", memory=False)
        elif device.startswith("cuda"):
            plan = cls(device)
        else:  # a CPU: a small conv net, B = 8, 32×32, eager
            plan = cls(device, models=("small_cnn",), timesteps=(1, 2, 4, 8), batch=8, modes=("eager",),
                       cases=("ann_floor", "snn_default", "snn_torch", "spikingjelly", "snntorch"), iters=15)
        for name in ("models", "timesteps", "cases", "modes"):
            value = getattr(args, name, None)
            if value:
                setattr(plan, name, tuple(value))
        for name in ("batch", "warmup", "iters", "compile_backend", "threads"):
            value = getattr(args, name, None)
            if value is not None:
                setattr(plan, name, value)
        if getattr(args, "no_memory", False):
            plan.memory = False
        return plan


def run_bench(args, jsonl=None) -> int:
    """Run the plan of ``args``: JSON lines on stdout (and appended to the open file ``jsonl``), the table
    and notes on stderr."""
    plan = BenchPlan.from_args(args)
    check_plan(plan)
    records = []
    for record in bench_records(plan):
        records.append(record)
        print(json.dumps(record), flush=True)
        if jsonl is not None:
            jsonl.write(json.dumps(record) + "\n")
            jsonl.flush()
    print(summary_table(records), file=sys.stderr)
    return 0


def check_plan(plan: BenchPlan) -> None:
    unknown = set(plan.cases) - set(CASES + EXTRA_CASES) | set(plan.modes) - set(MODES)
    if unknown:
        raise SpikeDistillError(
            f"unknown bench case or mode {sorted(unknown)}; known cases: {', '.join(CASES + EXTRA_CASES)}; "
            f"modes: {', '.join(MODES)}")
    if plan.device.startswith("cuda") and not torch.cuda.is_available():
        raise SpikeDistillError("--device cuda was asked but no CUDA GPU is visible; use --device cpu")
    resolve_device(plan.device)  # an unknown device ('tpu') is one line
    if "compile" in plan.modes:
        from torch._dynamo import list_backends

        known = list_backends(exclude_tags=())
        if plan.compile_backend not in known:
            raise SpikeDistillError(f"unknown --compile-backend '{plan.compile_backend}'; known: {', '.join(known)}")
    if plan.iters < 1 or plan.warmup < 0 or (plan.threads is not None and plan.threads < 1):
        raise SpikeDistillError("--iters and --threads must be positive and --warmup non-negative")


@contextlib.contextmanager
def _threads(threads: int | None):
    """``torch.set_num_threads(threads)`` for the block, restored afterwards."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def bench_records(plan: BenchPlan):
    """Yield one dict per (model, T, case, mode), all cases of a (model, T, mode) timed round-robin."""
    with _threads(plan.threads):
        for model_name in plan.models:
            for timesteps in plan.timesteps:
                for mode in plan.modes:
                    yield from _bench_group(plan, model_name, timesteps, mode)


def _base_record(plan, model_name, timesteps, case, mode) -> dict:
    return dict(model=model_name, timesteps=timesteps, batch=plan.batch, case=case, mode=mode,
                device=device_name(plan.device), dtype="bf16" if use_bf16(plan.device) else "fp32",
                compile_backend=plan.compile_backend if mode == "compile" else None)


def _bench_group(plan: BenchPlan, model_name: str, timesteps: int, mode: str):
    cuda = plan.device.startswith("cuda")
    cases = ("ann_floor",) + tuple(c for c in plan.cases if c != "ann_floor")  # the floor is always timed
    runners, skipped = {}, {}
    if mode == "compile":
        torch._dynamo.reset()
    for case in cases:
        try:
            runners[case] = _Runner(plan, model_name, timesteps, case, mode)
        except _Skip as reason:
            skipped[case] = str(reason)
        except Exception as exc:
            if case not in FOREIGN_CASES:
                raise
            skipped[case] = f"{type(exc).__name__}: {exc}"[:300]
    for case, runner in list(runners.items()):  # warm-up (and compilation), case by case
        try:
            for _ in range(plan.warmup + (1 if mode == "compile" else 0)):
                runner.step()
        except Exception as exc:
            if case not in FOREIGN_CASES:
                raise
            skipped[case] = f"{type(exc).__name__}: {exc}"[:300]
            del runners[case]
    names = list(runners)
    times = {case: [] for case in names}
    for round_index in range(plan.iters):
        shift = round_index % len(names)
        for case in names[shift:] + names[:shift]:
            times[case].append(runners[case].timed_step())
    peaks = {case: runner.peak_step_gb() for case, runner in runners.items()} if cuda else {}
    saved = {case: runner.saved_gb() for case, runner in runners.items()} if mode == "eager" else {}
    for runner in runners.values():
        runner.close()
    runners.clear()
    if mode == "compile":
        torch._dynamo.reset()
    _free_memory(cuda)
    rss = {}
    if plan.memory and not cuda:
        for case in names:
            rss[case] = _child_peak_rss_gb(plan, model_name, timesteps, case, mode)
    floor = times["ann_floor"]
    for case in cases:
        record = _base_record(plan, model_name, timesteps, case, mode)
        if case in skipped:
            yield dict(record, skipped=skipped[case])
            continue
        ratios = sorted(t / f for t, f in zip(times[case], floor))
        median_ratio = statistics.median(ratios)
        record.update(
            ms=round(statistics.median(times[case]), 3), rounds=len(ratios),
            ratio_to_floor=round(median_ratio, 3), ratio_min=round(ratios[0], 3), ratio_max=round(ratios[-1], 3),
            trusted=ratios[-1] / ratios[0] <= SPREAD_LIMIT,
            saved_gb=_round(saved.get(case), 6), saved_ratio_to_floor=_ratio(saved.get(case), saved.get("ann_floor")),
            peak_step_gb=_round(peaks.get(case), 4),
            peak_ratio_to_floor=_ratio(peaks.get(case), peaks.get("ann_floor")),
            peak_rss_gb=_round(rss.get(case, {}).get("peak_rss_gb"), 4),
            step_rss_gb=_round(rss.get(case, {}).get("step_rss_gb"), 4),
            rss_ratio_to_floor=_ratio(rss.get(case, {}).get("step_rss_gb"),
                                      rss.get("ann_floor", {}).get("step_rss_gb")),
            note=STEM_NOTE if case != "ann_floor" and timesteps > 1 else None,
        )
        yield record


def _round(value, digits):
    return None if value is None else round(value, digits)


def _ratio(value, floor):
    return round(value / floor, 3) if value is not None and floor else None


class _Skip(Exception):
    """A case that cannot run here (SpikingJelly not installed, no Triton)."""


class _Runner:
    """One case: its model, optimizer and inputs, ready to run training steps."""

    def __init__(self, plan: BenchPlan, model_name: str, timesteps: int, case: str, mode: str):
        self.cuda = plan.device.startswith("cuda")
        self.device = plan.device
        self.model = build_case(plan, model_name, case)
        self.images, self.labels = _inputs(plan, model_name, timesteps, case)
        self.timesteps = 1 if case == "ann_floor" else timesteps
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.forward = torch.compile(self.model, backend=plan.compile_backend) if mode == "compile" else self.model

    def step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device):
            logits = self.forward(self.images, timesteps=self.timesteps)  # [T, B, K]; the floor: [1, T·B, K]
            loss = F.cross_entropy(logits.float().mean(0), self.labels)
        loss.backward()
        self.optimizer.step()

    def timed_step(self) -> float:
        """Milliseconds of one step (CUDA events on a GPU, wall clock on a CPU)."""
        if self.cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            self.step()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        start = time.perf_counter()
        self.step()
        return (time.perf_counter() - start) * 1e3

    def peak_step_gb(self) -> float:
        """CUDA: the peak allocated during one step above what was allocated before it."""
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        self.step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 1e9

    def saved_gb(self) -> float:
        return _saved_for_backward_gb(self.model, self.images, self.timesteps, self.cuda)

    def close(self) -> None:
        del self.model, self.forward, self.optimizer, self.images, self.labels


def build_case(plan: BenchPlan, model_name: str, case: str) -> nn.Module:
    from spikedistill import create_model
    from spikedistill.neurons import LIF
    from spikedistill.neurons.lif import triton_available

    in_channels = 2 if model_name == "vggsnn" else 3
    model = create_model(model_name, spiking=case != "ann_floor", num_classes=10, in_channels=in_channels)
    if case.startswith("snn_"):
        if case.startswith("snn_triton") and not triton_available():
            raise _Skip("needs Triton and a CUDA GPU (or TRITON_INTERPRET=1 in the environment, for its "
                        "CPU interpreter)")
        backend = {"snn_default": "auto"}.get(case, case.split("_")[1])
        for module in model.modules():
            if isinstance(module, LIF):
                module.backend = backend
                module.fold_batchnorm = not case.endswith("_unfolded")
    elif case == "spikingjelly":
        _swap_neurons(model, _spikingjelly_neuron())
    elif case == "snntorch":
        _swap_neurons(model, _snntorch_neuron())
    model = model.to(plan.device)
    if plan.device.startswith("cuda"):
        model = model.to(memory_format=torch.channels_last)
    return model


def _swap_neurons(model: nn.Module, make) -> None:
    """Replace every LIF of ``model`` by ``make(cfg)``, a module over ``[T, B, ...]`` with the same dynamics."""
    from spikedistill.neurons import LIF

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LIF):
                if child.cfg.surrogate != "sigmoid":
                    raise _Skip(f"the foreign-neuron cases map only the sigmoid surrogate, not {child.cfg.surrogate}")
                setattr(parent, name, make(child.cfg))


def _spikingjelly_neuron():
    """SpikingJelly's multi-step ``LIFNode``. Version 2.0 has no ``backend`` argument: it picks its CPU
    custom op or its CUDA kernels from the device by itself."""
    try:
        from spikingjelly.activation_based import neuron, surrogate
    except ImportError as exc:
        raise _Skip(f"spikingjelly is not importable ({exc}); pip install spikingjelly") from None

    class SpikingJellyLIF(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.node = neuron.LIFNode(tau=1.0 / (1.0 - cfg.decay), decay_input=cfg.decay_input,
                                       v_threshold=cfg.threshold, v_reset=cfg.v_reset,
                                       surrogate_function=surrogate.Sigmoid(alpha=cfg.surrogate_param),
                                       detach_reset=cfg.detach_reset, step_mode="m")

        def forward(self, x_seq):
            self.node.reset()  # SpikingJelly neurons keep state between calls; ours start from rest
            return self.node(x_seq)

    return SpikingJellyLIF


def _snntorch_neuron():
    """snnTorch's ``Leaky`` stepped over T (its API is single-step): hard reset to zero, applied in the
    step that fires (``reset_delay=False``), sigmoid surrogate of the same slope."""
    try:
        import snntorch
        from snntorch import surrogate
    except ImportError as exc:
        raise _Skip(f"snntorch is not importable ({exc}); pip install snntorch") from None

    class SnnTorchLIF(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            if cfg.decay_input or cfg.detach_reset:
                raise _Skip("the snnTorch case maps only decay_input=False, detach_reset=False")
            self.node = snntorch.Leaky(beta=cfg.decay, threshold=cfg.threshold,
                                       spike_grad=surrogate.sigmoid(slope=cfg.surrogate_param),
                                       reset_mechanism="subtract" if cfg.soft_reset else "zero", reset_delay=False)

        def forward(self, x_seq):
            mem = torch.zeros_like(x_seq[0])
            spikes = []
            for x in x_seq:
                spike, mem = self.node(x, mem)
                spikes.append(spike)
            return torch.stack(spikes)

    return SnnTorchLIF


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
        with autocast("cuda" if cuda else "cpu"):
            logits = model(images, timesteps=timesteps)
    del logits
    model.zero_grad(set_to_none=True)
    return sum(storages.values()) / 1e9


def _free_memory(cuda: bool) -> None:
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()


# ---- CPU peak memory: one child process per case ---------------------------------------------------
def _child_peak_rss_gb(plan: BenchPlan, model_name: str, timesteps: int, case: str, mode: str) -> dict:
    """A fresh process builds this case alone and runs warm-up + 2 steps: its peak resident memory, and
    how far the steps took it above its resident memory before the first step (``step_rss_gb``: what
    training adds to the process, the number to compare — torch alone is ~0.5 GB)."""
    spec = dict(asdict(plan), models=[model_name], timesteps=[timesteps], cases=[case], modes=[mode])
    command = [sys.executable, "-c", "import runpy, sys; runpy.run_path(sys.argv[1])['_child_main'](sys.argv[2])",
               __file__, json.dumps(spec)]
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if result.returncode != 0:
        print(f"bench: the memory child of {case} failed: {result.stderr.strip()[-300:]}", file=sys.stderr)
        return {}
    return json.loads(result.stdout.strip().splitlines()[-1])


def _child_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    plan = BenchPlan(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
    if plan.threads:
        torch.set_num_threads(plan.threads)
    runner = _Runner(plan, plan.models[0], plan.timesteps[0], plan.cases[0], plan.modes[0])
    before = _current_rss_bytes()  # torch, the model, its optimizer and inputs: the same for every case
    for _ in range(plan.warmup + 2):
        runner.step()
    peak = _peak_rss_bytes()
    print(json.dumps(dict(peak_rss_gb=peak / 1e9, step_rss_gb=max(0, peak - before) / 1e9)))


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    """This process's own peak resident memory. Linux: ``VmHWM``, the high-water mark of the memory map
    the process got at exec. Not ``getrusage``'s ``ru_maxrss``: the kernel folds into it the map the
    child was forked from, so every child would report the *parent's* peak (the benchmark process,
    holding all the cases) and all cases would read the same."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # elsewhere: bytes on macOS, kB on BSDs
    return peak if sys.platform == "darwin" else peak * 1024


# ---- the table --------------------------------------------------------------------------------------
def summary_table(records: list[dict]) -> str:
    """Markdown: per (model, T, mode, case) the median ms, the median ratio to the floor with its
    min–max over the rounds, and memory ratios; then the notes (untrusted spreads, the stem)."""
    lines = ["| model | T | mode | case | ms/step | time / floor: median (min–max) | saved / floor | "
             "peak / floor |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    untrusted = []
    for r in records:
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['timesteps']} | {r['mode']} | {r['case']} | skipped: "
                         f"{r['skipped'][:80]} | | | |")
            continue
        flag = "" if r["trusted"] else " ⚠"
        if not r["trusted"]:
            untrusted.append(f"{r['case']} at T={r['timesteps']} ({r['mode']})")
        peak = r.get("rss_ratio_to_floor") or r.get("peak_ratio_to_floor")
        lines.append(f"| {r['model']} | {r['timesteps']} | {r['mode']} | {r['case']} | {r['ms']:.1f} | "
                     f"{r['ratio_to_floor']:.2f} ({r['ratio_min']:.2f}–{r['ratio_max']:.2f}){flag} | "
                     f"{_cell(r.get('saved_ratio_to_floor'))} | {_cell(peak)} |")
    notes = [f"rounds per case: {max((r.get('rounds', 0) for r in records), default=0)}; each ratio is to the "
             "floor's step in the same round (order rotated each round)",
             "peak: on a CPU the peak RSS a child process per case reaches above its RSS before the first "
             "step; on CUDA the peak allocated during a step above what was allocated before it",
             f"note: {STEM_NOTE}"]
    if untrusted:
        notes.append(f"⚠ spread too wide to trust (max/min ratio > {SPREAD_LIMIT}): {', '.join(untrusted)}; "
                     "rerun with more --iters on a quieter machine")
    return "\n".join(lines + [""] + notes)


def _cell(value) -> str:
    return "–" if value is None else f"{value:.2f}"


# ---- the command line -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks/bench_step.py",
                                     description="Time the SNN training step against the ANN floor, round-robin.")
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes: a check that every case runs, not a measurement")
    parser.add_argument("--models", nargs="+", help="models to time (default: resnet19 on CUDA, small_cnn on a CPU)")
    parser.add_argument("--timesteps", nargs="+", type=positive_int,
                        help="T values (default: 4 6 on CUDA, 1 2 4 8 on a CPU)")
    parser.add_argument("--batch", type=positive_int, help="batch size B (default: 128 on CUDA, 8 on a CPU)")
    parser.add_argument("--cases", nargs="+", metavar="CASE", help=" ".join(CASES + EXTRA_CASES))
    parser.add_argument("--modes", nargs="+", metavar="MODE", help="eager and/or compile")
    parser.add_argument("--iters", type=positive_int,
                        help="timed rounds, one step of every case each (default: 20 on CUDA, 15 on a CPU)")
    parser.add_argument("--warmup", type=int, help="untimed steps per case first (default: 3)")
    parser.add_argument("--threads", type=positive_int, help="torch threads for the run (restored afterwards)")
    parser.add_argument("--compile-backend", dest="compile_backend", help="torch.compile backend (default: inductor)")
    parser.add_argument("--no-memory", dest="no_memory", action="store_true",
                        help="CPU: skip the peak-RSS child processes")
    parser.add_argument("--out", help="also append the JSON lines to this file")
    parser.add_argument("--table", metavar="FILE", help="print the markdown table of a saved JSON-lines file and exit")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> int:  # an unreadable --table or unwritable --out is one error line too
        if args.table:
            with open(args.table) as f:
                print(summary_table([json.loads(line) for line in f if line.strip()]))
            return 0
        with open(args.out, "a") if args.out else contextlib.nullcontext() as jsonl:
            return run_bench(args, jsonl)

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main())
