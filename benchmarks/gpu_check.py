"""The one-command GPU check (``benchmarks/gpu_check.sh OUT_DIR [DATA_DIR]``, which runs
``python benchmarks/gpu_check.py OUT_DIR``): on one H100/H200 with a stock CUDA PyTorch (torch ≥ 2.4 with
Triton; no kornia, no SpikingJelly, no network needed), in about 8 minutes:

1. **Kernel parity on real CUDA** (``parity``): the fused Triton LIF against the torch reference loop on
   CUDA tensors — every reset and option, the four surrogates, fp32/bf16, contiguous, channels_last and
   expanded inputs — and the BatchNorm-folded kernel against the same algorithm in torch ops. Spikes
   must be bit-identical, gradients equal to 1e-4 relative (1e-2 for bf16). The same cases are the
   tests of ``tests/test_cuda_parity.py`` (``pytest -m cuda`` on a GPU machine).
2. **The ResNet-19 training step** (``steps``): ``benchmarks/bench_step.py`` at T = 4 and 6, B = 128,
   bf16, channels_last, eager and compiled: the ANN floor, the autograd loop (``snn_torch``), the fused
   kernel (``snn_triton``), and SpikingJelly when it is importable (install its wheel first to include it).
3. **Time to accuracy** (``training``): a short twkd CIFAR-10 run through ``spikedistill train`` — an
   ANN ResNet-18 teacher for a few epochs, then the ResNet-19 twkd student at T = 4 — with the test
   top-1 at every k = 1..T and the wall time after each epoch, on the CIFAR-10 JPEG copy
   (``train_jpeg.npz`` / ``test_jpeg.npz``, 18 MB; found through ``--data-root``/``SPIKEDISTILL_DATA``),
   augmented without kornia (Cutout only).

Results go to ``OUT_DIR/gpu_check.json`` and ``OUT_DIR/gpu_check.md`` as each part finishes, so an
interrupted run still leaves what it measured. ``--smoke`` runs the same code at toy sizes on a CPU
(the Triton kernels under their interpreter when ``TRITON_INTERPRET=1`` is in the environment; the
training on 256 images with ``small_cnn``) in well under a minute: the CI test of this command.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's spikedistill and benchmarks

import torch  # noqa: E402

from spikedistill.device import device_name  # noqa: E402
from spikedistill.errors import SpikeDistillError, run_command  # noqa: E402
from spikedistill.io import atomic_write_text  # noqa: E402

PARTS = ("parity", "steps", "training")


def run_gpu_check(out_dir: str | os.PathLike, smoke: bool = False, data_root: str | None = None,
                  parts: tuple[str, ...] = PARTS) -> int:
    """Run the check, writing ``gpu_check.json`` and ``gpu_check.md`` into ``out_dir``; 0 when every
    parity check passed."""
    device = "cpu" if smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SpikeDistillError("the GPU check needs a CUDA GPU; on a CPU run it with --smoke (a check of the "
                                "command, not a measurement)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(environment=_environment(device, smoke), parts={})
    started = time.perf_counter()
    for part in parts:
        part_started = time.perf_counter()
        try:
            if part == "parity":
                result = kernel_parity(device, smoke)
            elif part == "steps":
                result = step_timings(device, smoke)
            else:
                result = time_to_accuracy(out, device, smoke, data_root)
        except Exception as exc:  # one part's failure must not lose the others' results
            result = dict(error=f"{type(exc).__name__}: {exc}"[:2000])
        result["seconds"] = round(time.perf_counter() - part_started, 1)
        report["parts"][part] = result
        report["seconds"] = round(time.perf_counter() - started, 1)
        _write(out, report)
        print(f"gpu-check: {part} done in {result['seconds']} s", file=sys.stderr, flush=True)
    parity = report["parts"].get("parity", {})
    print((out / "gpu_check.md").read_text())
    return 0 if parity.get("all_passed", True) and "error" not in parity else 1


def _environment(device: str, smoke: bool) -> dict:
    info = dict(smoke=smoke, python=platform.python_version(), torch=torch.__version__,
                device=device_name(device),
                triton_interpret=os.environ.get("TRITON_INTERPRET", "0"))
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    for name in ("spikingjelly", "kornia"):
        try:
            __import__(name)
            info[name] = True
        except Exception:
            info[name] = False
    return info


# ---- 1. parity -----------------------------------------------------------------------------------
class ParityCase(NamedTuple):
    """One fused kernel against its reference: ``check(device)`` builds the seeded input on ``device``
    and returns :func:`_compare`'s result."""

    name: str
    check: Callable[[str], dict]


