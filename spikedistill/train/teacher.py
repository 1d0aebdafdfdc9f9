"""The teacher stage: training a student's missing ANN teacher is a stage the user asks for.

A student recipe names ``teacher.checkpoint`` and, optionally, the ``teacher.recipe`` that makes it.
When the checkpoint does not exist, ``spikedistill train`` says what would be trained (model, epochs,
data) and stops; with ``--train-teacher`` it runs that stage first (``teacher_config(cfg)`` through the
same loop, into the checkpoint's folder), on the student's data and device.
"""

from __future__ import annotations

from pathlib import Path

from .config import Config, load_config

# What a teacher inherits from its student's command line: the same data and the same device.
INHERITED = ("data.name", "data.root", "data.subset", "data.test_subset", "device")


def teacher_config(cfg: Config) -> Config:
    """The teacher's recipe with the student's data and device (``INHERITED``)."""
    values = {"data.name": cfg.data.name, "data.root": cfg.data.root, "data.subset": cfg.data.subset,
              "data.test_subset": cfg.data.test_subset, "device": cfg.device}
    return load_config(cfg.teacher.recipe, [f"{k}={'null' if v is None else v}" for k, v in values.items()])


def teacher_needed(cfg: Config) -> bool:
    """True when the student's objective needs a teacher whose checkpoint does not exist yet."""
    from ..losses import create_loss

    path = cfg.teacher.checkpoint
    return cfg.teacher.source == "checkpoint" and path is not None and not Path(path).exists() and create_loss(cfg.loss.name, **cfg.loss.options).needs_teacher


def describe(cfg: Config) -> str:
    teacher = teacher_config(cfg)
    return (f"{teacher.model.name} ({'SNN' if teacher.model.spiking else 'ANN'}) for {teacher.optim.epochs} epochs "
            f"on {teacher.data.name} from {cfg.teacher.recipe}")


def missing_teacher_message(cfg: Config) -> str:
    path = cfg.teacher.checkpoint
    if not cfg.teacher.recipe:
        return (f"teacher checkpoint '{path}' does not exist; train a teacher first (spikedistill train --config "
                "<teacher recipe>) and set teacher.checkpoint=PATH/best.pt")
    return (f"teacher checkpoint '{path}' does not exist; training it means {describe(cfg)}: "
            f"run 'spikedistill train --config {cfg.teacher.recipe} --out {Path(path).parent}' first, or add "
            "--train-teacher to train it now before the student")
