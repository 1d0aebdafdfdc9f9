"""CIFAR-10 full-range study: an ANN teacher, then SNN students, each scored at every timestep 1..T_max.

One teacher, then students of several objectives × seeds (issues 9 and 18; the claim is §1.10 of the method notes, docs/benchmarks.md).

Two profiles, each a set of YAML recipes (configs/) plus the overrides listed below, never recipes of
its own:

* ``--profile gpu`` (default): ResNet-19 students of every objective, recipes configs/cifar10/*_resnet19.yaml
  turned into a short schedule by ``GPU_OVERRIDES``, every student on the same wall-clock budget.
* ``--profile cpu``: the small SNN of configs/cifar10_cpu/*.yaml, sized for two CPU cores, trained for the
  epochs the recipes give (teacher once, then skd and twkd over 2 seeds, twkd with the paper's target,
  twce and tet over 1 seed). Writes ``cifar10_cpu.{json,md,png}``.

Stages, each checkpointing to disk and skipped when its result already exists:

1. ``teacher``  — the ANN, plain CE.
2. ``students`` — each objective × seed at T_max = 4.
3. ``report``   — ``OUT/<name>.md`` (top-1 and energy at every k, wall time, machine, seeds, commit,
   commands, the verdict) and ``OUT/<name>.png`` (the curves), written by benchmarks/fullrange_report.py.

The study's state is one small JSON (gpu: ``OUT/cifar10_fullrange.json``; cpu: ``RUNS/state.json``, the
published ``OUT/cifar10_cpu.json`` is derived from it). Checkpoints live under ``--runs``: a lost teacher
checkpoint is retrained, a half-trained student resumes from its ``latest.pt``, so a study can span
several commands or an interruption (Ctrl-C or SIGTERM stops after the current step, resumable): run the
same command again until it prints ``DONE``. With ``--command-minutes`` a run stops *before* a stage that
would not fit (exit code 75) instead of being killed in the middle of it.

    python benchmarks/cifar10_fullrange.py --device cuda --teacher-minutes 2 --budget-minutes 1.3 --seeds 0 1 --out results/
    python benchmarks/cifar10_fullrange.py --profile cpu --out results/ --runs runs/cifar10_cpu --log runs/cifar10_cpu.log
    python benchmarks/cifar10_fullrange.py --smoke --out /tmp/smoke                  # CPU, a few hundred images, < 1 min
    python benchmarks/cifar10_fullrange.py --profile cpu --smoke --out /tmp/smoke-cpu

Data: CIFAR-10 (JPEG-q75 copy) from --data-root, else $SPIKEDISTILL_DATA. Report numbers
on it as "CIFAR-10 (JPEG-q75 copy)": they sit somewhat below published CIFAR-10 numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.fullrange_report import gap_verdict, write_report  # noqa: E402,F401  (gap_verdict: tests)

from spikedistill.checkpoint import atomic_write_bytes, atomic_write_text, load_checkpoint  # noqa: E402
from spikedistill.cli import positive_int  # noqa: E402
from spikedistill.device import resolve_device  # noqa: E402
from spikedistill.errors import SpikeDistillError, os_error_message  # noqa: E402
from spikedistill.losses import create_loss  # noqa: E402
from spikedistill.train.config import Config, load_config  # noqa: E402

DATASET_LABEL = "CIFAR-10 (JPEG-q75 copy)"
MAX_TIMESTEPS = 4
METHODS = ("tet", "skd", "twkd", "tser", "tssd", "ckdsnn")  # the gpu profile's objectives
INCOMPLETE = 75  # exit code: stages remain, run the same command again (EX_TEMPFAIL)

# --- recipes: YAML files plus overrides ---------------------------------------------------------

# The gpu profile's short schedule, applied to the paper recipes (not a paper's): SGD-Nesterov, cosine
# to 0 over the budgeted epochs, weight decay on conv/linear weights only (§1.3), crop 4 + flip and
# nothing heavier (AutoAugment and Cutout regularise 300-epoch runs; a run of a few dozen epochs
# underfits with them). Speed (airbench's ideas, all in the loop): the uint8 dataset on the GPU, batched
# GPU augmentation, bf16 autocast, channels_last, batch 256, one test pass at the end.
GPU_OVERRIDES = ["data.name=cifar10_jpeg",
                 "data.augment={crop_padding: 4, flip: true, autoaugment: false, cutout: 0, erasing: 0.0}",
                 "optim.name=sgd", "optim.momentum=0.9", "optim.nesterov=true", "optim.weight_decay=5.0e-4",
                 "optim.decay_all=false", "optim.batch_size=256", "optim.schedule=cosine",
                 "precision=bf16", "channels_last=true"]
# One LIF for every student, so the table compares objectives and nothing else: the FR neuron
# (§1.3/§1.4: decay 0.5, threshold 1, hard reset, sigmoid surrogate α=4). TET's and CKDSNN's own recipes
# use a triangle surrogate (§4.3/§5.1); this benchmark does not. Every student trains at T = 4 (CKDSNN's
# recipe trains at T = 1; TSSD trains at T + 2) and is scored at k = 1..4.
GPU_STUDENT_OVERRIDES = ["optim.lr=0.1", f"timesteps={MAX_TIMESTEPS}", f"max_timesteps={MAX_TIMESTEPS}",
                         "model.options={decay: 0.5, threshold: 1.0, v_reset: 0.0, surrogate: sigmoid}",
                         # every student's best.pt at T_max here (the recipes select at the T their paper reports)
                         "log.best_by_timesteps=null"]


class Profile(NamedTuple):
    name: str
    stem: str                       # output file names: OUT/<stem>.{json|md|png}
    title: str
    teacher: str                    # teacher recipe, relative to the repository root
    students: dict                  # method → recipe
    plan: tuple = ()                # default (method, seed) order; empty: every method × --seeds
    teacher_overrides: tuple = ()
    student_overrides: tuple = ()
    budgeted: bool = True           # epochs from a wall-clock budget (gpu) or from the recipes (cpu)
    default_runs: str = "runs/cifar10_fullrange"


PROFILES = {
    "gpu": Profile(
        "gpu", "cifar10_fullrange", "CIFAR-10 full-range benchmark", "configs/cifar10/teacher_resnet19.yaml",
        {m: f"configs/cifar10/{m}_resnet19.yaml" for m in METHODS},
        teacher_overrides=(*GPU_OVERRIDES, "optim.lr=0.2"),
        student_overrides=(*GPU_OVERRIDES, *GPU_STUDENT_OVERRIDES)),
    "cpu": Profile(
        "cpu", "cifar10_cpu", "CIFAR-10 full range on two CPU cores", "configs/cifar10_cpu/teacher_small_cnn.yaml",
        {m: f"configs/cifar10_cpu/{m}_small_cnn.yaml"
         for m in ("skd", "twkd", "twkd_mean", "twce", "ce", "tet", "dkd", "tssd", "tser", "ckdsnn")},
        # The comparisons the claims need come first (one seed of each, then the second seeds), so a study
        # cut short still answers as many as it can; one-seed baselines last.
        plan=(("skd", 0), ("twkd", 0), ("skd", 1), ("twkd", 1),
              ("tser", 0), ("ckdsnn", 0), ("ce", 0), ("tssd", 0),
              ("tser", 1), ("ckdsnn", 1), ("ce", 1), ("tssd", 1),
              ("twkd_mean", 0), ("twce", 0), ("dkd", 0), ("tet", 0)),
        budgeted=False, default_runs="runs/cifar10_cpu"),
}
ALL_METHODS = sorted({m for p in PROFILES.values() for m in p.students})

# --smoke: the same stages on a few hundred images on the CPU with a narrow small_cnn, for CI.
# Its images are the first N of each split, re-packed into a small JPEG npz of the same format (the same
# reader, without decoding all 60,000 images in CI). Epochs are fixed (teacher 2, students 1) instead of
# measured: the step-time probe alone would take longer than the smoke budget on a 2-core CI machine.
SMOKE = {"model": "small_cnn", "widths": [8, 16, 32], "train_images": 128, "test_images": 128, "batch_size": 32,
         "epochs": {"teacher": 2, "student": 1}, "budget_minutes": 0.05, "teacher_minutes": 0.05}
STARTUP_SECONDS = 20.0     # per stage on a GPU: dataset to device, model build, cudnn autotuning, final test
SESSION_MINUTES = 30.0     # device time per session (issue 9)
COMMAND_MINUTES = 10.0     # one device command (issue 9)


def recipe_overrides(args, seed: int, epochs: int | None) -> list[str]:
    """What a study run sets on top of a profile's recipe: seed, epochs, device, data location."""
    sets = [f"seed={seed}", f"device={args.device}", "log.progress=false", "log.tensorboard=false"]
    if epochs is not None:
        sets += [f"optim.epochs={epochs}", f"log.eval_every={epochs}"]  # the loop tests once, at the end
    if args.compile:
        sets.append("compile=true")
    if args.data_root:
        sets.append(f"data.root={Path(args.data_root).resolve()}")
    if args.smoke:
        sets += [f"model.name={SMOKE['model']}", f"model.options.widths={SMOKE['widths']}",
                 f"optim.batch_size={SMOKE['batch_size']}", "data.subset=null", "data.test_subset=null"]
    else:
        sets += [f"data.{key}={'null' if value is None else value}"
                 for key, value in (("subset", args.train_images), ("test_subset", args.test_images))
                 if value is not None]
    return sets


