"""``spikedistill train --config FILE [key=value ...] [--out DIR] [--resume]``."""

from __future__ import annotations

import os
from pathlib import Path

from ..data.tensors import IN_MEMORY
from ..errors import DataNotFoundError, SpikeDistillError
from ..models import MODELS
from ..registry import import_modules
from .config import load_config
from .runlock import check_not_in_use


def default_out_dir(config_path: str) -> Path:
    """``configs/cifar10/twkd_resnet19.yaml`` → ``runs/cifar10/twkd_resnet19``."""
    path = Path(config_path)
    return Path("runs") / path.parent.name / path.stem if path.parent.name else Path("runs") / path.stem


def check_out_dir(out: Path) -> None:
    """Fail in a second, not after the data is loaded, when the run directory cannot be made."""
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SpikeDistillError(f"cannot create the run directory '{out}': '{existing}' is a file, not a directory; "
                                "choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SpikeDistillError(f"cannot create the run directory '{out}': '{existing}' is not writable; choose "
                                "another --out")


def run_train(args) -> int:
    try:
        return _run_train(args)
    except DataNotFoundError as exc:  # the data room's advice, in a recipe's words
        raise SpikeDistillError(exc.message(root="set data.root={place}{holds}",
                                            download="set data.download=true")) from None


def _run_train(args) -> int:
    from .loop import check_holds_no_run, train

    if args.config is None and not args.resume:
        raise SpikeDistillError("no recipe given; pass --config FILE (see configs/), or --resume --out RUN_DIR")
    out = Path(args.out) if args.out else (default_out_dir(args.config) if args.config else None)
    if out is not None:
        check_not_in_use(out)  # a live run owns it: say so now, not after loading the data
    if args.resume:
        if out is None:
            raise SpikeDistillError("--resume needs the run directory; pass --out RUN_DIR")
        if not (out / "latest.pt").is_file():
            raise SpikeDistillError(f"nothing to resume in '{out}' (no latest.pt); start the run without --resume")
        # The run's own resolved config; overrides on the command line still apply (e.g. optim.epochs=400).
        saved = out / "config.yaml"
        if not saved.is_file() and args.config is None:
            raise SpikeDistillError(f"'{saved}' is missing, so the run's recipe is unknown; "
                                    f"pass it again: --resume --out {out} --config FILE")
        cfg = load_config(saved if saved.is_file() else args.config, args.overrides)
    else:
        cfg = load_config(args.config, args.overrides)
        check_holds_no_run(out)
        check_out_dir(out)
    imports = list(getattr(args, "imports", None) or [])
    cfg.imports = list(dict.fromkeys([*cfg.imports, *imports]))  # recorded in config.yaml and the checkpoints
    import_modules(cfg.imports, recorded_by=f"the run '{out}'" if args.resume else None)
    if args.resume and cfg.data.name == IN_MEMORY:
        raise SpikeDistillError(f"'{out}' was trained by sd.fit on data held in Python; resume it there with the same "
                                "objects: sd.fit(..., out=..., resume=True)")
    MODELS.get(cfg.model.name)  # an unknown model is named before any talk of its teacher
    from .teacher import describe, missing_teacher_message, stage_problem, teacher_config, teacher_needed

    if teacher_needed(cfg):  # hours of work are never a side effect: the teacher stage is asked for
        if not getattr(args, "train_teacher", False) or not cfg.teacher.recipe:
            raise SpikeDistillError(missing_teacher_message(cfg))
        problem = stage_problem(cfg, out)
        if problem:  # never into another run's folder, never for a file the stage does not write
            raise SpikeDistillError(problem)
        teacher_dir = Path(cfg.teacher.checkpoint).parent
        print(f"teacher stage: {describe(cfg)} → {teacher_dir}/best.pt")
        train(teacher_config(cfg), teacher_dir)
    result = train(cfg, out, resume=args.resume)
    best = result["best_top1"]
    print(f"done: best test top-1 {best:.2f}% · checkpoints in {out}/best.pt and {out}/latest.pt")
    return 0
