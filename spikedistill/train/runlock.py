"""One training run per run folder: ``run.lock``, held with a kernel lock (``flock``) while the run trains."""

from __future__ import annotations

from pathlib import Path

from ..errors import SpikeDistillError


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
