"""``sd.fit``: the training loop of ``spikedistill train`` for a user's own model, data and teacher.

    run = sd.fit(student, train_data, test_data=test_data, teacher=teacher, loss="twkd", timesteps=4,
                 epochs=30, out="runs/mine")
    net = sd.load_checkpoint("runs/mine/best.pt").model()

Everything the recipe path has comes with it — ``latest.pt`` after every epoch and on Ctrl-C or
SIGTERM, exact ``resume=True``, ``best.pt``, ``metrics.csv``, the per-epoch full-range test, the
non-finite-loss stop, ``torchrun`` — because :func:`fit` only builds a :class:`~.run.Run` from the
objects it is given and hands it to :func:`~.loop.train`. The model contract is in docs/own-model.md.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import input_spec, model_spec
from ..checks import check_positive_int
from ..data.tensors import IN_MEMORY
from ..errors import SpikeDistillError
from .config import apply_overrides, config_from_dict
from .run import Run, split_batches


def fit(student: nn.Module, train_data, *, test_data=None, teacher=None, loss="twkd", loss_options: dict | None = None,
        timesteps: int = 4, max_timesteps: int | None = None, epochs: int = 10, batch_size: int = 64, lr: float = 0.1,
        optimizer: str = "sgd", weight_decay: float = 5e-4, out: str | Path = "runs/fit", resume: bool = False,
        seed: int = 60, device: str = "auto", precision: str = "bf16", settings=(), verbose: bool = True) -> dict:
    """Train ``student`` on ``train_data`` by ``loss`` (distilling ``teacher``) into ``out``.

    ``student``: an ``nn.Module`` with ``forward(x, timesteps=None, return_features=False)`` returning
    per-step logits ``[T, B, K]`` (docs/own-model.md). ``teacher``: an ``nn.Module`` or any callable
    returning ``[B, K]`` logits; it runs frozen, in eval mode, without gradients. ``train_data`` /
    ``test_data``: a torch ``Dataset`` or an iterable of ``(x, y)`` (samples or batches) of float inputs,
    gathered into memory once. Without ``test_data`` there is no per-epoch test and ``best.pt`` is the
    last epoch. ``loss``: a registered name (``loss_options`` its options) or an objective instance.
    ``settings``: further recipe keys as ``key=value`` strings (``"optim.warmup_epochs=1"``, see
    docs/training.md). ``resume=True`` continues ``out/latest.pt`` exactly (pass the same objects).

    Returns what :func:`~.loop.train` returns: ``{"top1": {k: %}, "best_top1": %, "out": dir, "step": n,
    "stopped": bool, "model": student}``.
    """
    from ..losses import create_loss
    from ..losses.base import Objective
    from .loop import train

    if not isinstance(student, nn.Module):
        raise SpikeDistillError(f"student must be an nn.Module keeping the model contract (docs/own-model.md), "
                                f"got {type(student).__name__}")
    check_positive_int("timesteps", timesteps)
    objective = loss if isinstance(loss, Objective) else create_loss(loss, **(loss_options or {}))
    if isinstance(loss, Objective) and loss_options:
        raise SpikeDistillError("loss_options go with a loss name; an objective instance carries its own options")
    if objective.needs_teacher and teacher is None:
        raise SpikeDistillError(f"loss '{objective.name}' needs a teacher; pass teacher=... (a network or a callable "
                                "returning [B, K] logits), or use loss='ce'")
    if teacher is not None and not objective.needs_teacher:
        raise SpikeDistillError(f"loss '{objective.name}' reads no teacher; drop teacher=, or distil it with a loss "
                                "that does (skd, twkd, dkd, ckdsnn)")
    spiking = bool(getattr(student, "spiking", True))
    recipe = {
        "model": {"name": student_name(student), "spiking": spiking},
        "loss": {"name": objective.name, "options": dict(loss_options or {})},
        "data": {"name": IN_MEMORY, "augment": {"crop_padding": 0, "flip": False}},
        "optim": {"name": optimizer, "lr": lr, "weight_decay": weight_decay, "epochs": epochs,
                  "batch_size": batch_size},
        "timesteps": timesteps, "max_timesteps": max_timesteps, "seed": seed, "device": device, "precision": precision,
        "imports": recorded_imports(student),
    }
    cfg = config_from_dict(apply_overrides(recipe, [settings] if isinstance(settings, str) else settings))
    out = Path(out)
    if resume and not (out / "latest.pt").is_file():
        raise SpikeDistillError(f"nothing to resume in '{out}' (no latest.pt); call fit without resume=True")
    if not resume and (out / "latest.pt").exists():
        raise SpikeDistillError(f"'{out}' already holds a run; continue it with resume=True or choose another out")

    def build(cfg, ctx) -> Run:
        return build_fit_run(cfg, ctx, student, train_data, test_data, teacher, objective)

    return train(cfg, out, resume=resume, verbose=verbose, build=build)


def build_fit_run(cfg, ctx, student, train_data, test_data, teacher, objective) -> Run:
    """The :class:`~.run.Run` of a user's objects (what :func:`~.run.build_run` makes from a recipe)."""
    from ..data.tensors import TensorData, gather
    from ..evaluate.fullrange import check_label_range
    from .optim import build_optimizer, build_schedule
    from .task import as_teacher

    inputs, labels = gather(train_data, "train_data")
    test = gather(test_data, "test_data") if test_data is not None else None
    classes = getattr(student, "num_classes", None)
    if not isinstance(classes, int):
        classes = 1 + max(int(labels.max()), int(test[1].max()) if test else 0)
    check_label_range(labels, classes, "train_data")
    frames = inputs.dim() == 5
    if frames and cfg.model.spiking and inputs.shape[1] != cfg.eval_timesteps:
        raise SpikeDistillError(f"the frames hold {inputs.shape[1]} timesteps but the run evaluates "
                                f"1..{cfg.eval_timesteps}; pass timesteps={inputs.shape[1]} (or re-bin the frames)")
    if test is not None and test[0].shape[1:] != inputs.shape[1:]:
        raise SpikeDistillError(f"test_data samples are {list(test[0].shape[1:])} but train_data samples are "
                                f"{list(inputs.shape[1:])}; give both the same shape")
    train_set = TensorData(inputs, labels, classes)
    test_set = TensorData(*test, classes) if test is not None else None
    batch_size, steps_per_epoch = split_batches(train_set, cfg.optim.batch_size, ctx.world_size, key="batch_size",
                                                samples="training samples")

    device = ctx.device
    student.to(device)
    check_contract(student, inputs[:2].to(device), cfg.timesteps if cfg.model.spiking else 1)
    spec = student_spec(student, classes, cfg.imports)
    objective.bind(student)
    objective.to(device)
    teacher = as_teacher(teacher)
    if teacher is not None:
        teacher.to(device).eval()
    optimizer = build_optimizer(cfg.optim, [student, objective])
    return Run(cfg=cfg, device=device, train_set=train_set, test_set=test_set, events=False, augment=None,
               batch_size=batch_size, steps_per_epoch=steps_per_epoch, model=student, spec=spec,
               inputs=input_spec(train_set.image_shape, frames, cfg.eval_timesteps), objective=objective,
               teacher=teacher, teacher_features=objective.needs_teacher_features,
               train_timesteps=objective.train_timesteps(cfg.timesteps) if cfg.model.spiking else 1,
               optimizer=optimizer, schedule=build_schedule(cfg.optim, optimizer, steps_per_epoch), channels_last=False)


