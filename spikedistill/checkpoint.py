"""Checkpoints: one self-describing file, written atomically, loaded with clear errors.

Layout (a dict saved with ``torch.save``)::

    {"format": "spikedistill-checkpoint", "version": 1,
     "model": {"name": "resnet19", "spiking": True, "num_classes": 10, "options": {...}},  # create_model args
     "state_dict": {...},                 # model weights
     "config": {...} | None,              # the resolved recipe that trained it
     "epoch": int, "step": int,           # progress (for --resume)
     "training": {...} | None,            # optimizer, scheduler, RNG states, objective state (resume only)
     "metrics": {...}}                    # e.g. {"top1": {1: .., T: ..}, "best_top1": ..}

Writes go to a temporary file in the same directory, are fsync'ed, then renamed over the target, so a
crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import SpikeDistillError
from ..models import create_model

FORMAT = "spikedistill-checkpoint"
VERSION = 1


def model_spec(name: str, spiking: bool, num_classes: int, **options) -> dict:
    return {"name": name, "spiking": spiking, "num_classes": num_classes, "options": options}


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, then rename over ``path``."""
    _atomic_write(path, lambda file: torch.save(obj, file))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write a small text file (a run's config, a report) so a crash leaves the old one or the new one."""
    _atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def remove_stale_temp_files(directory: str | os.PathLike) -> None:
    """Temp files of writes that a killed process never finished (``.NAME.XXXX.tmp``)."""
    for stale in Path(directory).glob(".*.tmp"):
        try:
            stale.unlink()
        except OSError:
            pass


def _atomic_write(path: str | os.PathLike, write) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise SpikeDistillError(f"cannot write to '{path.parent}' ({exc.strerror}); choose a writable --out directory") from None
    file = None
    try:
        with os.fdopen(fd, "wb") as raw:
            file = _KeepsWriteError(raw)
            write(file)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself survives a power cut
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        error = exc if isinstance(exc, OSError) else getattr(file, "error", None)
        if error is not None:  # disk full, quota, I/O error: the previous file is untouched
            kept = "the previous checkpoint is kept; " if path.exists() else ""
            raise SpikeDistillError(
                f"cannot write '{path}' ({error.strerror or error}); {kept}free disk space or choose another --out directory"
            ) from None
        raise


class _KeepsWriteError:
    """The file ``torch.save`` writes to; it remembers the ``OSError`` of a failed write (a full disk),
    which ``torch.save`` itself reports only as a RuntimeError about zip positions."""

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name):
        return getattr(self.file, name)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


def save_checkpoint(path, *, model: torch.nn.Module, spec: dict, config: dict | None = None, epoch: int = 0,
                    step: int = 0, training: dict | None = None, metrics: dict | None = None) -> None:
    atomic_save(
        {"format": FORMAT, "version": VERSION, "model": spec, "state_dict": model.state_dict(),
         "config": config, "epoch": epoch, "step": step, "training": training, "metrics": metrics or {}},
        path,
    )


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load and validate a checkpoint; every failure is one clear :class:`SpikeDistillError`."""
    path = Path(path)
    if path.is_dir():
        raise SpikeDistillError(f"checkpoint '{path}' is a directory; pass a .pt file in it (e.g. {path / 'best.pt'})")
    if not path.is_file():
        raise SpikeDistillError(f"checkpoint '{path}' does not exist; pass the path of a .pt file written by 'spikedistill train'")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated, corrupt, or not a torch file at all
        raise SpikeDistillError(
            f"checkpoint '{path}' is corrupt or truncated ({type(exc).__name__}); {_instead(path)}"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise SpikeDistillError(f"'{path}' is not a spikedistill checkpoint; pass a file written by 'spikedistill train'")
    version = ckpt.get("version", 0)
    if not isinstance(version, int):
        raise SpikeDistillError(f"checkpoint '{path}' is damaged (format version {version!r}); {_instead(path)}")
    if version > VERSION:
        raise SpikeDistillError(f"checkpoint '{path}' has format version {version}; upgrade spikedistill to read it")
    problem = _layout_problem(ckpt)
    if problem:
        raise SpikeDistillError(f"checkpoint '{path}' is damaged: {problem}; {_instead(path)}")
    return ckpt


def _instead(path: Path) -> str:
    """What to do about an unreadable checkpoint."""
    if path.name == "latest.pt":  # the only file with the training state
        return "use another checkpoint (best.pt to evaluate); to train, start the run again without --resume"
    return "use another checkpoint (e.g. best.pt or latest.pt of the same run)"


def _layout_problem(ckpt: dict) -> str | None:
    """What is wrong with a loaded checkpoint's layout (see the module docstring), or None."""
    spec = ckpt.get("model")
    if not isinstance(spec, dict):
        return "it has no model description"
    if not isinstance(spec.get("name"), str) or not isinstance(spec.get("spiking"), bool):
        return "its model description has no valid name or spiking flag"
    classes = spec.get("num_classes")
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        return f"its model description has num_classes={classes!r}"
    if not isinstance(spec.get("options", {}), dict):
        return "its model options are not a mapping"
    weights = ckpt.get("state_dict")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return "it holds no weights (state_dict)"
    for key in ("epoch", "step"):
        if not isinstance(ckpt.get(key, 0), int):
            return f"its {key} is {ckpt.get(key)!r}"
    return None


def model_from_checkpoint(path_or_ckpt, map_location="cpu", num_classes: int | None = None,
                          role: str = "checkpoint") -> tuple[torch.nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its weights → ``(model, checkpoint)``.

    ``num_classes``: the class count the caller needs (e.g. the student's dataset for a teacher); a
    checkpoint with another count is refused with one line. ``role`` names the file in messages.
    """
    if isinstance(path_or_ckpt, dict):
        ckpt, where = path_or_ckpt, role
        problem = _layout_problem(ckpt)
        if problem:
            raise SpikeDistillError(f"{role} is damaged: {problem}; use another checkpoint")
    else:
        ckpt, where = load_checkpoint(path_or_ckpt, map_location), f"{role} '{path_or_ckpt}'"
    spec = ckpt["model"]
    if num_classes is not None and spec["num_classes"] != num_classes:
        raise SpikeDistillError(
            f"{where} predicts {spec['num_classes']} classes but {num_classes} are needed here; "
            f"use a {role} trained on the same dataset (same classes)")
    try:
        model = create_model(spec["name"], spiking=spec["spiking"], num_classes=spec["num_classes"],
                             **spec.get("options", {}))
    except SpikeDistillError as exc:
        raise SpikeDistillError(f"{where}: {exc}") from None
    except (TypeError, ValueError, RuntimeError) as exc:  # options that no model accepts: a damaged file
        raise SpikeDistillError(f"{where} describes a model that cannot be built ({type(exc).__name__}: {exc}); "
                                "use another checkpoint") from None
    load_weights(model, ckpt["state_dict"], source=f"{where} ('{spec['name']}')")
    return model, ckpt


def load_weights(model: torch.nn.Module, state_dict: dict, source: str = "checkpoint") -> None:
    """``load_state_dict`` with one readable line when the architecture or class count differs."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
    if missing or unexpected or mismatched:
        detail = (f"{len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} wrong-shaped tensors"
                  + (f" (first: {mismatched[0]} {tuple(state_dict[mismatched[0]].shape)} vs {tuple(own[mismatched[0]].shape)})" if mismatched else ""))
        raise SpikeDistillError(f"{source} does not fit this model: {detail}; check the model name and num_classes")
    model.load_state_dict(state_dict)
