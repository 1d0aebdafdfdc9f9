"""Checkpoints: one self-describing file, written atomically, loaded with clear errors.

    ckpt = sd.load_checkpoint("runs/cifar10/twkd_resnet19/best.pt")
    net = ckpt.model()                    # built, weights loaded, eval mode
    ckpt.max_timesteps, ckpt.input_shape, ckpt.frames, ckpt.num_classes, ckpt.config, ckpt.metrics

Layout (a dict saved with ``torch.save``)::

    {"format": "spikedistill-checkpoint", "version": 1,
     "model": {"name": "resnet19", "spiking": True, "num_classes": 10, "options": {...}},  # create_model args
     "input": {"shape": [C, H, W], "frames": bool, "max_timesteps": T},  # what one sample is (None: see Checkpoint)
     "state_dict": {...},                 # model weights
     "config": {...} | None,              # the resolved recipe that trained it
     "epoch": int, "step": int,           # progress (for --resume)
     "training": {...} | None,            # optimizer, scheduler, RNG states, objective state (resume only)
     "metrics": {...}}                    # e.g. {"top1": {1: .., T: ..}, "best_top1": ..}

Writes are atomic (:func:`spikedistill.io.atomic_save`): a crash mid-write leaves the previous checkpoint
intact.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from .errors import SpikeDistillError, UnknownNameError
from .io import atomic_save
from .models import create_model, default_input_shape
from .registry import import_modules

FORMAT = "spikedistill-checkpoint"
VERSION = 1


def model_spec(name: str, spiking: bool, num_classes: int, imports=(), **options) -> dict:
    """The checkpoint's model entry: ``create_model`` arguments, and the user modules (``imports``) that
    register the model, imported again before it is rebuilt."""
    spec = {"name": name, "spiking": spiking, "num_classes": num_classes, "options": options}
    if imports:
        spec["imports"] = list(imports)
    return spec


def input_spec(shape, frames: bool, max_timesteps: int) -> dict:
    """What one sample the model was trained on looks like: ``(C, H, W)``, event frames or not, T_max."""
    return {"shape": [int(n) for n in shape], "frames": bool(frames), "max_timesteps": int(max_timesteps)}


def save_checkpoint(path, *, model: torch.nn.Module, spec: dict, config: dict | None = None, epoch: int = 0,
                    step: int = 0, training: dict | None = None, metrics: dict | None = None,
                    inputs: dict | None = None) -> None:
    atomic_save(
        {"format": FORMAT, "version": VERSION, "model": spec, "input": inputs, "state_dict": model.state_dict(),
         "config": config, "epoch": epoch, "step": step, "training": training, "metrics": metrics or {}},
        path,
    )


def load_checkpoint(path: str | os.PathLike, map_location="cpu", role: str = "checkpoint") -> "Checkpoint":
    """Read and validate a checkpoint file → :class:`Checkpoint`; every failure is one clear
    :class:`SpikeDistillError`. ``role`` names the file in messages (e.g. ``"teacher"``)."""
    return Checkpoint(_read(Path(path), map_location), path, role)


def _read(path: Path, map_location) -> dict:
    path = Path(path)
    if path.is_dir():
        raise SpikeDistillError(f"checkpoint '{path}' is a directory; pass a .pt file in it (e.g. {path / 'best.pt'})")
    if not path.is_file():
        raise SpikeDistillError(f"checkpoint '{path}' does not exist; pass the path of a .pt file written by "
                                "'spikedistill train'")
    import warnings

    if _wants_cuda(map_location) and not torch.cuda.is_available():
        raise SpikeDistillError(f"cannot load checkpoint '{path}' with map_location={map_location!r}: no CUDA GPU is "
                                "visible here; load it with map_location='cpu'")
    try:
        with warnings.catch_warnings():  # torch's "looks like a TorchScript archive" warning: said below, in one line
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated, corrupt, or not a torch file at all
        if "numpy" in str(exc) and "weights_only" in str(exc).replace(" ", "_").lower():
            raise SpikeDistillError(
                f"checkpoint '{path}' holds numpy objects (e.g. a numpy scalar among its metrics), which a safe load "
                "refuses; if you trust the file, load it with torch.load(weights_only=False), turn them into Python "
                "numbers (float(x)) and save it again") from None
        what = _other_torch_file(exc)
        if what:
            raise SpikeDistillError(f"'{path}' is {what}, not a spikedistill checkpoint; "
                                    f"{_OTHER_FILE_ADVICE}") from None
        raise SpikeDistillError(
            f"checkpoint '{path}' is corrupt or truncated ({type(exc).__name__}); {_instead(path)}"
        ) from None
    if (isinstance(ckpt, dict) and ckpt and "format" not in ckpt
            and all(isinstance(v, torch.Tensor) for v in ckpt.values())):
        raise SpikeDistillError(f"'{path}' is a bare state_dict ({len(ckpt)} tensors), not a spikedistill checkpoint "
                                f"(a file written by 'spikedistill train' or sd.fit); {_OTHER_FILE_ADVICE}")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise SpikeDistillError(f"'{path}' is not a spikedistill checkpoint; pass a file written by 'spikedistill "
                                "train'")
    version = ckpt.get("version", 0)
    if not isinstance(version, int):
        raise SpikeDistillError(f"checkpoint '{path}' is damaged (format version {version!r}); {_instead(path)}")
    if version > VERSION:
        raise SpikeDistillError(f"checkpoint '{path}' has format version {version}; upgrade spikedistill to read it")
    return ckpt  # its layout is checked once, by Checkpoint


_OTHER_FILE_ADVICE = ("as a teacher, name its source: teacher.source=torchscript with teacher.checkpoint=FILE for a "
                      "TorchScript file, teacher.source=module with teacher.name=MODEL and teacher.weights=FILE for a "
                      "state_dict (save a pickled model's with torch.save(model.state_dict(), FILE)); in Python pass "
                      "the network itself: sd.fit(..., teacher=net) (docs/own-model.md)")


def _other_torch_file(exc: Exception) -> str | None:
    """What a torch file that ``weights_only`` refused is, from torch's message: TorchScript or a pickled object."""
    message = str(exc)
    if "TorchScript" in message:
        return "a TorchScript file"
    if "Unsupported global" in message and "GLOBAL numpy" not in message:  # torch.save(model) of a whole model
        return "a pickled Python object (torch.save(model) of a whole model)"
    return None


