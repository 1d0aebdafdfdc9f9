"""What keeps a run safe and visible: timing the teacher, stopping cleanly on a signal, catching a
diverged loss, progress bars. Each reads nothing from the loop but what it is handed."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import torch

from ..errors import SpikeDistillError


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
