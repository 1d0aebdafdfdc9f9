"""What keeps a run visible: progress bars (or timed lines in a log) and the stopwatch that times the teacher."""

from __future__ import annotations

import time

import torch


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
