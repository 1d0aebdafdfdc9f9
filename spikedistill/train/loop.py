"""The one training loop, for ANN teachers (``model.spiking: false``) and SNN students alike.

Data flows one way: GPU-resident uint8 dataset → batched augmentation → model ``[T, B, K]`` →
objective → optimizer. Each epoch ends with a one-pass full-range test (top-1 at every k ≤ T_max),
a ``metrics.csv`` row, and atomically written ``latest.pt`` (+ ``best.pt`` when it improved).

    train(cfg, out_dir)                     # build_run → (resume) → train_epoch / evaluate_epoch ...
    train(cfg, out_dir, resume=True)        # continues exactly where latest.pt stopped, mid-epoch too

The pieces: :func:`~.run.build_run` (what a run is made of), :class:`~.state.TrainState` (what a
checkpoint holds about progress, with :func:`~.state.save` and :func:`~.state.resume_state`),
:func:`train_epoch`, :func:`evaluate_epoch`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import device as device_precision
from ..checkpoint import load_checkpoint
from ..errors import SpikeDistillError
from ..evaluate import fullrange_accuracy, fullrange_accuracy_events
from ..io import atomic_write_text, remove_stale_temp_files
from ..registry import import_modules
from . import distributed as dist_utils
from .config import Config, dump_config, with_absolute_paths
from .guards import NonFiniteLoss, StopFlag, check_training_memory
from .metrics_log import MetricsLog
from .progress import Stopwatch, progress
from .rng import seed_everything
from .run import Run, build_run
from .runlock import RunLock
from .state import TrainState, resume_changes, resume_state, save
from .task import DistillationTask


def train(cfg: Config, out_dir: str | Path, resume: bool = False, stop_after_steps: int | None = None,
          verbose: bool = True, build: Callable[[Config, object], Run] = build_run) -> dict:
    """Train ``cfg`` into ``out_dir``; returns ``{"top1": {k: %} (last evaluation), "best_top1": %,
    "out": dir, "step": n, "stopped": bool, "model": the trained nn.Module}``.

    ``stop_after_steps`` ends the run after that many optimizer steps (counted from the start of the
    run), writing ``latest.pt`` mid-epoch — what a crash or Ctrl-C does, on purpose (resume tests).
    ``build(cfg, ctx)`` makes the :class:`~.run.Run` (:func:`~.run.build_run` from the recipe; ``sd.fit``
    hands in the user's own model, data and teacher).
    """
    out_dir = Path(out_dir)
    import_modules(cfg.imports)  # a user's registrations (spikedistill --import), again on --resume
    cfg = with_absolute_paths(cfg)  # config.yaml and the checkpoints resolve from any directory (--resume)
    ctx = dist_utils.setup(cfg.device, cfg.distributed.backend)
    say = print if (verbose and ctx.main) else (lambda *a, **k: None)
    lock = RunLock(out_dir)
    try:
        refused = None
        if ctx.main:
            try:
                lock.acquire()  # one run per folder, before any work: a second one stops here, saying whose it is
                if not resume:  # checked under the lock: no second run slips in between
                    check_holds_no_run(out_dir)
            except SpikeDistillError as exc:
                refused = str(exc)
        refused = dist_utils.broadcast_object(refused, ctx)  # every process stops, none waits for rank 0
        if refused:
            raise SpikeDistillError(refused)
        if resume:  # before the data: a recipe changed under a run is one line, not minutes later
            check_resumable(cfg, out_dir)
        seed_everything(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        run = build(cfg, ctx)
        if cfg.model.spiking and not run.events:
            check_training_memory(run.model, run.inputs["shape"], run.batch_size, run.train_timesteps, run.device)
        if resume:
            state = resume_state(run, out_dir, ctx, say)
        else:
            state = TrainState()
            seed_everything(cfg.seed + ctx.rank)  # augmentation draws differ per rank
        task = DistillationTask(torch.compile(run.model) if cfg.compile else run.model, run.objective, run.teacher,
                                train_timesteps=None if run.events else run.train_timesteps,
                                teacher_features=run.teacher_features, teacher_train_mode=cfg.teacher.train_mode)
        runner = task
        if ctx.distributed:  # one module: the student's and the objective's gradients are averaged together
            runner = nn.parallel.DistributedDataParallel(task,
                                                         device_ids=[ctx.device] if ctx.device.type == "cuda" else None)

        if ctx.main:
            out_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(out_dir)  # left by a run killed (SIGKILL, power cut) mid-write
            atomic_write_text(dump_config(cfg), out_dir / "config.yaml")
        log = MetricsLog(out_dir, state.epoch, cfg.log.tensorboard) if ctx.main else None
        tests = len(run.test_set) if run.test_set is not None else "no"
        say(f"{cfg.model.name} ({'SNN' if cfg.model.spiking else 'ANN'}, T={run.train_timesteps}) · loss "
            f"{cfg.loss.name} · {len(run.train_set)} train / {tests} test images of {cfg.data.name} · "
            f"{cfg.optim.epochs} epochs × {run.steps_per_epoch} steps · {ctx.device}{' bf16' if use_bf16(run) else ''} "
            f"· {ctx.world_size} process(es) → {out_dir} · best.pt by "
            f"{selection_column(cfg)}"
            f"{' · teacher in train mode' if run.teacher is not None and cfg.teacher.train_mode else ''}")

        with StopFlag() as stop:
            for epoch in range(state.epoch, cfg.optim.epochs):
                row = train_epoch(run, task, runner, state, ctx, out_dir, stop, stop_after_steps, say, log)
                if row is None:  # stopped mid-epoch; latest.pt holds where
                    return result(out_dir, state, run, stopped=True)
                tick = time.perf_counter()
                tested = evaluate_epoch(run, state, epoch) if ctx.main else {}
                improved = dist_utils.broadcast_object(tested.pop("improved", False), ctx)
                timing = {"seconds": row.pop("seconds") + time.perf_counter() - tick,  # the test pass included
                          "teacher_seconds": row.pop("teacher_seconds")}
                row.update(**tested, best_by=selection_column(cfg), **timing)
                state.best = dist_utils.broadcast_object(state.best, ctx)
                state.epoch, state.step_in_epoch = epoch + 1, 0
                metrics = {"top1": state.top1, "best_top1": state.best, "best_by": selection_column(cfg)}
                if ctx.main:  # the row first: a crash before latest.pt redoes the epoch, and resume drops its row
                    log.write(row)
                if improved:
                    save(run, state, ctx, out_dir / "best.pt", metrics, with_state=False)
                save(run, state, ctx, out_dir / "latest.pt", metrics)
                if ctx.main:
                    say(epoch_line(row, state.top1, cfg.eval_timesteps))
        if log is not None:
            log.close()
        dist_utils.barrier(ctx)
        return result(out_dir, state, run, stopped=False)
    finally:
        lock.release()
        dist_utils.cleanup(ctx)


def check_resumable(cfg: Config, out_dir: Path) -> None:
    """Refuse a resume whose recipe changed what the run is (its model, data, optimizer kind, seed...)."""
    changes = resume_changes(load_checkpoint(out_dir / "latest.pt").config, with_absolute_paths(cfg).to_dict())
    if changes:
        raise SpikeDistillError(f"--resume: the run's recipe changed since it started ({'; '.join(changes[:3])}); a "
                                "run continues with its own recipe: undo the change (in config.yaml or the override), "
                                "or start a new run with another --out")


def check_holds_no_run(out_dir: Path) -> None:
    """A new run never writes into a folder with another run's checkpoints."""
    held = [name for name in ("latest.pt", "best.pt") if (out_dir / name).exists()]
    if held:
        raise SpikeDistillError(f"'{out_dir}' already holds a run ({' and '.join(held)}); continue it with --resume "
                                "or choose another --out")


def result(out_dir: Path, state: TrainState, run: Run, stopped: bool) -> dict:
    return {"out": str(out_dir), "top1": state.top1, "best_top1": state.best, "step": state.step, "stopped": stopped,
            "model": run.model}


def use_bf16(run: Run) -> bool:
    return device_precision.use_bf16(run.device, run.cfg.precision)


def autocast(run: Run):
    """The run's precision for its steps and its per-epoch test, decided where ``spikedistill eval`` decides it."""
    return device_precision.autocast(run.device, run.cfg.precision)


def train_epoch(run: Run, task: DistillationTask, runner: nn.Module, state: TrainState, ctx, out_dir: Path,
                stop: StopFlag,
                stop_after_steps: int | None, say=print, log: MetricsLog | None = None) -> dict | None:
    """One epoch of optimizer steps (the rest of it, after a mid-epoch resume) → its metrics row, or
    None when a signal or ``stop_after_steps`` stopped it (``latest.pt`` written). ``runner`` is ``task``
    or its DistributedDataParallel wrapper."""
    cfg, model, device = run.cfg, run.model, run.device
    from ..data import batches

    epoch, skip = state.epoch, state.step_in_epoch
    task.objective.set_epoch(epoch)
    # The epoch's order and augmentation are a function of (seed, epoch, rank), apart from the global RNG:
    # after a mid-epoch resume the stream starts at the first batch not yet done.
    stream = batches(run.train_set, run.batch_size, shuffle=True, augment=run.augment, device=device, drop_last=True,
                     seed=cfg.seed, epoch=epoch, rank=ctx.rank, world_size=ctx.world_size, start=skip)
    task.train()
    partial, state.partial = state.partial, {}
    sums = {k: torch.tensor(v, device=device) for k, v in partial.get("sums", {}).items()}
    correct, seen = partial.get("correct", 0), partial.get("seen", 0)
    task.teacher_clock = teacher_time = Stopwatch(device.type == "cuda", partial.get("teacher_seconds", 0.0))
    started = time.perf_counter() - partial.get("seconds", 0.0)
    nonfinite = NonFiniteLoss()
    trained = [p for g in run.optimizer.param_groups for p in g["params"]]
    bar = progress(stream, total=run.steps_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}",
                   enabled=cfg.log.progress and ctx.main, batch_size=cfg.optim.batch_size,
                   every_seconds=cfg.log.progress_every_seconds)
    step_in_epoch = skip  # stays so when the interruption came after the epoch's last step
    for step_in_epoch, (images, labels) in enumerate(bar, start=skip + 1):
        if run.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(run):
            logits, loss = runner(images, labels)
        run.optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        if cfg.optim.grad_clip:
            nn.utils.clip_grad_norm_(trained, cfg.optim.grad_clip)
        step_lr = run.optimizer.param_groups[0]["lr"]  # the rate this step uses
        run.optimizer.step()
        run.schedule.step()  # per iteration: warm-up and cosine follow the steps, not the epochs
        state.step += 1
        nonfinite.record(state.step, loss)
        if log is not None:  # TensorBoard every log.tensorboard_every_steps steps (one host sync each time)
            log.step_scalars(state.step, {"train_loss": loss.total.detach(), "lr": step_lr},
                             cfg.log.tensorboard_every_steps)

        # Running sums stay on the device: no host sync per step.
        for name, value in {"loss": loss.total, **loss.parts}.items():
            sums[name] = sums.get(name, 0) + value.detach().float()
        correct += (logits.detach().float().mean(0).argmax(-1) == labels).sum()
        seen += labels.numel()
        if cfg.log.progress and ctx.main and step_in_epoch % 25 == 0:
            bar.set_postfix(loss=f"{float(sums['loss']) / step_in_epoch:.3f}", refresh=False)
        if step_in_epoch % 25 == 0:  # a diverged run stops within 25 steps, at one host sync
            nonfinite.check(ctx, run.steps_per_epoch, out_dir)
        if stop.requested or (stop_after_steps is not None and state.step >= stop_after_steps):
            nonfinite.check(ctx, run.steps_per_epoch, out_dir)
            state.step_in_epoch = step_in_epoch
            state.partial = {"sums": {k: float(v) for k, v in sums.items()}, "correct": int(correct), "seen": seen,
                             "teacher_seconds": teacher_time.seconds(), "seconds": time.perf_counter() - started}
            save(run, state, ctx, out_dir / "latest.pt", {"top1": state.top1, "best_top1": state.best})
            say(f"stopped at step {state.step} (epoch {epoch + 1}, {step_in_epoch}/{run.steps_per_epoch}); "
                f"continue with --resume --out {out_dir}")
            if stop.requested:
                raise KeyboardInterrupt
            return None
    nonfinite.check(ctx, run.steps_per_epoch, out_dir)  # before this epoch's checkpoints
    dist_utils.broadcast_buffers(model, ctx)
    # The rate at the epoch's first step, under the rate now in force (optim.lr=... on --resume rescales it).
    lr = run.schedule.base_lrs[0] * run.schedule.lr_lambdas[0](epoch * run.steps_per_epoch)
    row = {"epoch": epoch + 1, "step": state.step, "lr": lr}
    row.update({f"train_{k}": float(v) / max(1, step_in_epoch) for k, v in sums.items()})
    row["train_top1"] = 100.0 * float(correct) / max(1, seen)
    row["seconds"] = time.perf_counter() - started
    row["teacher_seconds"] = teacher_time.seconds()
    return row


def evaluate_epoch(run: Run, state: TrainState, epoch: int) -> dict:
    """The end-of-epoch full-range test (every ``log.eval_every`` epochs and the last) → its columns
    and whether ``best.pt`` improved (``improved``); updates ``state.top1`` and ``state.best``."""
    cfg = run.cfg
    if not ((epoch + 1) % cfg.log.eval_every == 0 or epoch + 1 == cfg.optim.epochs):
        return {}
    if run.test_set is None:  # sd.fit without test data: nothing to select by, best.pt is the last epoch
        return {"improved": True}
    with autocast(run):
        state.top1 = test_accuracy(run.model, run.test_set, cfg, run.batch_size, run.device, run.events)
    score = selection_score(cfg, state.top1)
    improved, state.best = score > state.best, max(state.best, score)
    return {**{f"test_top1_t{k}": v for k, v in state.top1.items()}, "improved": improved}


def selection_score(cfg: Config, top1: dict[int, float]) -> float:
    """What ``best.pt`` is chosen by: top-1 at ``log.best_by_timesteps`` (the T a method reports, e.g. CKDSNN's
    T=1, TSSD's T_s), else at T_max (``log.best_by: last``) or the mean over 1..T_max (``mean``)."""
    if cfg.log.best_by == "mean":
        return sum(top1.values()) / len(top1)
    return top1[cfg.log.best_by_timesteps or cfg.eval_timesteps]


