"""``TrainState``: what a checkpoint holds about a run's progress, besides the weights.

A run stopped mid-epoch resumes exactly: the epoch's data order is rebuilt from (seed, epoch), the
``step_in_epoch`` batches already done are skipped, every RNG is restored, and ``partial`` carries the
epoch's running sums so its metrics row is the one an uninterrupted run writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    epoch_rng: dict | None = None  # this process's RNG state at the start of ``epoch`` (its data order)
    partial: dict = field(default_factory=dict)  # running sums of an epoch interrupted midway

    def training_entry(self, optimizer, schedule, objective, rngs: list, epoch_rngs: list) -> dict:
        """The checkpoint's ``training`` entry (every process's RNGs, gathered by the caller)."""
        return {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "objective": objective.state_dict(), "step_in_epoch": self.step_in_epoch, "best": self.best,
                "rng": rngs, "epoch_rng": epoch_rngs, "partial": self.partial or None}

    @classmethod
    def from_checkpoint(cls, ckpt, rank: int) -> "TrainState":
        training = ckpt["training"]
        metrics = ckpt.get("metrics") or {}
        return cls(epoch=ckpt["epoch"], step=ckpt["step"], step_in_epoch=training["step_in_epoch"],
                   best=training["best"], top1=dict(metrics.get("top1") or {}), rng=training["rng"][rank],
                   epoch_rng=training["epoch_rng"][rank], partial=training.get("partial") or {})


# What a run keeps from start to end: changed before --resume (in config.yaml or as an override), the
# saved state would continue a run of another recipe without a word. Everything else (optim.lr, epochs,
# logging, device, paths) may change and takes effect from the resumed step.
FIXED_ON_RESUME = ("model.", "loss.", "data.name", "data.subset", "data.options", "data.augment.", "optim.name",
                   "optim.batch_size", "optim.schedule", "optim.warmup_epochs", "optim.decay_all", "seed", "timesteps")


def resume_changes(saved: dict | None, current: dict) -> list[str]:
    """``["optim.name 'sgd' → 'adamw'", ...]``: what ``current`` changes of the run's ``saved`` recipe."""
    if not isinstance(saved, dict):
        return []
    before, after = _flat(saved), _flat(current)
    return [f"{k} {before[k]!r} → {after[k]!r}" for k in after
            if k.startswith(FIXED_ON_RESUME) and k in before and before[k] != after[k]]


def _flat(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "options":
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat

