"""The study's state: one small JSON, written atomically after every stage, holding each finished run's
result and the recipe it ran with, so a later command (or another machine) skips what is done.

Nothing the study publishes carries a path of the machine it ran on: in the recorded commands the data
folder is written ``$DATA`` and every other path relative to the working directory (a relative one as
given); in the stored recipes ``data.root`` is ``$DATA`` and other paths are relative the same way.
:func:`portable_command` and :func:`portable_config` apply that rule, also to states recorded before it
held (the report applies it again when it renders)."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from spikedistill.errors import SpikeDistillError
from spikedistill.io import atomic_write_text
from spikedistill.train.config import Config

from .console import say
from .profiles import DATASET_LABEL, MAX_TIMESTEPS, PROFILES, fixed_epochs, student_config

DATA = "$DATA"  # the data folder in recorded commands and recipes
DATA_OPTIONS = ("--data-root",)
PATH_OPTIONS = ("--out", "--runs", "--log", "--adopt")


def load_state(path: Path) -> dict:
    if path.is_file():
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise SpikeDistillError(f"the study's state '{path}' is damaged ({type(exc).__name__}); restore it from a "
                                    "copy (a published JSON can be taken in with --adopt), or move it aside to start "
                                    "afresh") from None
        if not isinstance(state, dict):
            raise SpikeDistillError(f"the study's state '{path}' is not a JSON object; restore it from a copy "
                                    "or move it aside")
        return state
    return {"dataset": DATASET_LABEL, "max_timesteps": MAX_TIMESTEPS, "plan": {}, "teacher": None,
            "students": {}, "commands": []}


def save_state(state: dict, path: Path) -> None:
    atomic_write_text(json.dumps(state, indent=1) + "\n", path)  # a killed command never leaves half a file


def _relative(path: str) -> str:
    """``path`` relative to the working directory when it is absolute; as given otherwise."""
    return os.path.relpath(path) if os.path.isabs(path) else path


def portable_command(command: str) -> str:
    """A recorded command line with the data folder as ``$DATA`` and other paths relative (see the module)."""
    words, out = shlex.split(command), []
    expects = None
    for word in words:
        option, eq, value = word.partition("=")
        if expects is not None:
            out.append(DATA if expects in DATA_OPTIONS else _relative(word))
            expects = None
        elif word in DATA_OPTIONS or word in PATH_OPTIONS:
            out.append(word)
            expects = word
        elif eq and option in DATA_OPTIONS:
            out.append(f"{option}={DATA}")
        elif eq and option in PATH_OPTIONS:
            out.append(f"{option}={_relative(value)}")
        elif eq and option == "data.root" and value not in ("", "null"):
            out.append(f"data.root={DATA}")
        elif eq and os.path.isabs(value):  # KEY=/a/path among --teacher-set / --student-set
            out.append(f"{option}={_relative(value)}")
        else:
            out.append(_relative(word))
    return " ".join(word if DATA in word else shlex.quote(word) for word in out)  # $DATA left for the shell


def portable_config(config: dict) -> dict:
    """A stored recipe (``Config.to_dict()``) with ``data.root`` as ``$DATA`` and other paths relative."""
    def walk(value, key_path):
        if isinstance(value, dict):
            return {k: walk(v, (*key_path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key_path) for v in value]
        if key_path == ("data", "root") and value:
            return DATA
        if isinstance(value, str) and os.path.isabs(value):
            return _relative(value)
        return value

    return walk(json.loads(json.dumps(config)), ())


def finished_with(entry: dict | None, cfg: Config, name: str) -> bool:
    """Whether a stored result was trained with this very recipe (paths compared by the portable rule,
    so a run recorded from another folder still counts); one of another recipe (an edited YAML) is said
    and trained again."""
    if entry is None:
        return False
    if portable_config(entry["config"]) == portable_config(cfg.to_dict()):
        return True
    say(f"{name}: finished with another recipe than the current one; training it again")
    return False


def adopt_published(args, path: Path, state: dict, runs: Path) -> list[str]:
    """Take the finished runs of a published result file (an earlier sitting's ``cifar10_cpu.json``) into
    the state, so that a study resumed on a machine that lost its run folder trains only what is missing.
    A run is taken only when its method's recipe still trains it for the epochs it was trained for; each
    taken entry says where it came from, and the report marks it."""
    if not path.is_file():
        raise SpikeDistillError(f"--adopt {path}: no such file; pass a published result file such as "
                                "results/cifar10_cpu.json")
    try:
        published = json.loads(path.read_text())
        runs_published, machine = published["runs"], published["machine"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SpikeDistillError(f"--adopt {path}: not a published study result ({exc}); "
                                "pass results/cifar10_cpu.json") from None
    label = f"{path.name} at commit {published.get('commit')}"
    if published.get("teacher_top1") is not None:  # so the report can set that teacher beside this study's
        label += f", teacher {published['teacher_top1']:.2f} %"
    profile, taken = PROFILES[args.profile], []
    for run in runs_published:
        method, seed, key = run["method"], run["seed"], f"{run['method']}-s{run['seed']}"
        if key in state["students"] or method not in profile.students:
            continue
        def make(epochs, method=method, seed=seed):
            return student_config(args, method, seed, epochs, runs)

        cfg = make(fixed_epochs(args, method, make))  # built exactly as the students stage builds it
        if run["epochs"] != cfg.optim.epochs:
            say(f"{key}: published with {run['epochs']} epochs, the recipe now trains {cfg.optim.epochs}; not adopted")
            continue
        ks = sorted(run["top1"], key=int)
        state["students"][key] = {
            "config": portable_config(cfg.to_dict()), "device": machine, "epochs": run["epochs"],
            "wall_seconds": None, "train_seconds": run["train_seconds"], "resumed": False, "load": "—",
            "loss": {"name": cfg.loss.name, "options": cfg.loss.options}, "seed": seed, "method": method,
            "timesteps": [int(k) for k in ks], "top1": [run["top1"][k] for k in ks],
            "energy_mj": [run["energy_uj"][k] / 1e3 for k in ks], "adopted": label}
        taken.append(key)
    if taken:
        say(f"adopted from {label}: {', '.join(taken)}")
    return taken