def check_contract(student: nn.Module, sample: torch.Tensor, timesteps: int) -> None:
    """One forward of two samples (eval mode, no gradient, the RNG untouched) checks the model contract:
    ``forward(x, timesteps=None, return_features=False)`` returning per-step logits ``[T, B, K]``."""
    from ..models import input_dtype, model_input
    from .task import _accepts

    if not (_accepts(student, "timesteps") and _accepts(student, "return_features")):
        raise SpikeDistillError(f"{type(student).__name__}.forward must take (x, timesteps=None, "
                                "return_features=False) and return per-step logits [T, B, K]; see docs/own-model.md")
    x = model_input(sample, bool(getattr(student, "spiking", True)), input_dtype(student))
    expected = x.shape[0] if x.dim() == 5 else timesteps
    was_training = student.training
    try:
        cuda = [x.device.index or 0] if x.device.type == "cuda" else []  # a dropout draws from the device's RNG
        with torch.no_grad(), torch.random.fork_rng(devices=cuda):
            out = student.eval()(x, timesteps=None if x.dim() == 5 else timesteps)
    finally:
        student.train(was_training)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[:2] != (expected, len(sample)):
        raise SpikeDistillError(f"{type(student).__name__} returned {shape} for {len(sample)} samples at T={expected}; "
                                f"the model contract is per-step logits [T, B, K] = [{expected}, {len(sample)}, K]: "
                                "return the read-out of every step, not their mean (docs/own-model.md)")


# --- what rebuilds the student from a checkpoint ---------------------------------------------------

def student_name(student: nn.Module) -> str:
    created = getattr(student, "created_as", None)
    return created["name"] if isinstance(created, dict) else class_path(type(student))


def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def recorded_imports(student: nn.Module) -> list[str]:
    """The user module that registers or defines the student, imported again by ``eval``/``export``/resume."""
    created = getattr(student, "created_as", None)
    module = created.get("module") if isinstance(created, dict) else type(student).__module__
    if not module or module == "__main__" or module == "spikedistill" or module.startswith("spikedistill."):
        return []
    return [module]


def student_spec(student: nn.Module, num_classes: int, imports) -> dict:
    """The checkpoint's model entry. A ``create_model`` student: its registered name and options. Any other
    class: its import path and the constructor arguments read back from same-named attributes
    (``class_arguments``; ``None`` when they cannot be, and ``Checkpoint.model()`` then says to load
    ``ckpt["state_dict"]`` into the class by hand)."""
    created = getattr(student, "created_as", None)
    spiking = bool(getattr(student, "spiking", True))
    if isinstance(created, dict):
        return model_spec(created["name"], created["spiking"], created["num_classes"], imports=imports,
                          **created["options"])
    spec = model_spec(class_path(type(student)), spiking, num_classes, imports=imports)
    spec["class"] = class_path(type(student))
    spec["arguments"] = class_arguments(student)
    return spec


PLAIN = (bool, int, float, str, type(None))


def class_arguments(model: nn.Module) -> dict | None:
    """``{argument: value}`` that rebuild ``model`` with ``type(model)(**arguments)``: every argument of its
    ``__init__`` read from the attribute of the same name (or left at its default), checked by building the
    class on the meta device and comparing every weight's shape. None when that does not work."""
    cls = type(model)
    try:
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    arguments = {}
    for p in parameters:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = getattr(model, p.name, inspect.Parameter.empty)
        if _plain(value):
            arguments[p.name] = list(value) if isinstance(value, tuple) else value
        elif p.default is inspect.Parameter.empty:
            return None
    try:
        with torch.device("meta"), torch.random.fork_rng(devices=[]):
            rebuilt = cls(**arguments)
    except Exception:  # the user's constructor wants something we could not read back
        return None
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return arguments if {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == own else None


def _plain(value) -> bool:
    if isinstance(value, (tuple, list)):
        return all(isinstance(v, PLAIN) for v in value)
    return isinstance(value, PLAIN)