def selection_column(cfg: Config) -> str:
    """The metrics column ``best.pt`` follows (written in every ``metrics.csv`` row as ``best_by``)."""
    if cfg.log.best_by == "mean":
        return f"mean of test_top1_t1..t{cfg.eval_timesteps}"
    return f"test_top1_t{cfg.log.best_by_timesteps or cfg.eval_timesteps}"


def test_accuracy(model: nn.Module, dataset, cfg: Config, batch_size: int, device, events: bool) -> dict[int, float]:
    """Top-1 at every k ≤ T_max in one pass (event data: under ``data.any_t_policy``)."""
    from ..data import batches

    if events:
        return fullrange_accuracy_events(model, dataset, max_timesteps=cfg.eval_timesteps,
                                         policy=cfg.data.any_t_policy, batch_size=batch_size, device=device)
    test = batches(dataset, batch_size, shuffle=False, augment=None, device=device, drop_last=False)
    return fullrange_accuracy(model, test, max_timesteps=cfg.eval_timesteps)


def epoch_line(row: dict, top1: dict, eval_timesteps: int) -> str:
    tests = " ".join(f"@{k} {v:.2f}" for k, v in top1.items()) if f"test_top1_t{eval_timesteps}" in row else "—"
    teacher = f" (teacher {row['teacher_seconds']:.1f}s)" if row["teacher_seconds"] else ""
    return (f"epoch {row['epoch']:>3} · loss {row.get('train_loss', float('nan')):.4f} · train "
            f"{row['train_top1']:.2f}% · test top-1 {tests} · lr {row['lr']:.4g} · {row['seconds']:.1f}s{teacher}")
