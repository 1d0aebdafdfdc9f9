"""Files written atomically: a temp file beside the target, fsync'ed, then renamed over it, so a crash,
a kill or a full disk leaves the previous file or the new one, never half of one.

    atomic_save(obj, "runs/x/latest.pt")          # torch.save
    atomic_write_text(yaml_text, "runs/x/config.yaml")
    atomic_write_bytes(png_bytes, "fullrange.png")

Every file a command writes goes through here; ``remove_stale_temp_files`` clears the temp files of a
write that a killed process never finished.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import SpikeDistillError


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, then rename over ``path``."""
    _atomic_write(path, lambda file: torch.save(obj, file))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write a small text file (a run's config, a report) so a crash leaves the old one or the new one."""
    _atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write a whole file (an export, a picture) so a crash or a full disk leaves the old one or the new one.
    Writers that want a file name serialise into memory first (``io.BytesIO``) and hand the bytes here."""
    _atomic_write(path, lambda file: file.write(data))


def check_not_an_input(output: str | os.PathLike, inputs, option: str = "--out") -> None:
    """Refuse an output path that is one of the command's input files (it would be replaced by the output)."""
    out = Path(output).expanduser().resolve()
    for given in inputs:
        if given is not None and Path(given).expanduser().resolve() == out:
            raise SpikeDistillError(f"{option} '{output}' is the input file '{given}'; writing there would replace it: "
                                    f"choose another {option} path")


def remove_stale_temp_files(directory: str | os.PathLike) -> None:
    """Temp files of writes that a killed process never finished (``.NAME.XXXX.tmp``)."""
    for stale in Path(directory).glob(".*.tmp"):
        try:
            stale.unlink()
        except OSError:
            pass


def _atomic_write(path: str | os.PathLike, write) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise SpikeDistillError(f"cannot write to '{path.parent}' ({exc.strerror}); choose a writable --out "
                                "directory") from None
    file = None
    try:
        os.chmod(tmp, _file_mode(path))  # mkstemp makes it private; the result gets what a plain write would
        with os.fdopen(fd, "wb") as raw:
            file = _KeepsWriteError(raw)
            write(file)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself survives a power cut
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        error = exc if isinstance(exc, OSError) else getattr(file, "error", None)
        if error is not None:  # disk full, quota, I/O error: the previous file is untouched
            kept = f"the previous {'checkpoint' if path.suffix == '.pt' else 'file'} is kept; " if path.exists() else ""
            raise SpikeDistillError(
                f"cannot write '{path}' ({error.strerror or error}); {kept}free disk space or choose another --out "
                "directory"
            ) from None
        raise


def _file_mode(path: Path) -> int:
    """The replaced file's permissions, or those the umask gives a new file."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


class _KeepsWriteError:
    """The file ``torch.save`` writes to; it remembers the ``OSError`` of a failed write (a full disk),
    which ``torch.save`` itself reports only as a RuntimeError about zip positions."""

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name):
        return getattr(self.file, name)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to fsync a directory; the rename is still atomic
    finally:
        os.close(fd)
