"""Optimizer and schedule: SGD (momentum) or AdamW, weight decay on conv/linear weights only, optional warm-up,
cosine stepped per iteration."""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from .config import OptimConfig

DECAYED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def param_groups(modules: Iterable[nn.Module], weight_decay: float, decay_all: bool = False) -> list[dict]:
    """Two groups: conv/linear weights (decayed) and everything else — BN affine, biases — undecayed
    (the FR code's ``split_params``). ``decay_all`` decays every parameter (CKDSNN code)."""
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for layer in module.modules():
            for name, param in layer.named_parameters(recurse=False):
                if not param.requires_grad or id(param) in seen:
                    continue
                seen.add(id(param))
                wanted = decay_all or (isinstance(layer, DECAYED) and name == "weight")
                (decay if wanted else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(cfg: OptimConfig, modules: Iterable[nn.Module]) -> torch.optim.Optimizer:
    groups = param_groups(modules, cfg.weight_decay, cfg.decay_all)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def lr_factor(step: int, cfg: OptimConfig, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step ``step + 1`` as a fraction of ``optim.lr``.

    A linear warm-up over ``optim.warmup_epochs`` (fractions allowed) from lr/W to lr, W the warm-up's
    steps; then cosine to 0 over the remaining steps (``cosine``) or constant."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(total, round(cfg.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule != "cosine":
        return 1.0
    progress = min(step - warmup, total - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_schedule(cfg: OptimConfig, optimizer: torch.optim.Optimizer,
                   steps_per_epoch: int = 1) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per optimizer step (so even a short run anneals): see :func:`lr_factor`. Its state
    (the step count) is in every checkpoint, so a resumed run continues the same curve."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg, steps_per_epoch))
