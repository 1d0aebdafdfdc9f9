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


def progress(iterable, total: int, initial: int, desc: str, enabled: bool, batch_size: int = 0,
             every_seconds: float = 30.0, stream=None):
    """A tqdm bar on a terminal; where the output is a log (nohup, CI, a cluster job) a line every
    ``every_seconds`` with the step, images per second and the epoch's ETA instead, so a long epoch is
    never silent. ``enabled=False``: neither."""
    import sys

    if not enabled:
        return iterable
    stream = stream if stream is not None else sys.stdout
    # The bar goes to stderr: both must be a terminal for it, else the log gets lines (on stdout).
    if not all(hasattr(s, "isatty") and s.isatty() for s in (stream, sys.stderr)):
        return ProgressLines(iterable, total, initial, desc, batch_size, every_seconds, stream)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return ProgressLines(iterable, total, initial, desc, batch_size, every_seconds, stream)
    return tqdm(iterable, total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True, mininterval=1.0)


class ProgressLines:
    """Iterates like the bar, printing ``desc · step 120/390 · 812 img/s · loss 1.234 · ETA 4m05s`` lines."""

    def __init__(self, iterable, total: int, initial: int, desc: str, batch_size: int, every_seconds: float, stream):
        self.iterable, self.total, self.initial, self.desc = iterable, total, initial, desc
        self.batch_size, self.every, self.stream, self.postfix = batch_size, every_seconds, stream, {}

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = values

    def __iter__(self):
        started = last = time.perf_counter()
        done = self.initial
        for item in self.iterable:
            yield item
            done += 1
            now = time.perf_counter()
            if now - last >= self.every and done < self.total:
                last = now
                self.stream.write(self.line(done, now - started) + "\n")
                self.stream.flush()

    def line(self, done: int, seconds: float) -> str:
        rate = (done - self.initial) / max(seconds, 1e-9)  # steps per second since this epoch (re)started
        eta = (self.total - done) / max(rate, 1e-9)
        parts = [self.desc, f"step {done}/{self.total}"]
        if self.batch_size:
            parts.append(f"{rate * self.batch_size:.0f} img/s")
        parts += [f"{k} {v}" for k, v in self.postfix.items()]
        parts.append(f"ETA {format_duration(eta)}")
        return " · ".join(parts)


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


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
            f"timesteps={timesteps}: one training step needs about {per_step * timesteps / 2**30:.1f} GiB with a batch of "
            f"{batch_size}, and {free / 2**30:.1f} GiB are free on {device}; the largest T that fits is "
            f"{free // max(per_step, 1)} (or lower optim.batch_size)")


class RunLock:
    """One training run per run folder: ``run.lock``, held with an exclusive ``flock`` while the run trains,
    names the owner's pid and host.

    A second run into the same folder stops with one line naming the owner. The kernel drops the lock when
    its process ends, however it ends, so a killed run's leftover file is simply taken over; only the owner
    removes the file, and a lock taken on a file that another process has just removed is tried again."""

    NAME = "run.lock"

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / self.NAME
        self.held = False
        self._fd, self._made = None, False

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def acquire(self) -> None:
        import os
        import socket

        try:
            self._made = not self.path.parent.exists()  # removed again on release if the run left it empty
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from ..errors import os_error_message

            raise SpikeDistillError(os_error_message(exc)) from None
        for _ in range(10):  # the file was removed by its owner between our open and our lock: open it again
            fd = _try_lock(self.path)
            if fd is None:
                raise SpikeDistillError(in_use_message(self.path, lock_owner(self.path)))
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            self._fd, self.held = fd, True
            return
        raise SpikeDistillError(f"cannot take the lock '{self.path}' (another run keeps removing it); "
                                "wait for the other run or choose another --out")

    def release(self) -> None:
        """Remove the lock file (still under the lock, so no other run can hold it), then drop the lock."""
        import os

        if not self.held:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:  # ours: never another run's file
                self.path.unlink()
        except OSError:
            pass
        os.close(self._fd)
        self._fd, self.held = None, False
        if self._made:
            try:
                self.path.parent.rmdir()  # a run refused before it wrote anything leaves no folder behind
            except OSError:
                pass


def _try_lock(path: Path):
    """An fd of ``path`` holding its exclusive lock, or None when another process holds it."""
    import fcntl
    import os

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        from ..errors import os_error_message

        raise SpikeDistillError(os_error_message(exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def lock_owner(path: Path) -> tuple[int, str] | None:
    """``(pid, host)`` from a run folder's lock file, or None when it is unreadable or half-written."""
    try:
        pid, host = path.read_text().split()
        return int(pid), host
    except (OSError, ValueError):
        return None


def in_use_message(path: Path, owner: tuple[int, str] | None) -> str:
    who = f" (pid {owner[0]} on {owner[1]})" if owner is not None else ""
    return f"'{path.parent}' is in use by another training run{who}; wait for it to finish or choose another --out"


def check_not_in_use(out_dir: Path) -> None:
    """Refuse at once (before loading anything) when a live run holds ``out_dir``."""
    import fcntl
    import os

    path = Path(out_dir) / RunLock.NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody holds the folder (the run's own lock decides, atomically)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SpikeDistillError(in_use_message(path, lock_owner(path))) from None
    finally:
        os.close(fd)