def parity_cases(smoke: bool) -> list[ParityCase]:
    """The parity matrix: the fused LIF against the torch reference loop for every dtype, memory layout,
    surrogate and reset option, and the BatchNorm-folded kernel against its torch-ops twin (residual or
    not, training or eval). The inputs come from one seeded stream in this order; each case starts from
    the stream's state at its place (worked out once, at the first check), so any one of them runs alone
    on the same numbers."""
    from spikedistill.neurons import LIFConfig, lif_reference
    from spikedistill.neurons.lif import batch_norm_lif, lif_multistep

    shape = (3, 2, 5, 4, 4) if smoke else (6, 16, 32, 16, 16)
    configs = [dict(), dict(v_reset=None), dict(detach_reset=True), dict(decay_input=True, decay=0.6),
               dict(v_reset=-0.2, decay=0.7)]
    cases, draws = [], []  # draws: per case, how many inputs of ``shape`` it takes from the stream

    @functools.cache
    def states() -> list[torch.Tensor]:
        stream, result = torch.Generator().manual_seed(0), []
        for count in draws:
            result.append(stream.get_state())
            for _ in range(count):
                torch.randn(shape, generator=stream)
        return result

    def take(count: int) -> int:
        draws.append(count)
        return len(draws) - 1

    def seeded(index: int) -> torch.Generator:
        generator = torch.Generator()
        generator.set_state(states()[index])
        return generator

    def lif_case(dtype, layout, surrogate, options):
        def check(device):
            cfg = LIFConfig(surrogate=surrogate, **options)
            generator = seeded(index)
            x = (torch.randn(shape, generator=generator) * 1.2 + 0.5).to(device, dtype)
            if layout == "channels_last":
                x = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, shape[:2])
            elif layout == "expanded":
                x = x[:1].expand(shape)
            return _compare(name, lambda t: lif_multistep(t, cfg, "triton"), lambda t: lif_reference(t.float(), cfg),
                            x, dtype)

        index = take(1)
        name = f"lif {dtype_name(dtype)} {layout} {surrogate} {options}"
        return ParityCase(name, check)

    def bn_lif_case(dtype, residual, training):
        def check(device):
            cfg = LIFConfig()
            generator = seeded(index)
            x = torch.randn(shape, generator=generator).to(device, dtype)
            r = torch.randn(shape, generator=generator).to(device, dtype) if residual else None
            bns = [torch.nn.BatchNorm2d(shape[2]).to(device).train(training) for _ in range(2)]
            for bn in bns:
                bn.weight.data.copy_(torch.linspace(0.5, 1.5, shape[2]))
                bn.bias.data.copy_(torch.linspace(-0.2, 0.3, shape[2]))
            return _compare(name, lambda t: batch_norm_lif(t, bns[0], cfg, "triton", r),
                            lambda t: batch_norm_lif(t, bns[1], cfg, "sequence", r), x, dtype)

        index = take(2 if residual else 1)
        name = f"bn_lif {dtype_name(dtype)} residual={residual} training={training}"
        return ParityCase(name, check)

    for dtype in (torch.float32, torch.bfloat16):
        for layout in ("contiguous", "channels_last", "expanded"):
            for surrogate in ("sigmoid", "atan", "triangle", "rectangular"):
                for options in configs[: 2 if smoke else None]:
                    cases.append(lif_case(dtype, layout, surrogate, options))
                if smoke:
                    break
    for dtype in (torch.float32, torch.bfloat16):
        for residual in (False, True):
            for training in (True, False):
                cases.append(bn_lif_case(dtype, residual, training))
    return cases


