"""The study's stages — ``teacher`` (the ANN, plain CE), ``students`` (each objective × seed at T_max)
and ``report`` — each written into the state the moment it finishes and skipped when its result is
there; a half-trained run resumes from its ``latest.pt`` when its recipe is unchanged."""

from __future__ import annotations

import csv
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import torch

from spikedistill.checkpoint import load_checkpoint
from spikedistill.device import autocast, device_name, resolve_device
from spikedistill.errors import SpikeDistillError
from spikedistill.train.config import Config, load_config

from .budget import plan_epochs, print_budget, sync
from .console import say
from .profiles import PROFILES, ROOT, SMOKE, needs_teacher, student_config, student_plan, teacher_config
from .report import write_report
from .state import adopt_published, finished_with, load_state, portable_command, portable_config, save_state


def evaluate(checkpoint: Path, cfg: Config, device: torch.device) -> dict:
    """Top-1, energy (mJ per sample), SOPs and firing rate at every k in one pass (the eval JSON of
    docs/deployment.md), of the model a checkpoint holds, on its recipe's test images."""
    from spikedistill.data import batches, load_dataset
    from spikedistill.evaluate import fullrange_report

    ckpt = load_checkpoint(checkpoint)
    test_set = load_dataset(cfg.data.name, cfg.data.root, split="test")
    if cfg.data.test_subset:
        test_set = test_set.subset(min(cfg.data.test_subset, len(test_set)))
    loader = batches(test_set, 500, shuffle=False, device=device)
    with autocast(device, cfg.precision):  # as the loop's per-epoch test
        report = fullrange_report(ckpt.model(device=device), loader, max_timesteps=ckpt.max_timesteps, device=device)
    return {key: report[key] for key in ("timesteps", "top1", "energy_mj", "sops", "firing_rate", "samples")}


def same_recipe(run_dir: Path, cfg: Config) -> bool:
    """Whether ``run_dir`` holds a run of this very recipe (compared as validated data, so a recipe file
    written by another version with the same values still counts)."""
    try:
        return load_config(run_dir / "config.yaml").to_dict() == cfg.to_dict()
    except SpikeDistillError:
        return False


def run_stage(name: str, cfg, run_dir: Path, device: torch.device) -> dict:
    """Train ``cfg`` into ``run_dir`` (resuming a half-done run of the same recipe), then evaluate."""
    from spikedistill.train.loop import train

    resume = (run_dir / "latest.pt").is_file() and same_recipe(run_dir, cfg)
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)  # a different recipe's leftovers: start clean
    say(f"== {name}: {cfg.optim.epochs} epochs{' (resuming)' if resume else ''} → {run_dir} (load {_load()})")
    sync()
    tick = time.perf_counter()
    train(cfg, run_dir, resume=resume)
    sync()
    wall = time.perf_counter() - tick
    metrics = evaluate(run_dir / "latest.pt", cfg, device)  # the final model: no selection on the test set
    return {"config": portable_config(cfg.to_dict()), "device": device_name(device), "epochs": cfg.optim.epochs,
            "wall_seconds": round(wall, 1), "train_seconds": round(_train_seconds(run_dir), 1), "resumed": resume,
            "load": _load(), "loss": {"name": cfg.loss.name, "options": cfg.loss.options}, "seed": cfg.seed, **metrics}


