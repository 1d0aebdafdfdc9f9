"""The study's progress lines: time-stamped and flushed, since its log is read while it runs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def say(text: str) -> None:
    """A progress line, time-stamped, flushed."""
    print(f"[{datetime.now().strftime('%Y-%m-%d %H:%M:%S')}] {text}", flush=True)


class Tee:
    """stdout to the terminal and, appended, to the --log file."""

    def __init__(self, stream, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.stream, self.file = stream, path.open("a", buffering=1)

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()
        self.file.flush()

    def close(self) -> None:
        self.file.close()
