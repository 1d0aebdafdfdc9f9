"""What keeps a run safe: stopping cleanly on a signal, catching a diverged loss, refusing a T whose step
cannot fit in memory. Each reads nothing from the loop but what it is handed."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import torch

from ..errors import SpikeDistillError


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
        values = torch.stack([loss.total.detach().float(),
                              *(v.detach().float().reshape(()) for v in loss.parts.values())])
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
            f"{what} at step {step} (epoch {(step - 1) // steps_per_epoch + 1}, batch "
            f"{(step - 1) % steps_per_epoch + 1}/{steps_per_epoch}): {parts}; the run stopped. Lower optim.lr or set "
            f"optim.grad_clip=1.0, check the data and the teacher, then {then}")


def check_training_memory(model, sample_shape, batch_size: int, timesteps: int, device) -> None:
    """Refuse a training T whose step cannot fit in memory, naming the largest that does (before the
    first step, not as an out-of-memory kill). A step keeps about every layer's output, and its gradient,
    for each of the T steps and B samples; measured with one sample at T = 1, so it costs milliseconds."""
    from ..evaluate.report import free_memory

    total = [0]

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor) and not list(module.children()):
            total[0] += output.numel() * output.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *sample_shape, device=device), timesteps=1)
    except (RuntimeError, ValueError, TypeError):  # a model the first step will name better: no estimate
        return
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    per_step = 2 * total[0] * batch_size
    free = free_memory(torch.device(device))
    if per_step * timesteps > free:
        raise SpikeDistillError(
            f"timesteps={timesteps}: one training step needs about {per_step * timesteps / 2**30:.1f} GiB with a batch "
            f"of {batch_size}, and {free / 2**30:.1f} GiB are free on {device}; the largest T that fits is "
            f"{free // max(per_step, 1)} (or lower optim.batch_size)")