def teacher_config(args, epochs: int | None, runs: Path) -> Config:
    profile = PROFILES[args.profile]
    return load_config(ROOT / profile.teacher,
                       [*profile.teacher_overrides, *recipe_overrides(args, args.teacher_seed, epochs), *args.teacher_set])


def student_config(args, method: str, seed: int, epochs: int | None, runs: Path) -> Config:
    profile = PROFILES[args.profile]
    cfg = load_config(ROOT / profile.students[method],
                      [*profile.student_overrides, *recipe_overrides(args, seed, epochs), *args.student_set])
    if needs_teacher(cfg):  # the study trains the teacher as its own stage, never from teacher.recipe
        cfg.teacher.checkpoint, cfg.teacher.recipe = str(runs / "teacher" / "best.pt"), None
    return cfg


def needs_teacher(cfg: Config) -> bool:
    return create_loss(cfg.loss.name, **cfg.loss.options).needs_teacher


# --- state: one small JSON, written atomically after every stage --------------------------------

def load_state(path: Path) -> dict:
    if path.is_file():
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise SpikeDistillError(f"the study's state '{path}' is damaged ({type(exc).__name__}); restore it from a copy "
                                    "(a published JSON can be taken in with --adopt), or move it aside to start afresh") from None
        if not isinstance(state, dict):
            raise SpikeDistillError(f"the study's state '{path}' is not a JSON object; restore it from a copy or move it aside")
        return state
    return {"dataset": DATASET_LABEL, "max_timesteps": MAX_TIMESTEPS, "plan": {}, "teacher": None,
            "students": {}, "commands": []}


