"""``TrainState``: what a checkpoint holds about a run's progress, besides the weights; :func:`save` writes
it with the weights, :func:`resume_state` reads it back into a run.

A run stopped mid-epoch resumes exactly: the epoch's data order and augmentation are a function of
(seed, epoch, rank), so the stream starts at the first of its batches not yet done; every RNG is
restored, and ``partial`` carries the epoch's running sums so its metrics row is the one an
uninterrupted run writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..checkpoint import load_checkpoint, load_weights, save_checkpoint
from ..errors import SpikeDistillError
from . import distributed as dist_utils
from .config import flat_keys
from .rng import rng_state, set_rng_state

if TYPE_CHECKING:
    from .run import Run

# Optimizer keys a recipe sets: on --resume the recipe (with this command's overrides) decides them; the
# saved optimizer state keeps only its buffers (momentum, Adam moments).
RECIPE_KEYS = ("weight_decay", "momentum", "nesterov", "dampening", "betas", "eps")


@dataclass
class TrainState:
    epoch: int = 0               # epochs finished (the next epoch to run, 0-based)
    step: int = 0                # optimizer steps taken in the whole run
    step_in_epoch: int = 0       # batches of ``epoch`` already done (0 at an epoch boundary)
    best: float = -math.inf      # best selection score so far (see log.best_by)
    top1: dict = field(default_factory=dict)  # the last evaluation {k: %}
    rng: dict | None = None      # this process's RNG state at the interruption
    partial: dict = field(default_factory=dict)  # running sums of an epoch interrupted midway

    def training_entry(self, optimizer, schedule, objective, rngs: list) -> dict:
        """The checkpoint's ``training`` entry (every process's RNGs, gathered by the caller)."""
        return {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "objective": objective.state_dict(), "step_in_epoch": self.step_in_epoch, "best": self.best,
                "rng": rngs, "partial": self.partial or None}

    @classmethod
    def from_checkpoint(cls, ckpt, rank: int) -> "TrainState":
        training = ckpt["training"]
        metrics = ckpt.get("metrics") or {}
        return cls(epoch=ckpt["epoch"], step=ckpt["step"], step_in_epoch=training["step_in_epoch"],
                   best=training["best"], top1=dict(metrics.get("top1") or {}), rng=training["rng"][rank],
                   partial=training.get("partial") or {})


def resume_state(run: Run, out_dir: Path, ctx, say=print) -> TrainState:
    """Load ``latest.pt`` into the run (weights, optimizer buffers, schedule, objective) → its TrainState.

    The recipe, with this command's overrides, decides the hyper-parameters: ``optim.weight_decay=...`` or
    ``optim.lr=...`` on ``--resume`` take effect from here on (said once each)."""
    path = out_dir / "latest.pt"
    ckpt = load_checkpoint(path)
    if ckpt.get("training") is None:
        raise SpikeDistillError(f"'{path}' holds no training state; start a new run without --resume")
    load_weights(run.model, ckpt["state_dict"], source=f"'{path}'")
    training = ckpt["training"]
    optimizer, schedule, cfg = run.optimizer, run.schedule, run.cfg
    recipe = [{k: v for k, v in group.items() if k in RECIPE_KEYS} for group in optimizer.param_groups]
    try:
        optimizer.load_state_dict(training["optimizer"])
        schedule.load_state_dict(training["schedule"])
        run.objective.load_state_dict(training["objective"])
        state = TrainState.from_checkpoint(ckpt, ctx.rank)
        set_rng_state(state.rng)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        raise SpikeDistillError(f"'{path}' holds a damaged training state ({type(exc).__name__}: {str(exc)[:80]}); "
                                "resume from a good copy of it, or start the run again without --resume "
                                "(best.pt keeps the best weights)") from None
    changes = []
    for group, wanted in zip(optimizer.param_groups, recipe):
        changes += [f"optim.{k} {group[k]} → {v}" for k, v in wanted.items() if group.get(k) != v]
        group.update(wanted)
    for change in dict.fromkeys(changes):
        say(f"{change} from here on")
    saved_lr = (ckpt.config.get("optim") or {}).get("lr")
    if saved_lr and saved_lr != cfg.optim.lr:  # optim.lr=... on --resume, e.g. after a diverged run
        scale = cfg.optim.lr / saved_lr        # the saved state would silently keep the old rate
        schedule.base_lrs = [lr * scale for lr in schedule.base_lrs]
        for group in optimizer.param_groups:
            group["lr"] *= scale
        say(f"optim.lr {saved_lr:g} → {cfg.optim.lr:g} from here on")
    say(f"resuming {out_dir} at epoch {state.epoch + 1}, step {state.step} ({state.step_in_epoch} steps into the "
        "epoch)")
    return state


def save(run: Run, state: TrainState, ctx, path: Path, metrics: dict, with_state: bool = True) -> None:
    """Write a checkpoint atomically (collective: every rank calls it; rank 0 writes)."""
    rngs = dist_utils.gather_objects(rng_state(), ctx)
    if not ctx.main:
        return
    training = state.training_entry(run.optimizer, run.schedule, run.objective, rngs) if with_state else None
    save_checkpoint(path, model=run.model, spec=run.spec, config=run.cfg.to_dict(), epoch=state.epoch,
                    step=state.step, training=training, metrics=metrics, inputs=run.inputs)


# What a run keeps from start to end: changed before --resume (in config.yaml or as an override), the
# saved state would continue a run of another recipe without a word. Everything else (optim.lr, epochs,
# logging, device, paths) may change and takes effect from the resumed step.
FIXED_ON_RESUME = ("model.", "loss.", "data.name", "data.subset", "data.options", "data.augment.", "optim.name",
                   "optim.batch_size", "optim.schedule", "optim.warmup_epochs", "optim.decay_all", "seed", "timesteps")


def resume_changes(saved: dict | None, current: dict) -> list[str]:
    """``["optim.name 'sgd' → 'adamw'", ...]``: what ``current`` changes of the run's ``saved`` recipe."""
    if not isinstance(saved, dict):
        return []
    before, after = flat_keys(saved), flat_keys(current)
    return [f"{k} {before[k]!r} → {after[k]!r}" for k in after
            if k.startswith(FIXED_ON_RESUME) and k in before and before[k] != after[k]]


