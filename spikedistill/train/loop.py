"""The one training loop, for ANN teachers (``model.spiking: false``) and SNN students alike.

Data flows one way: GPU-resident uint8 dataset → batched augmentation → model ``[T, B, K]`` →
objective → optimizer. Each epoch ends with a one-pass full-range test (top-1 at every k ≤ T_max),
a ``metrics.csv`` row, and atomically written ``latest.pt`` (+ ``best.pt`` when it improved).

``train(cfg, out_dir, resume=True)`` continues a run exactly where ``latest.pt`` stopped — also in the
middle of an epoch: the epoch's data order is rebuilt from (seed, epoch), the batches already done
are skipped, and every RNG is restored to the state it had at the interruption.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import SpikeDistillError
from ..evaluate import fullrange_accuracy
from ..models import create_model
from . import distributed as dist_utils
from .checkpoint import (atomic_write_text, load_checkpoint, load_weights, model_from_checkpoint, model_spec,
                         remove_stale_temp_files, save_checkpoint)
from .config import Config, dump_config, load_config
from .metrics_log import MetricsLog
from .optim import build_optimizer, build_schedule
from .rng import rng_state, seed_everything, set_rng_state


RECIPE_KEYS = ("weight_decay", "momentum", "nesterov", "dampening", "betas", "eps")  # optimizer keys a recipe sets


def train(cfg: Config, out_dir: str | Path, resume: bool = False, stop_after_steps: int | None = None,
          verbose: bool = True) -> dict:
    """Train ``cfg`` into ``out_dir``; returns ``{"top1": {k: %} (last evaluation), "best_top1": %,
    "out": dir, "step": n, "stopped": bool, "model": the trained nn.Module}``.

    ``stop_after_steps`` ends the run after that many optimizer steps (counted from the start of the
    run), writing ``latest.pt`` mid-epoch — what a crash or Ctrl-C does, on purpose (resume tests).
    """
    from ..data import batches, load_dataset, num_batches
    from ..losses import create_loss

    out_dir = Path(out_dir)
    ctx = dist_utils.setup(cfg.device, cfg.distributed.backend)
    say = print if (verbose and ctx.main) else (lambda *a, **k: None)
    try:
        seed_everything(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        device, cuda = ctx.device, ctx.device.type == "cuda"

        # --- data: whole datasets as uint8 tensors, moved to the device once ------------------------
        data = cfg.data
        train_set = load_dataset(data.name, data.root, split="train", download=data.download, **data.options)
        test_set = load_dataset(data.name, data.root, split="test", download=False, **data.options)
        events = train_set.images.dim() == 5  # event frames [N, T, C, H, W]
        if data.subset:
            train_set = train_set.subset(min(data.subset, len(train_set)))
        if data.test_subset:
            test_set = test_set.subset(min(data.test_subset, len(test_set)))
        augment = make_augment(data.augment, train_set, events)
        if cfg.optim.batch_size % ctx.world_size:
            raise SpikeDistillError(f"optim.batch_size={cfg.optim.batch_size} must divide by the {ctx.world_size} processes; change it")
        batch_size = cfg.optim.batch_size // ctx.world_size
        steps_per_epoch = num_batches(train_set, batch_size, drop_last=True, world_size=ctx.world_size)
        if steps_per_epoch == 0:
            raise SpikeDistillError(f"{len(train_set)} training images give no batch of {cfg.optim.batch_size}; lower optim.batch_size")

        # --- model, objective, teacher ------------------------------------------------------------
        options = {"in_channels": train_set.images.shape[2 if events else 1], **cfg.model.options}
        if cfg.model.spiking:
            options.setdefault("timesteps", cfg.timesteps)
        spec = model_spec(cfg.model.name, cfg.model.spiking, train_set.num_classes, **options)
        model = create_model(cfg.model.name, spiking=cfg.model.spiking, num_classes=train_set.num_classes, **options)
        crit = create_loss(cfg.loss.name, **cfg.loss.options)
        teacher = load_teacher(cfg, device, say, train_set.num_classes) if crit.needs_teacher else None
        teacher_features = crit.needs_teacher_features or cfg.teacher.features
        train_timesteps = crit.train_timesteps(cfg.timesteps) if cfg.model.spiking else 1
        eval_timesteps = cfg.eval_timesteps

        if ctx.distributed and cfg.distributed.sync_bn:
            if not cuda:
                raise SpikeDistillError("distributed.sync_bn needs CUDA devices (torch's SyncBatchNorm is GPU-only); "
                                        "set distributed.sync_bn=false for CPU runs")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(device)
        crit.to(device)
        channels_last = cuda and cfg.channels_last and not events
        if channels_last:  # NHWC convolutions are faster on tensor cores
            model.to(memory_format=torch.channels_last)
        if any(isinstance(p, nn.parameter.UninitializedParameter) for p in crit.parameters()):
            materialize(crit, model, test_set, train_timesteps, device, cfg.model.spiking)  # e.g. TSSD's lazily built weak head
        optimizer = build_optimizer(cfg.optim, [model, crit])
        schedule = build_schedule(cfg.optim, optimizer)

        # --- resume -------------------------------------------------------------------------------
        start_epoch, step, skip, best, saved_rng, epoch_rng = 0, 0, 0, -math.inf, None, None
        partial = {}  # running sums of an epoch interrupted midway
        if resume:
            ckpt = load_checkpoint(out_dir / "latest.pt", map_location="cpu")
            if ckpt.get("training") is None:
                raise SpikeDistillError(f"'{out_dir / 'latest.pt'}' holds no training state; start a new run without --resume")
            load_weights(model, ckpt["state_dict"], source=f"'{out_dir / 'latest.pt'}'")
            state = ckpt["training"]
            # The recipe (with this command's overrides) decides the hyper-parameters; the saved state keeps
            # only the buffers (momentum, Adam moments). optim.weight_decay=... on --resume must take effect.
            recipe = [{k: v for k, v in group.items() if k in RECIPE_KEYS} for group in optimizer.param_groups]
            optimizer.load_state_dict(state["optimizer"])
            changes = []
            for group, wanted in zip(optimizer.param_groups, recipe):
                changes += [f"optim.{k} {group[k]} → {v}" for k, v in wanted.items() if group.get(k) != v]
                group.update(wanted)
            for change in dict.fromkeys(changes):
                say(f"{change} from here on")
            schedule.load_state_dict(state["schedule"])
            saved_lr = ((ckpt.get("config") or {}).get("optim") or {}).get("lr")
            if saved_lr and saved_lr != cfg.optim.lr:  # optim.lr=... on --resume, e.g. after a diverged run
                scale = cfg.optim.lr / saved_lr    # the saved state would silently keep the old rate
                schedule.base_lrs = [lr * scale for lr in schedule.base_lrs]
                for group in optimizer.param_groups:
                    group["lr"] *= scale
                say(f"optim.lr {saved_lr:g} → {cfg.optim.lr:g} from here on")
            crit.load_state_dict(state["objective"])
            start_epoch, step, skip = ckpt["epoch"], ckpt["step"], state["step_in_epoch"]
            best, saved_rng, epoch_rng = state["best"], state["rng"][ctx.rank], state["epoch_rng"][ctx.rank]
            partial = state.get("partial") or {}
            set_rng_state(saved_rng)
            say(f"resuming {out_dir} at epoch {start_epoch + 1}, step {step} ({skip} steps into the epoch)")
        else:
            seed_everything(cfg.seed + ctx.rank)  # augmentation draws differ per rank

        runner = model
        if ctx.distributed:
            runner = nn.parallel.DistributedDataParallel(model, device_ids=[device] if cuda else None)
        if cfg.compile:
            runner = torch.compile(runner)
        use_bf16 = cuda and cfg.precision == "bf16"
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext

        if ctx.main:
            out_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(out_dir)  # left by a run killed (SIGKILL, power cut) mid-write
            atomic_write_text(dump_config(cfg), out_dir / "config.yaml")
        log = MetricsLog(out_dir, start_epoch, cfg.log.tensorboard) if ctx.main else None
        say(f"{cfg.model.name} ({'SNN' if cfg.model.spiking else 'ANN'}, T={train_timesteps}) · loss {cfg.loss.name}"
            f" · {len(train_set)} train / {len(test_set)} test images of {data.name} · {cfg.optim.epochs} epochs × "
            f"{steps_per_epoch} steps · {device}{' bf16' if use_bf16 else ''} · {ctx.world_size} process(es) → {out_dir}")

        def checkpoint(name: str, epoch: int, step_in_epoch: int, metrics: dict, with_state: bool = True,
                       partial: dict | None = None):
            rngs = gather_rng(ctx)  # collective: every rank calls it
            epoch_rngs = _gather(epoch_rng, ctx)
            if not ctx.main:
                return
            training = None
            if with_state:
                training = {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                            "objective": crit.state_dict(), "step_in_epoch": step_in_epoch, "best": best,
                            "rng": rngs, "epoch_rng": epoch_rngs, "partial": partial}
            save_checkpoint(out_dir / name, model=model, spec=spec, config=cfg.to_dict(), epoch=epoch,
                            step=step, training=training, metrics=metrics)

        stop = StopFlag()
        nonfinite = NonFiniteLoss()
        top1: dict[int, float] = {}
        with stop:
            for epoch in range(start_epoch, cfg.optim.epochs):
                crit.set_epoch(epoch)
                if skip:      # rebuild this epoch's order, skip the done batches, restore the RNGs
                    set_rng_state(epoch_rng)
                else:
                    epoch_rng = rng_state()
                stream = batches(train_set, batch_size, shuffle=True, augment=augment, device=device, drop_last=True,
                                 seed=cfg.seed, epoch=epoch, rank=ctx.rank, world_size=ctx.world_size)
                for _ in range(skip):
                    next(stream)
                if skip:
                    set_rng_state(saved_rng)
                model.train()
                sums = {k: torch.tensor(v, device=device) for k, v in partial.get("sums", {}).items()}
                correct, seen = partial.get("correct", 0), partial.get("seen", 0)
                teacher_time, started = Stopwatch(cuda, partial.get("teacher_seconds", 0.0)), time.perf_counter() - partial.get("seconds", 0.0)
                partial = {}
                bar = progress(stream, total=steps_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}",
                               enabled=cfg.log.progress and ctx.main)
                step_in_epoch = skip  # stays so when the interruption came after the epoch's last step
                for step_in_epoch, (images, labels) in enumerate(bar, start=skip + 1):
                    if channels_last:
                        images = images.contiguous(memory_format=torch.channels_last)
                    with autocast():
                        teacher_logits = teacher_feats = None
                        if teacher is not None:  # frozen: eval mode, no grad; its cost is logged separately
                            with teacher_time, torch.no_grad():
                                out = teacher(model_input(images, teacher.spiking), return_features=teacher_features)
                            teacher_logits, teacher_feats = out if teacher_features else (out, None)
                        out = runner(model_input(images, cfg.model.spiking), timesteps=None if events else train_timesteps,
                                     return_features=crit.needs_features)
                        logits, features = out if crit.needs_features else (out, None)
                        loss = crit(logits, labels, teacher_logits=teacher_logits, features=features,
                                    teacher_features=teacher_feats, teacher=teacher)
                    optimizer.zero_grad(set_to_none=True)
                    loss.total.backward()
                    dist_utils.all_reduce_mean_([p.grad for p in crit.parameters() if p.grad is not None], ctx)
                    if cfg.optim.grad_clip:
                        nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], cfg.optim.grad_clip)
                    optimizer.step()
                    step += 1
                    nonfinite.record(step, loss)

                    # Running sums stay on the device: no host sync per step.
                    for name, value in {"loss": loss.total, **loss.parts}.items():
                        sums[name] = sums.get(name, 0) + value.detach().float()
                    correct += (logits.detach().float().mean(0).argmax(-1) == labels).sum()
                    seen += labels.numel()
                    if cfg.log.progress and ctx.main and step_in_epoch % 25 == 0:
                        bar.set_postfix(loss=f"{float(sums['loss']) / step_in_epoch:.3f}", refresh=False)
                    if step_in_epoch % 25 == 0:  # a diverged run stops within 25 steps, at one host sync
                        nonfinite.check(ctx, steps_per_epoch, out_dir)
                    if stop.requested or (stop_after_steps is not None and step >= stop_after_steps):
                        nonfinite.check(ctx, steps_per_epoch, out_dir)
                        so_far = {"sums": {k: float(v) for k, v in sums.items()}, "correct": int(correct), "seen": seen,
                                  "teacher_seconds": teacher_time.seconds(), "seconds": time.perf_counter() - started}
                        checkpoint("latest.pt", epoch, step_in_epoch, {"top1": top1, "best_top1": best}, partial=so_far)
                        say(f"stopped at step {step} (epoch {epoch + 1}, {step_in_epoch}/{steps_per_epoch}); "
                            f"continue with --resume --out {out_dir}")
                        if stop.requested:
                            raise KeyboardInterrupt
                        return {"out": str(out_dir), "top1": top1, "best_top1": best, "step": step, "stopped": True,
                                "model": model}
                nonfinite.check(ctx, steps_per_epoch, out_dir)  # before this epoch's checkpoints
                steps_done, skip = step_in_epoch, 0
                dist_utils.broadcast_buffers(model, ctx)
                lr = optimizer.param_groups[0]["lr"]
                with warnings.catch_warnings():  # a resumed epoch may run no optimizer step before this one
                    warnings.simplefilter("ignore", UserWarning)
                    schedule.step()

                # --- end of epoch: full-range test, metrics row, checkpoints ----------------------
                evaluate = (epoch + 1) % cfg.log.eval_every == 0 or epoch + 1 == cfg.optim.epochs
                row = {"epoch": epoch + 1, "step": step, "lr": lr}
                row.update({f"train_{k}": float(v) / max(1, steps_done) for k, v in sums.items()})
                row["train_top1"] = 100.0 * float(correct) / max(1, seen)
                if evaluate and ctx.main:
                    with autocast():
                        top1 = test_accuracy(model, test_set, cfg, batch_size, device, events)
                    row.update({f"test_top1_t{k}": v for k, v in top1.items()})
                row["seconds"] = time.perf_counter() - started
                row["teacher_seconds"] = teacher_time.seconds()
                improved = False
                if evaluate and ctx.main:
                    score = top1[eval_timesteps] if cfg.log.best_by == "last" else sum(top1.values()) / len(top1)
                    improved, best = score > best, max(best, score)
                best = dist_utils.broadcast_object(best, ctx)
                improved = dist_utils.broadcast_object(improved, ctx)
                metrics = {"top1": top1, "best_top1": best}
                if improved:
                    checkpoint("best.pt", epoch + 1, 0, metrics, with_state=False)
                checkpoint("latest.pt", epoch + 1, 0, metrics)
                if ctx.main:
                    log.write(row)
                    say(epoch_line(row, top1, eval_timesteps))
        if log is not None:
            log.close()
        dist_utils.barrier(ctx)
        return {"out": str(out_dir), "top1": top1, "best_top1": best, "step": step, "stopped": False, "model": model}
    finally:
        dist_utils.cleanup(ctx)


# --- helpers the loop reads by name ------------------------------------------------------------

def model_input(images: torch.Tensor, spiking: bool) -> torch.Tensor:
    """Batches are ``[B, C, H, W]`` images or ``[B, T, C, H, W]`` event frames. An SNN takes frames
    time-first; an ANN (teacher) takes their time-mean (METHODS.md §1.6.5)."""
    if images.dim() != 5:
        return images
    return images.transpose(0, 1) if spiking else images.mean(1)


def make_augment(cfg, dataset, events: bool) -> nn.Module:
    if events:
        from ..data.events import EventAugment

        return EventAugment(flip=cfg.flip, roll=cfg.roll, rotate=cfg.rotate, cutout=cfg.cutout)
    from ..data import GpuAugment

    return GpuAugment(crop_padding=cfg.crop_padding, flip=cfg.flip, autoaugment=cfg.autoaugment, cutout=cfg.cutout,
                      erasing=cfg.erasing, mean=dataset.mean, std=dataset.std)


def test_accuracy(model: nn.Module, dataset, cfg: Config, batch_size: int, device, events: bool) -> dict[int, float]:
    """Top-1 at every k ≤ T_max in one pass (event data: under ``data.any_t_policy``)."""
    from ..data import batches

    if events and model.spiking:
        from ..data.events import fullrange_accuracy_events

        return fullrange_accuracy_events(model, dataset, max_timesteps=cfg.eval_timesteps,
                                         policy=cfg.data.any_t_policy, batch_size=batch_size, device=device)
    test = batches(dataset, batch_size, shuffle=False, augment=None, device=device, drop_last=False)
    test = ((model_input(x, model.spiking), y) for x, y in test)
    return fullrange_accuracy(model, test, max_timesteps=cfg.eval_timesteps)


def load_teacher(cfg: Config, device: torch.device, say=print, num_classes: int | None = None) -> nn.Module:
    """The frozen teacher: from ``teacher.checkpoint``, trained first from ``teacher.recipe`` when the
    checkpoint does not exist yet. Eval mode, no gradients (SPEC.md conventions)."""
    path = cfg.teacher.checkpoint
    if path is None:
        raise SpikeDistillError(f"loss '{cfg.loss.name}' needs a teacher; set teacher.checkpoint=PATH (a best.pt) "
                                "or train one with a teacher recipe first")
    path = Path(path)
    if not path.exists() and cfg.teacher.recipe:
        say(f"teacher checkpoint {path} not found: training it from {cfg.teacher.recipe} first")
        # The teacher sees the same data as its student (name, root, subsets) on the same device.
        data = cfg.data
        same = {"data.name": data.name, "data.root": data.root, "data.subset": data.subset,
                "data.test_subset": data.test_subset, "device": cfg.device}
        teacher_cfg = load_config(cfg.teacher.recipe, [f"{k}={'null' if v is None else v}" for k, v in same.items()])
        train(teacher_cfg, path.parent)
    teacher, _ = model_from_checkpoint(path, num_classes=num_classes, role="teacher")
    teacher.to(device).eval()
    if device.type == "cuda" and cfg.channels_last:
        teacher.to(memory_format=torch.channels_last)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def materialize(crit: nn.Module, model: nn.Module, dataset, timesteps: int, device, spiking: bool) -> None:
    """Run the objective once on two test images so lazily shaped parameters exist before the optimizer
    is built. Eval mode: BN running statistics stay untouched; the global RNG is left as it was."""
    from ..data import batches

    images, labels = next(batches(dataset, 2, shuffle=False, device=device))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model.eval()
        images = model_input(images, spiking)
        logits, features = model(images, timesteps=None if images.dim() == 5 else timesteps, return_features=True)
        try:
            crit(logits, labels, features=features)
        except SpikeDistillError:
            pass  # objectives that also need a teacher built their lazy parts before asking for it
        model.train()


class Stopwatch:
    """Sums the time spent inside ``with stopwatch:`` blocks; on CUDA with events, so the GPU is not
    synchronised every step (read ``seconds()`` once per epoch)."""

    def __init__(self, cuda: bool, seconds: float = 0.0):
        self.cuda, self.total, self.pending = cuda, seconds, []

    def __enter__(self):
        if self.cuda:
            self.pending.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
            self.pending[-1][0].record()
        else:
            self.tick = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.pending[-1][1].record()
        else:
            self.total += time.perf_counter() - self.tick
        return False

    def seconds(self) -> float:
        if self.pending:
            torch.cuda.synchronize()
            self.total += sum(start.elapsed_time(end) for start, end in self.pending) / 1000.0
            self.pending.clear()
        return self.total


class StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM (a scheduler's time limit, ``kill``) during training finishes the current
    step, writes ``latest.pt`` and stops (resumable)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.requested:  # second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for signum, handler in (self._previous or {}).items():
            signal.signal(signum, handler)
        return False


class NonFiniteLoss:
    """Remembers, on the device, the first step whose loss was NaN or inf (no host sync per step);
    :meth:`check` syncs and stops the run with that step, the loss parts and advice — before any
    checkpoint is written, so ``latest.pt`` keeps the last good state."""

    def __init__(self):
        self.first_step = None  # 0-dim tensor: the first non-finite step, or -1
        self.values = None      # the loss and its parts at that step

    def record(self, step: int, loss) -> None:
        values = torch.stack([loss.total.detach().float(), *(v.detach().float().reshape(()) for v in loss.parts.values())])
        if self.first_step is None:
            self.names = ["loss", *loss.parts]
            self.first_step = torch.full((), -1, dtype=torch.long, device=values.device)
            self.values = torch.zeros_like(values)
        first = ~torch.isfinite(values[0]) & (self.first_step < 0)
        self.first_step = torch.where(first, step, self.first_step)
        self.values = torch.where(first, values, self.values)

    def check(self, ctx, steps_per_epoch: int, out_dir: Path) -> None:
        if self.first_step is None:
            return
        first = self.first_step.clone()
        if ctx.distributed:  # every rank stops at the same check
            import torch.distributed as dist

            dist.all_reduce(first, op=dist.ReduceOp.MAX)
        step = int(first)
        if step < 0:
            return
        if int(self.first_step) == step:
            values = dict(zip(self.names, self.values.tolist()))
            parts = " ".join(f"{name}={value:.4g}" for name, value in values.items() if name != "loss")
            what = f"loss is {values['loss']:.4g}"
        else:
            what, parts = "loss is not finite", "(on another process)"
        then = (f"continue with --resume --out {out_dir} (latest.pt holds the last good state)"
                if (out_dir / "latest.pt").exists() else "start again (no checkpoint was written yet)")
        raise SpikeDistillError(
            f"{what} at step {step} (epoch {(step - 1) // steps_per_epoch + 1}, batch {(step - 1) % steps_per_epoch + 1}/"
            f"{steps_per_epoch}): {parts}; the run stopped. Lower optim.lr or set optim.grad_clip=1.0, check the data "
            f"and the teacher, then {then}")


def progress(iterable, total: int, initial: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    # disable=None: bars on a terminal only; a redirected log gets the one line per epoch, not bar fragments
    return tqdm(iterable, total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True, mininterval=1.0,
                disable=None)


def gather_rng(ctx) -> list:
    return _gather(rng_state(), ctx)


def _gather(obj, ctx) -> list:
    if not ctx.distributed:
        return [obj]
    import torch.distributed as dist

    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def epoch_line(row: dict, top1: dict, eval_timesteps: int) -> str:
    tests = " ".join(f"@{k} {v:.2f}" for k, v in top1.items()) if f"test_top1_t{eval_timesteps}" in row else "—"
    teacher = f" (teacher {row['teacher_seconds']:.1f}s)" if row["teacher_seconds"] else ""
    return (f"epoch {row['epoch']:>3} · loss {row.get('train_loss', float('nan')):.4f} · train {row['train_top1']:.2f}% · "
            f"test top-1 {tests} · lr {row['lr']:.4g} · {row['seconds']:.1f}s{teacher}")