def _train_seconds(run_dir: Path) -> float:
    """Training time summed over metrics.csv rows (survives resumes; excludes the test passes)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return float("nan")
    with path.open(newline="") as f:
        return sum(float(row["seconds"]) + 0.0 for row in csv.DictReader(f))


def run_all(args) -> int:
    profile = PROFILES[args.profile]
    out = Path(args.out)
    runs = Path(args.runs) if args.runs else (out / "runs" if args.smoke else ROOT / profile.default_runs)
    state_path = out / f"{profile.stem}.json" if profile.budgeted else runs / "state.json"
    state = load_state(state_path)
    if state.get("smoke", args.smoke) != args.smoke:
        raise SpikeDistillError(f"{state_path} holds a {'smoke' if state['smoke'] else 'full'} run; use another --out")
    state["smoke"] = args.smoke
    state["profile"] = profile.name
    command = portable_command("python benchmarks/cifar10_fullrange.py " + shlex.join(args.argv))
    if command not in state["commands"]:
        state["commands"].append(command)
    device = resolve_device(args.device)
    args.device = str(device)
    if device.type == "cuda":
        # Fixed shapes (drop_last, test batches of 500): let cudnn pick the fastest kernels once per shape,
        # and let any fp32 matmul outside autocast use TF32 tensor cores.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    state["device"] = device_name(device)
    state["torch"] = torch.__version__
    state["commit"] = args.commit or git_commit()
    students = student_plan(args)
    print_budget(args, students)
    if args.plan_only:
        return 0
    preflight(args)
    if args.smoke:
        from spikedistill.data import default_data_root

        source = Path(args.data_root) if args.data_root else default_data_root()
        args.data_root = str(write_smoke_data(source, out / "smoke_data"))
    stages = ("teacher", "students", "report") if args.stage == "all" else (args.stage,)

    if args.adopt:  # once device and data root are final: both are part of the recipe a run is matched with
        adopt_published(args, Path(args.adopt), state, runs)
    teacher_ckpt = runs / "teacher" / "best.pt"
    student_needs_teacher = any(needs_teacher(student_config(args, m, s, None, runs)) for m, s in students
                                if f"{m}-s{s}" not in state["students"])
    # The teacher stage runs when its result is missing — and again when students still need its
    # checkpoint and this machine does not have it (a fresh machine: the run folder is gone).
    if "teacher" in stages or ("students" in stages and student_needs_teacher):
        def make_teacher(epochs):
            return teacher_config(args, epochs, runs)

        plan = plan_epochs(args, "teacher", make_teacher, args.teacher_minutes, state, state_path, runs)
        cfg = make_teacher(plan["epochs"])
        lost = student_needs_teacher and not teacher_ckpt.is_file()
        if lost or not finished_with(state["teacher"], cfg, "teacher"):
            result = run_stage("teacher", cfg, runs / "teacher", device)
            if state["teacher"] is not None:
                result["retrained"] = state["teacher"].get("retrained", 0) + 1
            state["teacher"] = result
            save_state(state, state_path)
            say(f"teacher top-1 {result['top1'][0]:.2f}% in {result['wall_seconds']:.0f} s")
        else:
            say(f"teacher: done ({state['teacher']['top1'][0]:.2f}%), skipped")

    if "students" in stages:
        for method, seed in students:
            key = f"{method}-s{seed}"

            def make_student(epochs, method=method, seed=seed):
                return student_config(args, method, seed, epochs, runs)

            plan = plan_epochs(args, method, make_student, args.budget_minutes, state, state_path, runs)
            cfg = make_student(plan["epochs"])
            if finished_with(state["students"].get(key), cfg, key):
                say(f"{key}: done, skipped")
                continue
            result = run_stage(key, cfg, runs / key, device)
            result["method"] = method
            state["students"][key] = result
            save_state(state, state_path)
            say(f"{key}: top-1 " + " ".join(f"@{k} {v:.2f}" for k, v in zip(result["timesteps"], result["top1"]))
                + f" in {result['wall_seconds']:.0f} s")

    save_state(state, state_path)
    if "report" in stages:
        smoke = (f"{SMOKE['train_images']} train / {SMOKE['test_images']} test images, `{SMOKE['model']}` (widths "
                 f"{SMOKE['widths']}) on the CPU, teacher {SMOKE['epochs']['teacher']} epochs, students "
                 f"{SMOKE['epochs']['student']} epoch.")
        written = write_report(state, out, profile, smoke_note=smoke)
        say("wrote " + ", ".join(str(p) for p in written))
    missing = [f"{m}-s{s}" for m, s in students if f"{m}-s{s}" not in state["students"]]
    if args.stage == "all" and not missing:
        say("DONE")
    return 0


# --- the machine ---------------------------------------------------------------------------------

def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg()[:1]) + f" on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + (" (+ uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git checkout here; pass --commit SHA)"


def write_smoke_data(source_root: Path, target: Path) -> Path:
    """The first SMOKE images of each split as ``target/cifar10/{split}_jpeg.npz``, byte-for-byte the
    same JPEGs in the same format (header + scan + offsets + y), so the smoke run uses the real reader."""
    import numpy as np

    for split, count in (("train", SMOKE["train_images"]), ("test", SMOKE["test_images"])):
        path = target / "cifar10" / f"{split}_jpeg.npz"
        if path.is_file():
            continue
        source = source_root / f"{split}_jpeg.npz"
        if not source.is_file():
            source = source_root / "cifar10" / f"{split}_jpeg.npz"
        with np.load(source) as npz:
            offsets = npz["offsets"][: count + 1]
            scan = npz["scan"][offsets[0]: offsets[-1]]
            arrays = {"header": npz["header"], "scan": scan, "offsets": offsets - offsets[0], "y": npz["y"][:count]}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}.partial.npz")  # renamed into place: never half a file
        np.savez(partial, **arrays)
        os.replace(partial, path)
    return target


def preflight(args) -> None:
    """Fail in one line, before any training, on what would otherwise fail minutes in."""
    from spikedistill.data import default_data_root

    root = Path(args.data_root) if args.data_root else default_data_root()
    if not any((base / "train_jpeg.npz").is_file() for base in (root, root / "cifar10")):
        raise SpikeDistillError(f"CIFAR-10 (JPEG-q75 copy) not found under {root}; pass --data-root DIR "
                                "(the folder holding cifar10/train_jpeg.npz) or set SPIKEDISTILL_DATA")
    augment = teacher_config(args, None, Path(".")).data.augment
    if augment.crop_padding or augment.flip:
        try:
            import kornia  # noqa: F401  (GpuAugment's crop and flip are kornia ops)
        except ImportError:
            raise SpikeDistillError("random crop/flip need kornia, which is not installed here; pip install kornia "
                                    "(on a device machine: carry the wheels, see docs/benchmarks.md)") from None