def _wants_cuda(map_location) -> bool:
    if isinstance(map_location, (str, torch.device)):
        return torch.device(map_location).type == "cuda"
    return False


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


class Checkpoint(Mapping):
    """A loaded checkpoint: the file's layout by key (``ckpt["training"]``) and what a user needs by name.

    ``model()`` rebuilds the network it describes with its weights, in eval mode; ``max_timesteps``,
    ``input_shape`` ``(C, H, W)`` and ``frames`` say how to feed it (a file saved without an ``input``
    entry, ``save_checkpoint(..., inputs=None)``, falls back to the recipe and the model family's registered
    input shape).
    """

    def __init__(self, data: dict, path=None, role: str = "checkpoint"):
        problem = _layout_problem(data)
        where = f"{role} '{path}'" if path is not None else role
        if problem:
            advice = _instead(Path(path)) if path is not None else "use another checkpoint"
            raise SpikeDistillError(f"{where} is damaged: {problem}; {advice}")
        self._data, self.path, self.role, self.where = data, path, role, where

    # --- the file's layout, read-only -------------------------------------------------------------
    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    # --- what a user asks for ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._data["model"]["name"]

    @property
    def spiking(self) -> bool:
        return self._data["model"]["spiking"]

    @property
    def num_classes(self) -> int:
        return self._data["model"]["num_classes"]

    @property
    def options(self) -> dict:
        return dict(self._data["model"].get("options") or {})

    @property
    def config(self) -> dict:
        config = self._data.get("config")
        return config if isinstance(config, dict) else {}

    @property
    def metrics(self) -> dict:
        metrics = self._data.get("metrics")
        return metrics if isinstance(metrics, dict) else {}

    @property
    def _input(self) -> dict:
        entry = self._data.get("input")
        return entry if isinstance(entry, dict) else {}

    @property
    def max_timesteps(self) -> int:
        """T_max the model was trained to serve: 1 for an ANN."""
        if not self.spiking:
            return 1
        config = self.config
        for value in (self._input.get("max_timesteps"), config.get("max_timesteps"), config.get("timesteps"),
                      self.options.get("timesteps")):
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                return value
        return 4  # TimeModel's default T for an SNN

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one sample (one frame for event data)."""
        shape = self._input.get("shape")
        if isinstance(shape, (list, tuple)) and len(shape) == 3:
            return tuple(int(n) for n in shape)
        return default_input_shape(self.name, self.options.get("in_channels"))

    @property
    def frames(self) -> bool:
        """True when the model was trained on event frames ``[T, B, C, H, W]`` (not static images)."""
        if "frames" in self._input:
            return bool(self._input["frames"])
        data = self.config.get("data")
        name = data.get("name") if isinstance(data, dict) else None
        from .data.events.dataset import EVENT_DATASETS  # no input entry: the recipe's dataset decides

        return name in EVENT_DATASETS

    def model(self, num_classes: int | None = None, device=None) -> torch.nn.Module:
        """The network, weights loaded, in eval mode. ``num_classes``: the count the caller needs (e.g. the
        student's dataset for a teacher); another count is refused with one line."""
        self.require_classes(num_classes)
        spec = self._data["model"]
        imports = spec.get("imports") or self.config.get("imports") or []
        try:
            import_modules(imports if isinstance(imports, list) else [], recorded_by=self.where)
            model = self._build_class(spec) if "class" in spec else create_model(
                self.name, spiking=self.spiking, num_classes=self.num_classes, **self.options)
        except UnknownNameError as exc:
            raise SpikeDistillError(f"{self.where}: {exc}; a model registered in your own code needs its module "
                                    "imported first: spikedistill --import MODULE ..., or import it before "
                                    "load_checkpoint") from None
        except SpikeDistillError as exc:
            raise SpikeDistillError(str(exc) if str(exc).startswith(self.where) else f"{self.where}: {exc}") from None
        except (TypeError, ValueError, RuntimeError) as exc:  # options that no model accepts: a damaged file
            raise SpikeDistillError(f"{self.where} describes a model that cannot be built ({type(exc).__name__}: "
                                    f"{exc}); use another checkpoint") from None
        load_weights(model, self._data["state_dict"], source=f"{self.where} ('{self.name}')")
        bad = non_finite_tensors(self._data["state_dict"])
        if bad:  # a diverged run's weights score chance level at every k: refuse rather than report it
            raise SpikeDistillError(f"{self.where} holds non-finite weights (NaN or inf in {len(bad)} tensors, first: "
                                    f"{bad[0]}); the run diverged before this was saved: use an earlier checkpoint "
                                    "(best.pt) or retrain with a lower optim.lr")
        if device is not None:
            model.to(device)
        return model.eval()

    def _build_class(self, spec: dict) -> torch.nn.Module:
        """A model that ``sd.fit`` trained from its own class: ``module:qualname`` built with the constructor
        arguments it recorded, or one line saying how to load the weights by hand."""
        import importlib
        import sys

        path = str(spec["class"])
        module_name, _, qualname = path.partition(":")
        by_hand = (f"build your model yourself and load the weights: net = {qualname.rsplit('.', 1)[-1]}(...); "
                   f"net.load_state_dict(sd.load_checkpoint('{self.path}')['state_dict'])")
        if not isinstance(spec.get("arguments"), dict):
            raise SpikeDistillError(f"{self.where} holds the weights of '{path}' but not the arguments that build it "
                                    f"(they are not attributes of the same name); {by_hand}")
        try:
            target = sys.modules[module_name] if module_name == "__main__" else importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError, KeyError) as exc:
            raise SpikeDistillError(f"{self.where} was trained from the class '{path}', which cannot be imported here "
                                    f"({type(exc).__name__}: {exc}); put its module on PYTHONPATH, or "
                                    f"{by_hand}") from None
        try:
            return target(**spec["arguments"])
        except Exception as exc:  # the user's constructor refused what was recorded
            raise SpikeDistillError(f"{self.where}: '{path}' cannot be built from the recorded arguments "
                                    f"{spec['arguments']} ({type(exc).__name__}: {exc}); {by_hand}") from None

    def require_classes(self, num_classes: int | None) -> None:
        """One line when the network predicts another number of classes than ``num_classes`` (None: any)."""
        if num_classes is not None and self.num_classes != num_classes:
            raise SpikeDistillError(
                f"{self.where} predicts {self.num_classes} classes but {num_classes} are needed here; "
                f"use a {self.role} trained on the same dataset (same classes)")

    def __repr__(self) -> str:
        kind = "SNN" if self.spiking else "ANN"
        return (f"Checkpoint({self.name} {kind}, {self.num_classes} classes, T_max={self.max_timesteps}, "
                f"input {self.input_shape}{' frames' if self.frames else ''}, epoch {self._data.get('epoch')})")


