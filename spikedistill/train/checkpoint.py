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
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise SpikeDistillError(f"cannot write to '{path.parent}' ({exc.strerror}); choose a writable --out directory") from None
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
    if not path.is_file():
        raise SpikeDistillError(f"checkpoint '{path}' does not exist; pass the path of a .pt file written by 'spikedistill train'")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated, corrupt, or not a torch file at all
        raise SpikeDistillError(
            f"checkpoint '{path}' is corrupt or truncated ({type(exc).__name__}); use another checkpoint (e.g. best.pt or latest.pt)"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise SpikeDistillError(f"'{path}' is not a spikedistill checkpoint; pass a file written by 'spikedistill train'")
    if ckpt.get("version", 0) > VERSION:
        raise SpikeDistillError(f"checkpoint '{path}' has format version {ckpt['version']}; upgrade spikedistill to read it")
    return ckpt


def model_from_checkpoint(path_or_ckpt, map_location="cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its weights → ``(model, checkpoint)``."""
    ckpt = path_or_ckpt if isinstance(path_or_ckpt, dict) else load_checkpoint(path_or_ckpt, map_location)
    spec = ckpt["model"]
    model = create_model(spec["name"], spiking=spec["spiking"], num_classes=spec["num_classes"], **spec.get("options", {}))
    load_weights(model, ckpt["state_dict"], source=f"checkpoint of '{spec['name']}'")
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
