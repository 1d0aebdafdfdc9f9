"""Recipes as data: a nested dataclass schema, YAML loading with validation, ``key=value`` overrides.

A recipe is plain YAML read with ``yaml.safe_load`` — no tags, nothing imported or executed. Every key
is checked against the schema below: an unknown key is an error naming the nearest valid key, a wrong
type or range is one line saying what is expected: a field's choices are its ``Literal`` type, its range
its ``metadata`` (``POSITIVE``, ``NON_NEGATIVE``...), checked by :mod:`spikedistill.checks`.
``model.options`` and ``loss.options`` are free dicts, validated by ``create_model`` / ``create_loss``
when the run starts.

    cfg = load_config("configs/cifar10/twkd_resnet19.yaml", ["optim.epochs=5", "data.subset=512"])
    cfg.optim.lr, cfg.to_dict()
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from ..checks import check_choice, check_range
from ..errors import SpikeDistillError, did_you_mean

# A field's allowed range, declared on the field (its choices are its Literal type); validate() checks them.
POSITIVE = {"low": 0, "inclusive": False}
NON_NEGATIVE = {"low": 0}
PROBABILITY = {"low": 0, "high": 1, "rule": "a probability in [0, 1]"}
MAX_SEED = 2**63 - 1  # what every RNG (torch, numpy modulo 2**32, Python) accepts
SEED = {"low": 0, "high": MAX_SEED, "rule": "an integer in 0..2**63-1", "fix": "e.g. seed=60"}


@dataclass
class ModelConfig:
    name: str = "resnet19"
    spiking: bool = True
    options: dict = field(default_factory=dict)  # create_model kwargs: LIF options, in_channels, ...


@dataclass
class TeacherConfig:
    # "checkpoint": a spikedistill run; "timm": a timm model (the ImageNet teacher); "module": a registered model
    # or module:callable + weights; "torchscript"; "torchvision"
    source: Literal["checkpoint", "timm", "module", "torchscript", "torchvision"] = "checkpoint"
    # a best.pt/latest.pt written by 'spikedistill train' (source torchscript: the file)
    checkpoint: Optional[str] = None
    recipe: Optional[str] = None      # trained first (into the checkpoint's folder) when the checkpoint is missing
    features: bool = False            # also hand the teacher's stage features to the objective
    train_mode: bool = False          # True: BN batch statistics, no no_grad, as the CKDSNN code runs its teacher
    # source "timm"/"torchvision": the model name, e.g. resnet34; "module": a registered
    name: Optional[str] = None
                                      # model name or "package.module:callable"
    pretrained: bool = False          # source "timm": download timm's pretrained weights (only when asked)
    weights: Optional[str] = None     # source "timm"/"module"/"torchvision": a state_dict file (.pth/.pt/.safetensors)
    options: dict = field(default_factory=dict)  # source "module"/"torchvision": constructor keyword arguments


@dataclass
class LossConfig:
    name: str = "ce"
    options: dict = field(default_factory=dict)  # create_loss kwargs


@dataclass
class AugmentConfig:
    crop_padding: int = field(default=4, metadata=NON_NEGATIVE)
    flip: bool = True
    autoaugment: Union[bool, str] = False  # fr_cifar10 | torchvision_cifar10; true = fr_cifar10, false = off
    cutout: int = field(default=0, metadata=NON_NEGATIVE)
    # event frames only: roll by up to ±roll pixels (the FR CIFAR10-DVS recipe), rotate by up to ±rotate degrees
    roll: int = field(default=0, metadata=NON_NEGATIVE)
    rotate: float = field(default=0.0, metadata=NON_NEGATIVE)
    # probability of RandomErasing(scale 0.02–0.2), CKDSNN's Cutout substitute
    erasing: float = field(default=0.0, metadata=PROBABILITY)
    # random resized crop to this side (scale 0.08–1, ratio 3/4–4/3), ImageNet's training crop
    resized_crop: int = field(default=0, metadata=NON_NEGATIVE)


@dataclass
class DataConfig:
    name: str = "cifar10"
    root: Optional[str] = None
    download: bool = False
    subset: Optional[int] = field(default=None, metadata=POSITIVE)  # first N training images (smoke runs)
    test_subset: Optional[int] = field(default=None, metadata=POSITIVE)  # first N test images
    options: dict = field(default_factory=dict)  # loader keyword arguments (e.g. event binning: timesteps, size)
    # event data at k < T_max: the first k frames ("prefix") or re-binned ("rebin")
    any_t_policy: Literal["prefix", "rebin"] = "prefix"
    mean: Optional[list] = None  # per-channel normalisation (0..1 units) instead of the dataset's; give std too
    std: Optional[list] = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = field(default=0.1, metadata=POSITIVE)
    momentum: float = field(default=0.9, metadata=NON_NEGATIVE)
    nesterov: bool = False
    weight_decay: float = field(default=5e-4, metadata=NON_NEGATIVE)
    decay_all: bool = False  # False: decay conv/linear weights only (FR code); True: every parameter (CKDSNN code)
    betas: list = field(default_factory=lambda: [0.9, 0.999])  # AdamW only
    epochs: int = field(default=300, metadata=POSITIVE)
    batch_size: int = field(default=128, metadata=POSITIVE)  # global; each of N processes takes batch_size / N
    grad_clip: Optional[float] = field(default=None, metadata=POSITIVE)  # max global grad norm; None = off
    schedule: Literal["cosine", "constant"] = "cosine"  # cosine (stepped per iteration, eta_min 0) | constant
    # linear warm-up from 0 over this many epochs (fractions allowed), then the schedule
    warmup_epochs: float = field(default=0.0, metadata=NON_NEGATIVE)


@dataclass
class DistributedConfig:
    sync_bn: bool = False
    backend: Optional[Literal["nccl", "gloo"]] = None  # None: nccl on CUDA, gloo on CPU


@dataclass
class LogConfig:
    progress: bool = True       # tqdm bars with ETA on a terminal; progress lines in a log (not a terminal)
    # seconds between progress lines when the output is not a terminal
    progress_every_seconds: float = field(default=30.0, metadata=POSITIVE)
    tensorboard: bool = True    # events in the run dir when tensorboard is installed
    # also write step/train_loss and step/lr every N optimizer steps; 0 = per epoch only
    tensorboard_every_steps: int = field(default=50, metadata=NON_NEGATIVE)
    # epochs between test evaluations (the last epoch is always evaluated)
    eval_every: int = field(default=1, metadata=POSITIVE)
    best_by: Literal["last", "mean"] = "last"  # best.pt by top-1 at T_max ("last") or mean top-1 over 1..T_max ("mean")
    # best.pt by top-1 at this k instead (the T a method reports); None = T_max
    best_by_timesteps: Optional[int] = field(default=None, metadata=POSITIVE)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    timesteps: int = field(default=4, metadata=POSITIVE)  # training T (an objective may extend it, e.g. TSSD)
    max_timesteps: Optional[int] = field(default=None, metadata=POSITIVE)  # evaluation range 1..T_max; None = timesteps
    precision: Literal["bf16", "fp32"] = "bf16"  # bf16 autocast on CUDA; fp32 elsewhere
    channels_last: bool = True            # CUDA only
    compile: bool = False                 # torch.compile the model
    seed: int = field(default=60, metadata=SEED)
    device: str = "auto"                  # auto | cpu | cuda | cuda:N
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    log: LogConfig = field(default_factory=LogConfig)
    # modules imported first (spikedistill --import): a user's registrations
    imports: list = field(default_factory=list)

    @property
    def eval_timesteps(self) -> int:
        if not self.model.spiking:
            return 1
        return self.max_timesteps or self.timesteps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --- building the dataclasses from plain data, with one clear line per mistake ---------------------

def _type_name(tp) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", dict: "a mapping",
            list: "a list"}.get(tp, getattr(tp, "__name__", str(tp)))


def _check_value(key: str, value: Any, tp) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for arg in args[:-1]:  # e.g. Union[bool, str]: the first type the value is
            if isinstance(value, arg):
                return _check_value(key, value, arg)
        return _check_value(key, value, args[-1])
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".")
    if origin is Literal:
        return check_choice(f"config key '{key}'", value, typing.get_args(tp))
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads 1e-4 (no dot) as a string; accept it as the number it is meant to be
            value = float(value)
        except ValueError:
            pass
    expected = {bool: bool, int: int, float: (int, float), str: str, dict: dict, list: list}[tp]
    ok = isinstance(value, expected) and not (tp in (int, float) and isinstance(value, bool))
    if not ok:
        raise SpikeDistillError(f"config key '{key}' must be {_type_name(tp)}, got {value!r}; fix it in the recipe or "
                                f"override {key}=...")
    if tp is float:
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise SpikeDistillError(f"config key '{key}' must be a finite number, got {value!r}")
    return value


def _build(cls, data: Any, prefix: str = ""):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = f"'{prefix[:-1]}'" if prefix else "the recipe"
        raise SpikeDistillError(f"config {where} must be a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            hint = did_you_mean(prefix + str(key),
                                [prefix + n for n in names]) or f" valid keys here: {', '.join(names)}"
            raise SpikeDistillError(f"unknown config key '{prefix}{key}';{hint}")
    return cls(**{k: _check_value(prefix + k, v, hints[k]) for k, v in data.items()})


def _check_fields(obj, prefix: str = "") -> None:
    """Every field's declared allowed values: its ``Literal`` choices and its range (``metadata``)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        key, value, tp = prefix + f.name, getattr(obj, f.name), hints[f.name]
        if dataclasses.is_dataclass(value):
            _check_fields(value, key + ".")
            continue
        if value is None:
            continue
        choices = [a for a in (tp, *typing.get_args(tp)) if typing.get_origin(a) is Literal]
        if choices:
            check_choice(f"config key '{key}'", value, typing.get_args(choices[0]))
        if "low" in f.metadata:
            rule = f.metadata.get("rule")
            check_range(f"config key '{key}'", value, f.metadata["low"], f.metadata.get("high", math.inf),
                        f.metadata.get("inclusive", True),
                        say=lambda name, got, bounds: f"{name} must be {rule or bounds} (got {got!r})"
                                                      + (f"; {f.metadata['fix']}" if "fix" in f.metadata else ""))


