"""Epochs per stage: fixed (``--epochs``, the smoke run, or the recipe's own for a profile of fixed
recipes), or as many as fill a wall-clock budget, from the loop's own measured step time. The plan is
kept in the state, so a later command, or a fresh machine, trains the same recipes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from spikedistill.errors import SpikeDistillError

from .console import say
from .profiles import PROFILES, SMOKE, fixed_epochs
from .state import save_state

STARTUP_SECONDS = 20.0  # per stage on a GPU: dataset to device, model build, cudnn autotuning, final test


def sync() -> None:
    """Wait for the GPU, so wall-clock times include its work."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def seconds_per_step(cfg, scratch: Path, short: int = 3, long: int = 13) -> float:
    """Time the real loop (teacher forward, augmentation, objective, optimizer: everything a step does)
    for ``short`` and ``long`` steps; the difference cancels start-up. A first run of ``short`` steps,
    not used, pays the one-time costs (lazy imports, CUDA context, cudnn autotuning for these shapes)."""
    from spikedistill.train.loop import train

    timings = []
    for steps in (short, short, long):
        shutil.rmtree(scratch, ignore_errors=True)
        sync()
        tick = time.perf_counter()
        train(cfg, scratch, stop_after_steps=steps, verbose=False)
        sync()
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
    fixed = fixed_epochs(args, name, make_config)
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
    per_epoch = plan["seconds_per_epoch"]
    say(f"plan {name}: {plan['epochs']} epochs"
        + (f" × {per_epoch:.1f} s (budget {budget_minutes:g} min)" if per_epoch else ""))
    return plan


def print_budget(args, students: list[tuple[str, int]]) -> None:
    """The planned wall time per stage, before anything runs."""
    if args.epochs or args.smoke or not PROFILES[args.profile].budgeted:
        teacher = args.epochs or (SMOKE["epochs"]["teacher"] if args.smoke else "the recipe's")
        student = args.epochs or (SMOKE["epochs"]["student"] if args.smoke else "the recipe's")
        print(f"planned: fixed epochs (no time budget): teacher {teacher}, {len(students)} students × {student}")
        return
    teacher = args.teacher_minutes + STARTUP_SECONDS / 60
    student = args.budget_minutes + STARTUP_SECONDS / 60
    probes = (1 + len({m for m, _ in students})) * 0.25  # three short loop runs time each objective's step
    total = teacher + probes + student * len(students) + 0.5
    print(f"planned budget: teacher {args.teacher_minutes:g} min training (~{teacher:.1f} min with start-up); "
          f"{len(students)} students × {args.budget_minutes:g} min (~{student:.1f} min each); "
          f"step-time probes ~{probes:.1f} min; report ~0.5 min; total ~{total:.1f} min")