def kernel_parity(device: str, smoke: bool) -> dict:
    """Every case of :func:`parity_cases` on ``device`` tensors."""
    from spikedistill.neurons.lif import triton_available

    if not triton_available():
        return dict(skipped="Triton cannot run here (no CUDA GPU, and TRITON_INTERPRET=1 is not set)",
                    all_passed=True)
    checks = [case.check(device) for case in parity_cases(smoke)]
    failed = [c for c in checks if not c["passed"]]
    return dict(checks=len(checks), failed=failed, all_passed=not failed)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _compare(name: str, fused, reference, x: torch.Tensor, dtype: torch.dtype) -> dict:
    """Spikes bit-equal and input gradients close (relative to the reference's largest gradient)."""
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(x.device)
    results = []
    for fn in (fused, reference):
        leaf = x.detach().clone().requires_grad_() if x.stride(0) != 0 else x.detach()[:1].clone().requires_grad_()
        inputs = leaf if x.stride(0) != 0 else leaf.expand(x.shape)
        spikes = fn(inputs)
        (spikes.float() * grad_out).sum().backward()
        results.append((spikes.float().detach(), leaf.grad.float()))
    (spikes, grad), (want_spikes, want_grad) = results
    scale = want_grad.abs().max().clamp_min(1e-12)
    error = ((grad - want_grad).abs().max() / scale).item()
    tolerance = 1e-2 if dtype == torch.bfloat16 else 1e-4
    return dict(name=name, spikes_equal=bool(torch.equal(spikes, want_spikes)), grad_rel_error=error,
                passed=bool(torch.equal(spikes, want_spikes)) and error <= tolerance)


# ---- 2. step timings -----------------------------------------------------------------------------
def step_timings(device: str, smoke: bool) -> dict:
    """``benchmarks/bench_step.py`` records for the ResNet-19 step (toy sizes in the smoke)."""
    from benchmarks.bench_step import BenchPlan, bench_records

    if smoke:
        plan = BenchPlan(device, models=("small_cnn",), timesteps=(2,), batch=2, modes=("eager",),
                         cases=("ann_floor", "snn_default", "snn_torch", "snn_triton", "spikingjelly"),
                         warmup=1, iters=2, image_size={"small_cnn": 8}, memory=False)
    else:
        plan = BenchPlan(device, models=("resnet19",), timesteps=(4, 6), batch=128, modes=("eager", "compile"),
                         cases=("ann_floor", "snn_torch", "snn_triton", "spikingjelly"), warmup=3, iters=15)
    return dict(records=list(bench_records(plan)))


# ---- 3. time to accuracy -------------------------------------------------------------------------
def time_to_accuracy(out: Path, device: str, smoke: bool, data_root: str | None) -> dict:
    """A short twkd CIFAR-10 run via ``spikedistill train``: per epoch, seconds and top-1 at every k."""
    root = data_root or os.environ.get("SPIKEDISTILL_DATA")
    if not root:
        return dict(skipped="no CIFAR-10 JPEG copy: pass --data-root or set SPIKEDISTILL_DATA to the folder "
                            "holding train_jpeg.npz and test_jpeg.npz (or cifar10/ with them)")
    common = ["data.name=cifar10_jpeg", f"data.root={root}", "data.augment.crop_padding=0",
              "data.augment.flip=false", "data.augment.autoaugment=false", "data.augment.cutout=16",
              f"device={device}", "log.progress=false", "log.tensorboard=false"]
    if smoke:
        common += ["data.subset=256", "data.test_subset=128", "optim.batch_size=64", "precision=fp32"]
        teacher = ["model.name=small_cnn", "optim.epochs=1"]
        student = ["model.name=small_cnn", "optim.epochs=1", "timesteps=2", "max_timesteps=2"]
    else:
        common += ["precision=bf16"]  # the reproduction recipes train in fp32, as the FR code; this times the fast path
        teacher = ["model.name=resnet18", "optim.epochs=4"]
        student = ["optim.epochs=4", "timesteps=4", "max_timesteps=4"]
    env = dict(os.environ, SPIKEDISTILL_CACHE=str(out / "cache"))
    runs = {}
    teacher_dir, student_dir = out / "teacher", out / "student_twkd"
    commands = {
        "teacher": ["--config", "configs/cifar10/teacher_resnet34.yaml", "--out", str(teacher_dir)] + common + teacher,
        "student": ["--config", "configs/cifar10/twkd_resnet19.yaml", "--out", str(student_dir)] + common + student
        + [f"teacher.checkpoint={teacher_dir / 'best.pt'}", "teacher.recipe=null",
           "log.best_by_timesteps=null"],  # the recipe selects at its T = 6; this short run stops at its own T_max
    }
    for name, args in commands.items():
        command = [sys.executable, "-m", "spikedistill", "train"] + args
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        runs[name] = dict(command=" ".join(command[1:]), returncode=result.returncode,
                          wall_seconds=round(time.perf_counter() - started, 1),
                          epochs=_epochs(teacher_dir if name == "teacher" else student_dir))
        if result.returncode != 0:
            runs[name]["stderr"] = result.stderr[-2000:]
            break
    return dict(runs=runs, time_to_accuracy=_time_to_accuracy(runs.get("student", {}).get("epochs", [])))


