"""The teacher stage: training a student's missing ANN teacher is a stage the user asks for.

A student recipe names ``teacher.checkpoint`` and, optionally, the ``teacher.recipe`` that makes it.
When the checkpoint does not exist, ``spikedistill train`` says what would be trained (model, epochs,
data) and stops; with ``--train-teacher`` it runs that stage first (``teacher_config(cfg)`` through the
same loop, into the checkpoint's folder), on the student's data and device. The stage writes that folder's
``best.pt``, so ``teacher.checkpoint`` must name one, in a folder that holds no other run; a checkpoint
that exists is used only if it was trained with the recipe asked for (:func:`recipe_differences`).
"""

from __future__ import annotations

from pathlib import Path

from .config import Config, flat_keys, load_config

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
    return (cfg.teacher.source == "checkpoint" and path is not None and not Path(path).exists()
            and create_loss(cfg.loss.name, **cfg.loss.options).needs_teacher)


def describe(cfg: Config) -> str:
    teacher = teacher_config(cfg)
    return (f"{teacher.model.name} ({'SNN' if teacher.model.spiking else 'ANN'}) for {teacher.optim.epochs} epochs "
            f"on {teacher.data.name} from {cfg.teacher.recipe}")


def stage_problem(cfg: Config, student_out: Path | None = None) -> str | None:
    """Why the teacher stage cannot train ``teacher.checkpoint`` (one line), or None."""
    path = Path(cfg.teacher.checkpoint)
    if path.name != "best.pt":
        return (f"the teacher stage writes best.pt into its folder, so it cannot make teacher.checkpoint '{path}'; "
                f"set teacher.checkpoint=NEW_FOLDER/best.pt")
    if student_out is not None and path.parent.resolve() == Path(student_out).resolve():
        return (f"teacher.checkpoint '{path}' is in the student's own run folder; set teacher.checkpoint to a best.pt "
                "in another folder")
    held = [name for name in ("latest.pt", "best.pt") if (path.parent / name).exists()]
    if held:
        return (f"the teacher stage would write into '{path.parent}', which holds another run ({', '.join(held)}); "
                f"continue that run with 'spikedistill train --resume --out {path.parent}' if it is the teacher, "
                "or set teacher.checkpoint=NEW_FOLDER/best.pt")
    return None


def recipe_differences(cfg: Config, saved: dict | None) -> list[str]:
    """``["data.subset 64 (recipe: None)", ...]``: where the config a teacher checkpoint was trained with
    differs from ``teacher_config(cfg)`` in what shapes the weights (model, objective, optimizer, data)."""
    if not cfg.teacher.recipe or not isinstance(saved, dict):
        return []
    wanted = flat_keys(teacher_config(cfg).to_dict())
    have = flat_keys(saved)
    keys = [k for k in wanted if k.split(".")[0] in ("model", "loss", "optim", "timesteps")
            or k in ("data.name", "data.subset", "data.options") or k.startswith("data.augment.")]
    full_data = have.get("data.subset") is None  # a teacher of all the data serves a smoke student's subset too
    return [f"{k} {have[k]!r} (recipe: {wanted[k]!r})" for k in keys
            if k in have and have[k] != wanted[k] and not (k == "data.subset" and full_data)]


def stale_teacher_message(cfg: Config, differences: list[str]) -> str:
    path = Path(cfg.teacher.checkpoint)
    return (f"teacher checkpoint '{path}' was trained with another recipe than {cfg.teacher.recipe} asks for: "
            f"{'; '.join(differences[:3])}; to retrain it, move '{path.parent}' away and add --train-teacher, "
            "or set teacher.checkpoint=NEW_FOLDER/best.pt")


def missing_teacher_message(cfg: Config) -> str:
    path = cfg.teacher.checkpoint
    if cfg.teacher.recipe and stage_problem(cfg):
        return f"teacher checkpoint '{path}' does not exist, and {stage_problem(cfg)}"
    if not cfg.teacher.recipe:
        return (f"teacher checkpoint '{path}' does not exist; train a teacher first (spikedistill train --config "
                "<teacher recipe>) and set teacher.checkpoint=PATH/best.pt")
    return (f"teacher checkpoint '{path}' does not exist; training it means {describe(cfg)}: "
            f"run 'spikedistill train --config {cfg.teacher.recipe} --out {Path(path).parent}' first, or add "
            "--train-teacher to train it now before the student")
