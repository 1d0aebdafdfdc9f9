"""User-facing errors: one line that names the problem and the fix.

Every entry point raises :class:`SpikeDistillError` (or a subclass) for bad input; the CLI prints
``error: <message>`` and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations

import difflib
from typing import Callable, Iterable


class SpikeDistillError(ValueError):
    """A problem with what the user asked for, worded so they can fix it."""

    def __str__(self) -> str:
        return one_line(super().__str__())


class UnknownNameError(SpikeDistillError, KeyError):
    """An unknown registry name (model, loss, surrogate, dataset, config key...)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return one_line(str(self.args[0])) if self.args else ""


class DataNotFoundError(SpikeDistillError):
    """Data that is not where it was looked for, or cannot be fetched as asked. It carries what is missing,
    so each entry point words the fix in its own options: :meth:`message` takes how the caller names the
    data's place and the download switch (``root=``/``download=True`` in Python, ``data.root=`` and
    ``data.download=true`` in a recipe, ``--data-root`` for ``eval``).

    ``problem``: what is wrong (``"CIFAR folder not found at data/cifar-10-batches-py"``); ``path``: where
    it was looked for (None: nothing was given); ``place``: the placeholder for the data's place (``"DIR"``,
    ``"FILE.npz"``); ``holds``: what that place must hold; ``get``: how to obtain data that spikedistill
    cannot download; ``downloadable``: whether the download switch fetches it."""

    PYTHON_ROOT = "pass root={place}{holds}; in a recipe data.root=, for spikedistill eval --data-root"
    PYTHON_DOWNLOAD = "pass download=True"

    def __init__(self, problem: str, path=None, *, place: str = "DIR", holds: str = "", get: str = "",
                 downloadable: bool = False):
        self.problem, self.path, self.place, self.holds, self.get = problem, path, place, holds, get
        self.downloadable = downloadable
        super().__init__(self.message())

    def message(self, root: str = PYTHON_ROOT, download: str | None = PYTHON_DOWNLOAD) -> str:
        """The problem and its fix. ``root``: how to name the data's place, with ``{place}`` and ``{holds}``
        (e.g. ``"set data.root={place}{holds}"``); ``download``: how to ask for the download (None where
        the caller cannot download)."""
        fix = root.format(place=self.place, holds=f" ({self.holds})" if self.holds else "")
        if self.get:
            fix = f"{self.get} and {fix}"
        if self.downloadable and download:
            fix = f"{download}, or {fix}"
        return f"{self.problem}; {fix}"


def one_line(message: str) -> str:
    """The message on one line, whatever the user typed into a name or key (a newline in a YAML key)."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" did you mean 'x'?"`` for the closest known name, or an empty string."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.5)
    return f" did you mean '{close[0]}'?" if close else ""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UnknownNameError:
    known = list(known)
    hint = did_you_mean(name, known)
    return UnknownNameError(f"unknown {kind} '{name}';{hint} known: {', '.join(known)}")


def os_error_message(exc: OSError) -> str:
    """One line for a file-system failure (``OSError``): which path, what the system said, what to do."""
    import errno

    what = exc.strerror or type(exc).__name__
    if exc.filename is None:  # not a path the system named: say what failed rather than blame "a file"
        detail = str(exc) if str(exc) and str(exc) != what else what
        return (f"a system call failed ({type(exc).__name__}: {one_line(detail)[:160]}); "
                "check the input files and the disk")
    path = exc.filename
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free disk space or choose another --out directory"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose a directory you can write (--out)"
    elif exc.errno in (errno.ENOTDIR, errno.ENOENT, errno.EEXIST, errno.EISDIR):
        fix = "check the path: every parent must be a directory, not a file (--out, --json, --data-root, --config)"
    else:
        fix = "check the path and the disk"
    return f"cannot use '{path}' ({what}); {fix}"


EXIT_USER_ERROR = 2


def run_command(command: Callable[[], int | None], reword: Callable[[SpikeDistillError], str] = str,
                out_of_memory: str | None = None) -> int:
    """Run a command's body → its exit code; bad input ends as one ``error: ...`` line on stderr and exit
    code 2, never a traceback: a :class:`SpikeDistillError` (worded for this command by ``reword``), an
    ``OSError`` of the file system, and, with ``out_of_memory`` (the advice), torch running out of memory."""
    import sys

    try:
        return int(command() or 0)
    except SpikeDistillError as exc:
        message = reword(exc)
    except OSError as exc:  # the file system said no: an unwritable or missing path, a full disk
        message = os_error_message(exc)
    except RuntimeError as exc:
        if out_of_memory is None or type(exc).__name__ != "OutOfMemoryError":  # torch's, without importing torch
            raise
        message = out_of_memory
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR
