"""``build_run``: everything a training run is made of, built from its recipe, before any step.

Data (whole datasets as uint8 tensors, moved to the device once) → batched augmentation → the model
→ the objective (bound to the model) → the frozen teacher → optimizer and schedule. Nothing here
trains; :mod:`.loop` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import input_spec, load_checkpoint, model_spec
from ..errors import SpikeDistillError
from ..losses import create_loss
from ..models import MODELS, create_model
from .config import Config
from .optim import build_optimizer, build_schedule
from .task import as_teacher


@dataclass
class Run:
    cfg: Config
    device: torch.device
    train_set: object
    test_set: object
    events: bool                  # event frames [N, T, C, H, W] rather than images
    augment: nn.Module
    batch_size: int               # per process
    steps_per_epoch: int
    model: nn.Module
    spec: dict                    # the checkpoint's model description
    inputs: dict                  # the checkpoint's input description
    objective: nn.Module
    teacher: nn.Module | None
    teacher_features: bool
    train_timesteps: int
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    channels_last: bool


def preflight(cfg: Config):
    """What can be checked without the data, in a second, so a mistake never waits for minutes of loading:
    the model builds from ``model.*``, the objective from ``loss.*`` and binds to it, the teacher checkpoint
    exists, is readable and builds with finite weights. Returns ``(teacher checkpoint, teacher network)`` (or None)."""
    options = dict(cfg.model.options)
    if cfg.model.spiking and MODELS.get(cfg.model.name).takes("timesteps"):
        options.setdefault("timesteps", cfg.timesteps)
    model = create_model(cfg.model.name, spiking=cfg.model.spiking, num_classes=10, **options)
    objective = create_loss(cfg.loss.name, **cfg.loss.options)
    objective.bind(model)
    if not objective.needs_teacher or cfg.teacher.source != "checkpoint":  # other sources are built with the run
        return None
    ckpt = teacher_checkpoint(cfg)
    return ckpt, ckpt.model()


def teacher_checkpoint(cfg: Config):
    """``teacher.checkpoint`` read as a :class:`~spikedistill.checkpoint.Checkpoint`; missing is one line
    saying what would train it (the teacher stage, :mod:`.teacher`)."""
    path = cfg.teacher.checkpoint
    if path is None:
        raise SpikeDistillError(f"loss '{cfg.loss.name}' needs a teacher; set teacher.checkpoint=PATH (a best.pt) "
                                "or train one with a teacher recipe first")
    if not Path(path).exists():
        from .teacher import missing_teacher_message

        raise SpikeDistillError(missing_teacher_message(cfg))
    ckpt = load_checkpoint(path, role="teacher")
    from .teacher import recipe_differences, stale_teacher_message

    differences = recipe_differences(cfg, ckpt.config)
    if differences:  # e.g. a smoke run's teacher, trained on 64 images, never teaches a full run
        raise SpikeDistillError(stale_teacher_message(cfg, differences))
    return ckpt


def split_batches(train_set, batch_size: int, world_size: int, key: str = "optim.batch_size",
                  samples: str = "training images") -> tuple[int, int]:
    """``(per-process batch size, steps per epoch)`` of a global ``batch_size`` over ``world_size`` processes,
    refused in one line (naming ``key``, the setting to change) when it does not divide or gives no batch."""
    from ..data import num_batches

    if batch_size % world_size:
        raise SpikeDistillError(f"{key}={batch_size} must divide by the {world_size} processes; change it")
    steps_per_epoch = num_batches(train_set, batch_size // world_size, drop_last=True, world_size=world_size)
    if steps_per_epoch == 0:
        raise SpikeDistillError(f"{len(train_set)} {samples} give no batch of {batch_size}; lower {key}")
    return batch_size // world_size, steps_per_epoch


def build_run(cfg: Config, ctx) -> Run:
    from ..data import load_dataset
    from ..data.dataset import with_normalisation

    device, cuda = ctx.device, ctx.device.type == "cuda"
    with torch.random.fork_rng(devices=[]):  # the check draws no number the run's own model would draw
        teacher = preflight(cfg)  # before the data: a wrong option or teacher fails in a second
    data = cfg.data
    train_set = load_dataset(data.name, data.root, split="train", download=data.download, **data.options)
    test_set = load_dataset(data.name, data.root, split="test", download=False, **data.options)
    train_set, test_set = (with_normalisation(d, data.mean, data.std) for d in (train_set, test_set))
    events = getattr(train_set, "images", None) is not None and train_set.images.dim() == 5  # frames [N, T, C, H, W]
    if data.subset:
        train_set = train_set.subset(min(data.subset, len(train_set)))
    if data.test_subset:  # every class in its share, as eval --limit: a split stored by class stays fair
        from ..data import stratified_indices

        test_set = test_set.subset(stratified_indices(test_set.labels, data.test_subset))
    augment = make_augment(data.augment, train_set, events)
    batch_size, steps_per_epoch = split_batches(train_set, cfg.optim.batch_size, ctx.world_size)

    # (C, H, W) of one sample as the model sees it at test time (a streamed ImageNet stores its training
    # images larger than the crop the augmentation cuts from them)
    sample_shape = tuple(test_set.images.shape[2:] if events else test_set.image_shape)
    entry = MODELS.get(cfg.model.name)  # a user's constructor may take neither in_channels nor timesteps
    options = {"in_channels": sample_shape[0],
               **cfg.model.options} if entry.takes("in_channels") else dict(cfg.model.options)
    if cfg.model.spiking and entry.takes("timesteps"):
        options.setdefault("timesteps", cfg.timesteps)
    spec = model_spec(cfg.model.name, cfg.model.spiking, train_set.num_classes, imports=cfg.imports, **options)
    model = create_model(cfg.model.name, spiking=cfg.model.spiking, num_classes=train_set.num_classes, **options)
    objective = create_loss(cfg.loss.name, **cfg.loss.options)
    objective.bind(model)  # e.g. TSSD's weak classifier, sized from the model's stage channels
    teacher = load_teacher(cfg, device, train_set.num_classes, teacher) if objective.needs_teacher else None
    train_timesteps = objective.train_timesteps(cfg.timesteps) if cfg.model.spiking else 1

    if ctx.distributed and cfg.distributed.sync_bn:
        if not cuda:
            raise SpikeDistillError("distributed.sync_bn needs CUDA devices (torch's SyncBatchNorm is GPU-only); "
                                    "set distributed.sync_bn=false for CPU runs")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    objective.to(device)
    channels_last = cuda and cfg.channels_last and not events
    if channels_last:  # NHWC convolutions are faster on tensor cores
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.optim, [model, objective])
    return Run(cfg=cfg, device=device, train_set=train_set, test_set=test_set, events=events, augment=augment,
               batch_size=batch_size, steps_per_epoch=steps_per_epoch, model=model, spec=spec,
               inputs=input_spec(sample_shape, events, cfg.eval_timesteps), objective=objective, teacher=teacher,
               teacher_features=objective.needs_teacher_features or cfg.teacher.features,
               train_timesteps=train_timesteps, optimizer=optimizer,
               schedule=build_schedule(cfg.optim, optimizer, steps_per_epoch),
               channels_last=channels_last)


def build_teacher(teacher, num_classes: int) -> nn.Module:
    """The network of ``teacher.source`` module, torchscript or torchvision (:mod:`spikedistill.models.teachers`)."""
    from ..models import teachers

    if teacher.source == "torchscript":
        return teachers.torchscript_teacher(teacher.checkpoint)
    build = teachers.module_teacher if teacher.source == "module" else teachers.torchvision_teacher
    return build(teacher.name, num_classes, teacher.weights, teacher.options)


def make_augment(cfg, dataset, events: bool) -> nn.Module:
    check_augment_applies(cfg, dataset, events)
    if events:
        from ..data.events import EventAugment

        return EventAugment(flip=cfg.flip, roll=cfg.roll, rotate=cfg.rotate, cutout=cfg.cutout)
    from ..data import GpuAugment

    return GpuAugment(crop_padding=cfg.crop_padding, flip=cfg.flip, autoaugment=cfg.autoaugment, cutout=cfg.cutout,
                      erasing=cfg.erasing, mean=dataset.mean, std=dataset.std, resized_crop=cfg.resized_crop)


def check_augment_applies(cfg, dataset, events: bool) -> None:
    """An augmentation option the dataset's kind has no use for is refused, not ignored."""
    if events:
        unused = {"autoaugment": cfg.autoaugment not in (False, None, "none", ""), "erasing": bool(cfg.erasing),
                  "resized_crop": bool(cfg.resized_crop)}
        kind, applies = "event frames", "flip, roll, rotate, cutout"
    else:
        unused = {"roll": bool(cfg.roll), "rotate": bool(cfg.rotate)}
        kind, applies = "images", "crop_padding, flip, autoaugment, cutout, erasing, resized_crop"
    given = [name for name, used in unused.items() if used]
    if given:
        raise SpikeDistillError(f"data.augment.{given[0]} does not apply to {getattr(dataset, 'name', 'this dataset')} "
                                f"({kind}; it takes {applies}); remove it from the recipe")


def load_teacher(cfg: Config, device: torch.device, num_classes: int | None = None, loaded=None) -> nn.Module:
    """The frozen teacher: from ``teacher.checkpoint`` (``loaded``: the ``(checkpoint, network)`` preflight
    already read), or a timm model (``teacher.source: timm``, the FR ImageNet teacher). Eval mode, no
    gradients (docs/conventions.md) — or, with ``teacher.train_mode``, train mode as the CKDSNN code runs it
    (its BatchNorm normalises with each batch's statistics and updates its running averages). A missing
    checkpoint is an error here; training it is the explicit stage of :mod:`.teacher`."""
    if cfg.teacher.source == "timm":
        from ..models.timm_teacher import create_timm_teacher

        teacher = create_timm_teacher(cfg.teacher.name, num_classes, cfg.teacher.pretrained, cfg.teacher.weights)
    elif cfg.teacher.source != "checkpoint":  # module, torchscript, torchvision: a plain network → [B, K] logits
        teacher = as_teacher(build_teacher(cfg.teacher, num_classes))
    elif loaded is not None:
        ckpt, teacher = loaded
        ckpt.require_classes(num_classes)
    else:
        teacher = teacher_checkpoint(cfg).model(num_classes=num_classes)
    teacher.to(device).train(cfg.teacher.train_mode)
    if device.type == "cuda" and cfg.channels_last:
        teacher.to(memory_format=torch.channels_last)
    # No gradient reaches the teacher either way: the CKDSNN code omits no_grad, but its teacher's weights are
    # not in the optimizer and every objective here detaches its targets, so that changes no number.
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