def non_finite_tensors(state_dict: dict) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an inf."""
    return [name for name, value in state_dict.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def load_weights(model: torch.nn.Module, state_dict: dict, source: str = "checkpoint") -> None:
    """``load_state_dict`` with one readable line when the architecture or class count differs."""
    own = model.state_dict()
    if not isinstance(state_dict, Mapping):
        raise SpikeDistillError(f"{source}: the weights must be a state_dict (name → tensor), got "
                                f"{type(state_dict).__name__}")
    not_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        what = type(state_dict[not_tensors[0]]).__name__
        raise SpikeDistillError(f"{source}: weight '{not_tensors[0]}' is of type {what}, not a torch tensor "
                                f"({len(not_tensors)} such); convert them, e.g. torch.from_numpy(array)")
    cast = [k for k in own if k in state_dict and own[k].is_floating_point() and not state_dict[k].is_floating_point()]
    if cast:  # load_state_dict would cast quantised integers to float without a word
        raise SpikeDistillError(f"{source}: weight '{cast[0]}' is {state_dict[cast[0]].dtype} where the model holds "
                                f"{own[cast[0]].dtype} ({len(cast)} such); dequantise the weights to float first")
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
    if missing or unexpected or mismatched:
        detail = (f"{len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} wrong-shaped tensors"
                  + (f" (first: {mismatched[0]} {tuple(state_dict[mismatched[0]].shape)} vs "
                     f"{tuple(own[mismatched[0]].shape)})" if mismatched else ""))
        raise SpikeDistillError(f"{source} does not fit this model: {detail}; check the model name and num_classes")
    model.load_state_dict(state_dict)