def _epochs(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    keep = lambda key: key in ("epoch", "seconds", "teacher_seconds") or key.startswith("test_top1_t")  # noqa: E731
    return [{k: float(v) for k, v in row.items() if keep(k) and v not in ("", None)} for row in rows]


def _time_to_accuracy(epochs: list[dict]) -> dict:
    """For every k: the seconds after which test top-1 at k first reached 30, 50, 70 and 80 %."""
    table = {}
    keys = sorted({k for row in epochs for k in row if k.startswith("test_top1_t")}, key=lambda k: int(k[11:]))
    for key in keys:
        k = int(key[11:])
        table[k] = {str(target): next((row["seconds"] for row in epochs if row.get(key, 0.0) >= target), None)
                    for target in (30, 50, 70, 80)}
        table[k]["final_top1"] = epochs[-1].get(key) if epochs else None
    return table


# ---- report --------------------------------------------------------------------------------------
def _write(out: Path, report: dict) -> None:
    atomic_write_text(json.dumps(report, indent=1), out / "gpu_check.json")
    atomic_write_text(markdown(report), out / "gpu_check.md")


def markdown(report: dict) -> str:
    from benchmarks.bench_step import summary_table

    env = report["environment"]
    lines = [f"# GPU check{' (CPU smoke: not a measurement)' if env['smoke'] else ''}", "",
             f"{env['device']} · torch {env['torch']} · triton {env['triton']} · "
             f"SpikingJelly {'yes' if env['spikingjelly'] else 'no'} · {report.get('seconds', 0)} s in all", ""]
    parts = report["parts"]
    if "parity" in parts:
        p = parts["parity"]
        lines += ["## Kernel parity", ""]
        if "error" in p or "skipped" in p:
            lines.append(p.get("error") or f"skipped: {p['skipped']}")
        else:
            lines.append(f"{p['checks'] - len(p['failed'])}/{p['checks']} checks passed "
                         "(spikes bit-identical, gradients close)")
            lines += [f"- FAILED {c['name']}: spikes equal {c['spikes_equal']}, grad error {c['grad_rel_error']:.2e}"
                      for c in p["failed"]]
        lines.append("")
    if "steps" in parts:
        s = parts["steps"]
        lines += ["## Training step", "", s.get("error") or summary_table(s["records"]), ""]
    if "training" in parts:
        t = parts["training"]
        lines += ["## Time to accuracy (twkd, CIFAR-10 JPEG copy)", ""]
        if "error" in t or "skipped" in t:
            lines.append(t.get("error") or f"skipped: {t['skipped']}")
        else:
            for name, run in t["runs"].items():
                lines.append(f"- {name}: exit {run['returncode']}, {run['wall_seconds']} s, "
                             f"{len(run['epochs'])} epochs"
                             + (f"; stderr: {run['stderr'][-300:]}" if "stderr" in run else ""))
            lines += ["", "| k | s to 30 % | s to 50 % | s to 70 % | s to 80 % | final top-1 |",
                      "| --- | --- | --- | --- | --- | --- |"]
            for k, row in t["time_to_accuracy"].items():
                cells = ["–" if row[str(x)] is None else f"{row[str(x)]:.0f}" for x in (30, 50, 70, 80)]
                final = "–" if row["final_top1"] is None else f"{row['final_top1']:.2f}"
                lines.append(f"| {k} | " + " | ".join(cells) + f" | {final} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/gpu_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", metavar="OUT_DIR", help="where gpu_check.json and gpu_check.md go")
    parser.add_argument("--data-root", help="folder of the CIFAR-10 JPEG copy (default: $SPIKEDISTILL_DATA)")
    parser.add_argument("--smoke", action="store_true",
                        help="toy sizes on a CPU: a check of the command, not a measurement")
    args = parser.parse_args(argv)
    return run_command(lambda: run_gpu_check(args.out, smoke=args.smoke, data_root=args.data_root))


if __name__ == "__main__":
    sys.exit(main())