def validate(cfg: Config) -> Config:
    _check_fields(cfg)
    if not isinstance(cfg.model.spiking, bool):
        raise SpikeDistillError("config key 'model.spiking' must be true or false")
    if cfg.data.augment.resized_crop and cfg.data.augment.crop_padding:
        raise SpikeDistillError("data.augment.resized_crop replaces the padded crop; set data.augment.crop_padding=0")
    _validate_normalisation(cfg.data)
    betas = cfg.optim.betas
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                                  for b in betas):
        raise SpikeDistillError(f"config key 'optim.betas' must be two numbers in [0, 1), got {betas!r}; "
                                "e.g. optim.betas=[0.9, 0.999]")
    if cfg.optim.name == "sgd" and cfg.optim.nesterov and cfg.optim.momentum == 0:
        raise SpikeDistillError("optim.nesterov=true needs optim.momentum > 0; set optim.momentum=0.9 or "
                                "optim.nesterov=false")
    _validate_teacher(cfg.teacher)
    if not all(isinstance(name, str) and name for name in cfg.imports):
        raise SpikeDistillError(f"config key 'imports' must be a list of module names, got {cfg.imports!r}")
    best_k = cfg.log.best_by_timesteps
    if best_k is not None:
        if cfg.log.best_by == "mean":
            raise SpikeDistillError("log.best_by_timesteps picks best.pt at one k, log.best_by=mean averages over all "
                                    "k; set one of them (e.g. log.best_by=last)")
        if best_k > cfg.eval_timesteps:
            raise SpikeDistillError(f"log.best_by_timesteps={best_k} is beyond the evaluated range "
                                    f"1..{cfg.eval_timesteps}; lower it or raise max_timesteps")
    if cfg.teacher.checkpoint is None and cfg.teacher.recipe is not None:
        raise SpikeDistillError("teacher.recipe needs teacher.checkpoint (where the trained teacher is written); set "
                                "teacher.checkpoint=PATH/best.pt")
    return cfg


def _validate_normalisation(data: DataConfig) -> None:
    from ..data.autoaugment import POLICIES

    policy = data.augment.autoaugment
    if isinstance(policy, str) and policy not in POLICIES:
        raise SpikeDistillError("config key 'data.augment.autoaugment' must be true, false or a policy name, got "
                                f"{policy!r};{did_you_mean(policy, list(POLICIES))} known: {', '.join(POLICIES)}")
    if (data.mean is None) != (data.std is None):
        raise SpikeDistillError("data.mean and data.std go together; set both (e.g. data.std=[0.2023, 0.1994, 0.2010]) "
                                "or neither")
    if data.mean is None:
        return
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data.mean + data.std)
    if not numbers or len(data.mean) != len(data.std) or not data.mean:
        raise SpikeDistillError(f"data.mean and data.std must be lists of one number per channel, got {data.mean!r} "
                                f"and {data.std!r}; e.g. data.mean=[0.4914, 0.4822, 0.4465]")
    if not all(math.isfinite(v) for v in data.mean) or not all(math.isfinite(v) and v > 0 for v in data.std):
        raise SpikeDistillError(f"data.std must be positive and data.mean finite, got {data.mean!r} and {data.std!r}")


def _validate_teacher(teacher: TeacherConfig) -> None:
    source = teacher.source
    if source in ("timm", "module", "torchvision"):
        if not teacher.name:
            example = {"timm": "resnet34", "torchvision": "resnet18",
                       "module": "my_ann (registered) or mypkg.nets:MyANN"}
            raise SpikeDistillError(f"teacher.source={source} needs teacher.name, the model (e.g. "
                                    f"teacher.name={example[source]})")
        if teacher.checkpoint is not None or teacher.recipe is not None:
            raise SpikeDistillError(f"teacher.source={source} takes teacher.weights (a state_dict file), not "
                                    "teacher.checkpoint/teacher.recipe; set those to null")
        if teacher.pretrained and (teacher.weights is not None or source != "timm"):
            raise SpikeDistillError("teacher.pretrained=true downloads timm's weights (teacher.source=timm only) and "
                                    "teacher.weights loads a file; set one of them")
        if source == "timm" and teacher.options:
            raise SpikeDistillError("teacher.options belong to teacher.source=module or torchvision; drop them")
    elif source == "torchscript":
        if teacher.checkpoint is None or teacher.recipe is not None:
            raise SpikeDistillError("teacher.source=torchscript needs teacher.checkpoint=FILE, the TorchScript file "
                                    "(torch.jit.save), and no teacher.recipe")
        if teacher.name is not None or teacher.pretrained or teacher.weights is not None or teacher.options:
            raise SpikeDistillError("a TorchScript teacher is the whole network in one file; drop teacher.name, "
                                    "teacher.pretrained, teacher.weights and teacher.options")
    elif teacher.name is not None or teacher.pretrained or teacher.weights is not None or teacher.options:
        raise SpikeDistillError("teacher.name, teacher.pretrained, teacher.weights and teacher.options belong to "
                                "teacher.source=timm, module or torchvision; set teacher.source or drop them")


def config_from_dict(data: dict) -> Config:
    return validate(_build(Config, data))


# --- YAML and overrides ------------------------------------------------------------------------

def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=0.05"`` → ``(["optim", "lr"], 0.05)``; the value is read as a YAML scalar/flow value."""
    if "=" not in text:
        raise SpikeDistillError(f"override '{text}' is not key=value; write e.g. optim.lr=0.05")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise SpikeDistillError(f"override '{text}' has an empty key; write e.g. optim.lr=0.05")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        tag = _refused_tag(exc)
        if tag:
            raise SpikeDistillError(f"override '{text}' uses the YAML tag '{tag}'; values are plain data (no tags, "
                                    "nothing is imported or executed): remove the tag") from None
        raise SpikeDistillError(f"override '{text}': cannot read the value {raw!r}; quote strings, e.g. "
                                f"{key}='{raw}'") from None
    return key.split("."), value


def apply_overrides(data: dict, overrides) -> dict:
    for text in overrides or ():
        path, value = parse_override(text)
        node = data
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                prefix = '.'.join(path[:i + 1])
                raise SpikeDistillError(f"override '{text}': '{prefix}' is a value, not a section; set it whole, e.g. "
                                        f"{prefix}=VALUE")
            node = child
        node[path[-1]] = value
    return data


def _refused_tag(exc: yaml.YAMLError) -> str | None:
    """The tag ``yaml.safe_load`` refused to construct (``!!python/object/apply:os.system``...), or None."""
    import re

    if not isinstance(exc, yaml.constructor.ConstructorError):
        return None
    found = re.search(r"tag '([^']*)'", str(exc.problem))
    return found.group(1).replace("tag:yaml.org,2002:", "!!") if found else None


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping (safe_load keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        written = [key for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"]  # before '<<' is merged in
        mapping = super().construct_mapping(node, deep=deep)  # a refused tag is said first
        seen = set()
        for key_node in written:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # an unhashable key: the mapping itself reports it
            if key in seen:
                raise SpikeDistillError(f"the key '{key}' is given twice in one section (line "
                                        f"{key_node.start_mark.line + 1}); keep one of them")
            seen.add(key)
        return mapping


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SpikeDistillError(f"recipe '{path}' does not exist; pick one under configs/ (e.g. "
                                "configs/cifar10/twkd_resnet19.yaml)")
    try:
        # data only: refuses tags that build objects
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except SpikeDistillError as exc:  # a key given twice
        raise SpikeDistillError(f"recipe '{path}': {exc}") from None
    except UnicodeDecodeError:
        raise SpikeDistillError(f"recipe '{path}' is not a text file (not UTF-8); pass a YAML recipe, "
                                "e.g. configs/cifar10/twkd_resnet19.yaml") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        tag = _refused_tag(exc)
        if tag:
            raise SpikeDistillError(f"recipe '{path}' is not valid YAML data{where}: the tag '{tag}' is refused, "
                                    "recipes are plain data (no tags, nothing is imported or executed); remove the "
                                    "tag") from None
        raise SpikeDistillError(f"recipe '{path}' is not valid YAML{where}; fix the syntax") from None
    if data is not None and not isinstance(data, dict):
        raise SpikeDistillError(f"recipe '{path}' must be a mapping of keys (model:, loss:, data:, ...), got "
                                f"the {type(data).__name__} {str(data)[:40]!r}; see configs/ for examples")
    return data or {}


def load_config(path: str | Path | None = None, overrides=()) -> Config:
    """Read a recipe (or start from the defaults), apply ``key=value`` overrides, validate."""
    data = read_yaml(path) if path is not None else {}
    if path is not None:
        _resolve_teacher_recipe(data, Path(path))
    return config_from_dict(apply_overrides(data, overrides))


def _resolve_teacher_recipe(data: dict, recipe: Path) -> None:
    """A relative ``teacher.recipe`` in a recipe file names a file beside that recipe (or under one of its
    parent folders, as the shipped recipes name ``configs/...``), wherever the command runs from."""
    teacher = data.get("teacher")
    named = teacher.get("recipe") if isinstance(teacher, dict) else None
    if not isinstance(named, str) or Path(named).expanduser().is_absolute():
        return
    folder = recipe.expanduser().resolve().parent
    for base in (folder, *folder.parents):
        if (base / named).is_file():
            teacher["recipe"] = str(base / named)
            return


def flat_keys(data: dict, prefix: str = "") -> dict:
    """A recipe dict as ``{"optim.lr": 0.1, ...}``; an ``options`` dict stays one value (compared whole)."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "options":
            flat.update(flat_keys(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


PATH_KEYS = ("data.root", "teacher.checkpoint", "teacher.recipe")


def with_absolute_paths(cfg: Config) -> Config:
    """``cfg`` with its file paths (``PATH_KEYS``) absolute, so the saved recipe resolves from any directory."""
    import copy

    cfg = copy.deepcopy(cfg)
    for key in PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is not None:
            setattr(getattr(cfg, section), name, str(Path(value).expanduser().resolve()))
    return cfg