def save_state(state: dict, path: Path) -> None:
    atomic_write_text(json.dumps(state, indent=1) + "\n", path)  # a killed command never leaves half a file


def adopt_published(args, path: Path, state: dict, runs: Path) -> list[str]:
    """Take the finished runs of a published result file (an earlier sitting's ``cifar10_cpu.json``) into
    the state, so that a study resumed on a machine that lost its run folder trains only what is missing.
    A run is taken only when its method's recipe still trains it for the epochs it was trained for; each
    taken entry says where it came from, and the report marks it."""
    if not path.is_file():
        raise SpikeDistillError(f"--adopt {path}: no such file; pass a published result file such as results/cifar10_cpu.json")
    try:
        published = json.loads(path.read_text())
        runs_published, machine = published["runs"], published["machine"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SpikeDistillError(f"--adopt {path}: not a published study result ({exc}); pass results/cifar10_cpu.json") from None
    label = f"{path.name} at commit {published.get('commit')}"
    profile, taken = PROFILES[args.profile], []
    for run in runs_published:
        method, seed, key = run["method"], run["seed"], f"{run['method']}-s{run['seed']}"
        if key in state["students"] or method not in profile.students:
            continue
        cfg = student_config(args, method, seed, None, runs)
        if run["epochs"] != cfg.optim.epochs:
            say(f"{key}: published with {run['epochs']} epochs, the recipe now trains {cfg.optim.epochs}; not adopted")
            continue
        ks = sorted(run["top1"], key=int)
        state["students"][key] = {
            "config": json.loads(json.dumps(cfg.to_dict())), "device": machine, "epochs": run["epochs"],
            "wall_seconds": None, "train_seconds": run["train_seconds"], "resumed": False, "load": "—",
            "loss": {"name": cfg.loss.name, "options": cfg.loss.options}, "seed": seed, "method": method,
            "timesteps": [int(k) for k in ks], "top1": [run["top1"][k] for k in ks],
            "energy_mj": [run["energy_uj"][k] / 1e3 for k in ks], "adopted": label}
        taken.append(key)
    if taken:
        say(f"adopted from {label}: {', '.join(taken)}")
    return taken


# --- budget: measure the loop's own step time, then epochs = budget / epoch time -----------------

def seconds_per_step(cfg, scratch: Path, short: int = 3, long: int = 13) -> float:
    """Time the real loop (teacher forward, augmentation, objective, optimizer: everything a step does)
    for ``short`` and ``long`` steps; the difference cancels start-up. A first run of ``short`` steps,
    not used, pays the one-time costs (lazy imports, CUDA context, cudnn autotuning for these shapes)."""
    from spikedistill.train.loop import train

    timings = []
    for steps in (short, short, long):
        shutil.rmtree(scratch, ignore_errors=True)
        _sync()
        tick = time.perf_counter()
        train(cfg, scratch, stop_after_steps=steps, verbose=False)
        _sync()
        timings.append(time.perf_counter() - tick)
    shutil.rmtree(scratch, ignore_errors=True)
    # A noisy machine can make the difference meaningless (≤ 0 on a busy CPU); never plan on less than
    # half the long run's whole time per step — wrong on the safe side (fewer epochs), not 10,000 epochs.
    return max((timings[2] - timings[1]) / (long - short), 0.5 * timings[2] / long)


def epochs_for_budget(budget_minutes: float, epoch_seconds: float) -> int:
    """Whole epochs that fit the budget (at least one): the cosine schedule then ends on time."""
    return max(1, int(budget_minutes * 60 // epoch_seconds))


def plan_epochs(args, name: str, make_config, budget_minutes: float, state: dict, state_path: Path,
                runs: Path) -> dict:
    """Epochs of this stage: fixed (--epochs, smoke, or the recipe's own for the cpu profile), or those
    that fill ``budget_minutes`` of training (measured once). Kept in the state file: a later command,
    or a fresh machine, reuses them so recipes stay identical."""
    plan = state["plan"].get(name)
    if plan is not None and PROFILES[args.profile].budgeted:  # fixed recipes: their epochs, read again below
        changed = plan["epochs"] != args.epochs if args.epochs else plan["budget_minutes"] != budget_minutes
        if changed and not args.smoke:
            raise SpikeDistillError(
                f"{state_path} planned '{name}' for {plan['budget_minutes'] or plan['epochs']} "
                f"{'min' if plan['budget_minutes'] else 'epochs'}, not what this command asks; pass the same budget, "
                "or another --out for a new comparison")
        return plan
    fixed = args.epochs or (args.smoke and SMOKE["epochs"]["teacher" if name == "teacher" else "student"])
    if not fixed and not PROFILES[args.profile].budgeted:
        fixed = make_config(None).optim.epochs  # the recipe's own
    if fixed:
        plan = {"epochs": fixed, "seconds_per_epoch": None, "budget_minutes": None}
    else:
        probe = make_config(1000)  # long schedule: the lr barely moves during the probe
        from spikedistill.data import load_dataset, num_batches

        images = len(load_dataset(probe.data.name, probe.data.root, split="train"))
        images = min(images, probe.data.subset or images)
        steps_per_epoch = num_batches(images, probe.optim.batch_size, drop_last=True)
        step = seconds_per_step(probe, runs / f"_probe_{name}")
        epoch_seconds = step * steps_per_epoch
        epochs = epochs_for_budget(budget_minutes, epoch_seconds)
        plan = {"epochs": epochs, "seconds_per_epoch": round(epoch_seconds, 3), "seconds_per_step": round(step, 5),
                "budget_minutes": budget_minutes}
    state["plan"][name] = plan
    save_state(state, state_path)
    say(f"plan {name}: {plan['epochs']} epochs"
        + (f" × {plan['seconds_per_epoch']:.1f} s (budget {budget_minutes:g} min)" if plan["seconds_per_epoch"] else ""))
    return plan


def print_budget(args, students: list[tuple[str, int]]) -> None:
    """The planned wall time per stage, before anything runs, so the run can be fitted to the limits."""
    if args.epochs or args.smoke or not PROFILES[args.profile].budgeted:
        teacher = args.epochs or (SMOKE["epochs"]["teacher"] if args.smoke else "the recipe's")
        student = args.epochs or (SMOKE["epochs"]["student"] if args.smoke else "the recipe's")
        print(f"planned: fixed epochs (no time budget): teacher {teacher}, {len(students)} students × {student}")
        return
    teacher = args.teacher_minutes + STARTUP_SECONDS / 60
    student = args.budget_minutes + STARTUP_SECONDS / 60
    probes = (1 + len({m for m, _ in students})) * 0.25  # three short loop runs time each objective's step
    total = teacher + probes + student * len(students) + 0.5
    per_command = args.command_minutes or COMMAND_MINUTES - 0.5
    commands = max(1, math.ceil(total / per_command))
    print(f"planned budget: teacher {args.teacher_minutes:g} min training (~{teacher:.1f} min with start-up); "
          f"{len(students)} students × {args.budget_minutes:g} min (~{student:.1f} min each); "
          f"step-time probes ~{probes:.1f} min; report ~0.5 min")
    print(f"  total ~{total:.1f} min → about {commands} device command(s) of ≤{per_command:g} min"
          f"{'' if total <= SESSION_MINUTES - 3 else f'; MORE than one {SESSION_MINUTES:g}-min GPU session: lower --budget-minutes or split --methods/--seeds'}")


# --- stages -------------------------------------------------------------------------------------

def evaluate(checkpoint: Path, cfg: Config, device: torch.device) -> dict:
    """Top-1, energy (mJ per sample), SOPs and firing rate at every k in one pass (the eval JSON of docs/deployment.md), of
    the model a checkpoint holds, on its recipe's test images."""
    from spikedistill.data import batches, load_dataset
    from spikedistill.evaluate import fullrange_report

    ckpt = load_checkpoint(checkpoint)
    test_set = load_dataset(cfg.data.name, cfg.data.root, split="test")
    if cfg.data.test_subset:
        test_set = test_set.subset(min(cfg.data.test_subset, len(test_set)))
    loader = batches(test_set, 500, shuffle=False, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with autocast:
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
    _sync()
    tick = time.perf_counter()
    train(cfg, run_dir, resume=resume)
    _sync()
    wall = time.perf_counter() - tick
    metrics = evaluate(run_dir / "latest.pt", cfg, device)  # the final model: no selection on the test set
    return {"config": cfg.to_dict(), "device": device_name(device), "epochs": cfg.optim.epochs, "wall_seconds": round(wall, 1),
            "train_seconds": round(_train_seconds(run_dir), 1), "resumed": resume, "load": _load(),
            "loss": {"name": cfg.loss.name, "options": cfg.loss.options}, "seed": cfg.seed, **metrics}


def _train_seconds(run_dir: Path) -> float:
    """Training time summed over metrics.csv rows (survives resumes; excludes the test passes)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return float("nan")
    with path.open(newline="") as f:
        return sum(float(row["seconds"]) + 0.0 for row in csv.DictReader(f))


class Clock:
    """The --command-minutes guard: refuse to start a stage that would not finish in this command."""

    def __init__(self, minutes: float | None):
        self.deadline = None if minutes is None else time.monotonic() + 60 * minutes

    def fits(self, seconds: float) -> bool:
        return self.deadline is None or time.monotonic() + seconds <= self.deadline


def stage_seconds(plan: dict) -> float:
    return (plan["seconds_per_epoch"] or 0.0) * plan["epochs"] + STARTUP_SECONDS


def finished_with(entry: dict | None, cfg: Config, name: str) -> bool:
    """Whether a stored result was trained with this very recipe; one of another recipe (an edited
    YAML) is said and trained again."""
    if entry is None:
        return False
    if entry["config"] == json.loads(json.dumps(cfg.to_dict())):
        return True
    say(f"{name}: finished with another recipe than the current one; training it again")
    return False


def student_plan(args) -> list[tuple[str, int]]:
    """(method, seed) in the order they run: the profile's plan, or every --methods × --seeds."""
    profile = PROFILES[args.profile]
    unknown = [m for m in args.methods or () if m not in profile.students]
    if unknown:
        raise SpikeDistillError(f"--methods {' '.join(unknown)}: not in the {profile.name} profile; "
                                f"known: {', '.join(profile.students)}")
    if args.methods is None and args.seeds is None and profile.plan:
        return list(profile.plan)
    return [(m, s) for m in (args.methods or list(profile.students)) for s in (args.seeds or [0])]


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
    if args.adopt:
        adopt_published(args, Path(args.adopt), state, runs)
    command = "python benchmarks/cifar10_fullrange.py " + shlex.join(args.argv)
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
    clock = Clock(args.command_minutes)
    stages = ("teacher", "students", "report") if args.stage == "all" else (args.stage,)

    def stop_here(what: str) -> int:
        save_state(state, state_path)
        left = [f"{m}-s{s}" for m, s in students if f"{m}-s{s}" not in state["students"]]
        say(f"INCOMPLETE: {what} would not finish within --command-minutes {args.command_minutes:g}; "
            f"{len(left)} student(s) left ({', '.join(left) or 'none'}). Run the same command again to continue.")
        return INCOMPLETE

    teacher_ckpt = runs / "teacher" / "best.pt"
    student_needs_teacher = any(needs_teacher(student_config(args, m, s, None, runs)) for m, s in students
                                if f"{m}-s{s}" not in state["students"])
    # The teacher stage runs when its result is missing — and again when students still need its
    # checkpoint and this machine does not have it (a fresh device machine: the cache is gone).
    if "teacher" in stages or ("students" in stages and student_needs_teacher):
        make = lambda epochs: teacher_config(args, epochs, runs)
        plan = plan_epochs(args, "teacher", make, args.teacher_minutes, state, state_path, runs)
        cfg = make(plan["epochs"])
        if not finished_with(state["teacher"], cfg, "teacher") or (student_needs_teacher and not teacher_ckpt.is_file()):
            if not clock.fits(stage_seconds(plan)):
                return stop_here("the teacher")
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
            make = lambda epochs, m=method, s=seed: student_config(args, m, s, epochs, runs)
            plan = plan_epochs(args, method, make, args.budget_minutes, state, state_path, runs)
            cfg = make(plan["epochs"])
            if finished_with(state["students"].get(key), cfg, key):
                say(f"{key}: done, skipped")
                continue
            if not clock.fits(stage_seconds(plan)):
                return stop_here(key)
            result = run_stage(key, cfg, runs / key, device)
            result["method"] = method
            state["students"][key] = result
            save_state(state, state_path)
            say(f"{key}: top-1 " + " ".join(f"@{k} {v:.2f}" for k, v in zip(result["timesteps"], result["top1"]))
                + f" in {result['wall_seconds']:.0f} s")

    save_state(state, state_path)
    if "report" in stages or args.stage == "all":
        smoke = (f"{SMOKE['train_images']} train / {SMOKE['test_images']} test images, `{SMOKE['model']}` (widths "
                 f"{SMOKE['widths']}) on the CPU, teacher {SMOKE['epochs']['teacher']} epochs, students "
                 f"{SMOKE['epochs']['student']} epoch.")
        written = write_report(state, out, profile, smoke_note=smoke)
        say("wrote " + ", ".join(str(p) for p in written))
    missing = [f"{m}-s{s}" for m, s in students if f"{m}-s{s}" not in state["students"]]
    if args.stage == "all" and not missing:
        say("DONE")
    return 0


# --- environment --------------------------------------------------------------------------------

def say(text: str) -> None:
    """A progress line, time-stamped, flushed (the study's log is read while it runs)."""
    print(f"[{datetime.now().strftime('%Y-%m-%d %H:%M:%S')}] {text}", flush=True)


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg()[:1]) + f" on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"CPU ({model}, {torch.get_num_threads()} threads)"


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
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
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(buffer.getvalue(), path)  # a killed or full-disk write never leaves half an archive
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


class Tee:
    """stdout to the terminal and, appended, to the --log file."""

    def __init__(self, stream, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.stream, self.file = stream, path.open("a", buffering=1)

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="gpu", choices=sorted(PROFILES),
                        help="gpu: ResNet-19, every objective, time budgets (default); cpu: the small SNN of configs/cifar10_cpu")
    parser.add_argument("--device", default="auto", help="cuda, cuda:N, cpu or auto (default)")
    parser.add_argument("--budget-minutes", type=float, default=None,
                        help="gpu: training minutes per student, the same for every objective (default 6; smoke: tiny)")
    parser.add_argument("--teacher-minutes", type=float, default=None, help="gpu: training minutes of the teacher (default 2.5)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="fixed epochs for every stage instead of a time budget or the recipe's")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="student seeds (default: 0; cpu: 0 1 for skd and twkd, 0 for the others)")
    parser.add_argument("--teacher-seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=None, choices=ALL_METHODS,
                        help=f"objectives (default: every one of the profile; gpu: {' '.join(METHODS)})")
    parser.add_argument("--stage", default="all", choices=("teacher", "students", "report", "all"))
    parser.add_argument("--out", default="results", help="where the markdown, PNG and JSON go (default results/)")
    parser.add_argument("--runs", default=None,
                        help="checkpoint cache (default runs/cifar10_fullrange or runs/cifar10_cpu; smoke: OUT/runs)")
    parser.add_argument("--log", default=None, help="also append every progress line to this file")
    parser.add_argument("--data-root", default=None, help="folder holding cifar10/train_jpeg.npz (default $SPIKEDISTILL_DATA)")
    parser.add_argument("--train-images", type=positive_int, default=None, help="first N training images (default: the recipe's)")
    parser.add_argument("--test-images", type=positive_int, default=None, help="first N test images (default all 10,000)")
    parser.add_argument("--compile", action="store_true", help="torch.compile each model (pays compile time per stage)")
    parser.add_argument("--command-minutes", type=float, default=None,
                        help="stop (exit 75) before a stage that would end after this many minutes; re-run to continue")
    parser.add_argument("--teacher-set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for the teacher")
    parser.add_argument("--student-set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every student")
    parser.add_argument("--adopt", default=None, metavar="JSON",
                        help="take the finished runs of a published result file (results/cifar10_cpu.json) whose recipes "
                             "are unchanged, instead of training them again")
    parser.add_argument("--commit", default=None, help="the commit to record (default: git rev-parse HEAD)")
    parser.add_argument("--plan-only", action="store_true", help="print the planned budget and exit")
    parser.add_argument("--smoke", action="store_true",
                        help=f"CI mode: CPU, {SMOKE['train_images']} train / {SMOKE['test_images']} test images, {SMOKE['model']}")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.smoke:
        args.device = "cpu"
        args.budget_minutes = SMOKE["budget_minutes"] if args.budget_minutes is None else args.budget_minutes
        args.teacher_minutes = SMOKE["teacher_minutes"] if args.teacher_minutes is None else args.teacher_minutes
        torch.set_num_threads(min(2, torch.get_num_threads()))
    args.budget_minutes = 6.0 if args.budget_minutes is None else args.budget_minutes
    args.teacher_minutes = 2.5 if args.teacher_minutes is None else args.teacher_minutes
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    tee = None
    try:
        if args.log:
            tee = Tee(sys.stdout, Path(args.log))
        with contextlib.redirect_stdout(tee) if tee else contextlib.nullcontext():
            return run_all(args)
    except SpikeDistillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an unwritable --log, --out or --runs, a full disk
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the loop wrote latest.pt before stopping
        with contextlib.redirect_stdout(tee) if tee else contextlib.nullcontext():
            say("interrupted: the current stage saved its latest.pt; run the same command again to continue")
        return 130
    finally:
        if tee:
            tee.close()


if __name__ == "__main__":
    sys.exit(main())
