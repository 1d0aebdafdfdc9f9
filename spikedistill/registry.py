"""The one registry mechanism: a name → constructor dictionary with helpful lookup errors.

Each kind (models, losses, surrogates, datasets) owns one :class:`Registry` instance.
"""

from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, TypeVar

from .errors import unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                from .errors import SpikeDistillError

                raise SpikeDistillError(f"{self.kind} '{name}' is registered twice; give the second one another name")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise unknown_name(self.kind, name, self._entries) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)


def import_modules(names, recorded_by: str | None = None) -> None:
    """Import a user's modules (``spikedistill --import MODULE``) so their registrations apply.

    ``recorded_by`` names the run or checkpoint that recorded them, for the message when one is gone."""
    import importlib

    from .errors import SpikeDistillError

    for name in names or ():
        try:
            importlib.import_module(name)
        except ImportError as exc:
            where = f"{recorded_by} needs the module '{name}'" if recorded_by else f"--import {name}"
            raise SpikeDistillError(f"{where}, which cannot be imported ({type(exc).__name__}: {exc}); install it or "
                                    "put its folder on PYTHONPATH") from None
