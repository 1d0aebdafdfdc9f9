"""The one registry mechanism: a name → constructor dictionary with helpful lookup errors, and the one
option check every kind builds through (:meth:`Registry.build`).

Each kind (models, losses, surrogates, datasets) owns one :class:`Registry` instance.
"""

from __future__ import annotations

import inspect
from typing import Callable, Dict, Generic, Iterator, TypeVar

from .errors import SpikeDistillError, did_you_mean, unknown_name

T = TypeVar("T")

# What a constructor given an option of the wrong kind raises (widths="abc", a list too short).
BUILD_ERRORS = (TypeError, ValueError, IndexError, ZeroDivisionError)


class Registry(Generic[T]):
    """Entries by name. ``call(entry)`` is the constructor an entry stands for (default: the entry itself);
    its keyword arguments are the entry's options, apart from ``given``, the arguments the caller fills in
    itself. ``recipe_key`` names where a recipe sets the options (``model.options``), for messages."""

    def __init__(self, kind: str, call: Callable[[T], Callable] | None = None, given: tuple[str, ...] = (),
                 recipe_key: str | None = None):
        self.kind = kind
        self._entries: Dict[str, T] = {}
        self._call = call or (lambda entry: entry)
        self.given = tuple(given)
        self.recipe_key = recipe_key

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise SpikeDistillError(f"{self.kind} '{name}' is registered twice; give the second one another name")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise unknown_name(self.kind, name, self._entries) from None

    def constructor(self, name: str) -> Callable:
        """The callable ``name`` builds with."""
        return self._call(self.get(name))

    def options(self, name: str) -> list[str]:
        """The options ``build(name, ...)`` accepts: the constructor's keyword arguments, ``given`` aside."""
        return options_of(self.constructor(name), self.given)

    def takes(self, name: str, argument: str) -> bool:
        """Whether the constructor of ``name`` has this argument (or ``**kwargs``)."""
        return takes(self.constructor(name), argument)

    def check_options(self, name: str, options, also: tuple[str, ...] = ()) -> None:
        """One line for an option ``name``'s constructor does not take (a constructor with ``**kwargs`` takes
        any), naming the nearest valid one and listing them all (with ``also``, options taken elsewhere)."""
        if any(p.kind is p.VAR_KEYWORD for p in _parameters(self.constructor(name))):
            return
        known = self.options(name) + [option for option in also if option not in self.given]
        unknown = [key for key in options if key not in known]
        if unknown:
            hint = did_you_mean(unknown[0], known) if len(unknown) == 1 else ""
            raise SpikeDistillError(f"unknown option {', '.join(map(repr, unknown))} for {self.kind} '{name}';{hint} "
                                    f"valid: {', '.join(known) or '(none)'}")

    def build(self, name: str, given: dict | None = None, **options):
        """Check ``options`` against the constructor's signature, then call it with ``given`` (the caller's
        own arguments, named in ``given`` at construction) and ``options``. An option of the wrong kind
        (a string for a list of widths) is one line naming it, not a traceback from inside the constructor."""
        constructor = self.constructor(name)
        self.check_options(name, options)
        try:
            return constructor(**(given or {}), **options)
        except BUILD_ERRORS as exc:
            if isinstance(exc, SpikeDistillError):
                raise
            shown = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "no options"
            where = f"check {self.recipe_key} against" if self.recipe_key else "check"
            raise SpikeDistillError(f"{self.kind} '{name}' cannot be built with {shown} ({type(exc).__name__}: {exc}); "
                                    f"{where} its options: {', '.join(self.options(name)) or '(none)'}") from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)


def options_of(constructor: Callable, given: tuple[str, ...] = ()) -> list[str]:
    """A constructor's named keyword arguments, those in ``given`` aside."""
    return [p.name for p in _parameters(constructor)
            if p.name not in given and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def takes(constructor: Callable, argument: str) -> bool:
    """Whether ``constructor`` has this argument (or ``**kwargs``)."""
    return any(p.name == argument or p.kind is p.VAR_KEYWORD for p in _parameters(constructor))


def _parameters(constructor: Callable) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(constructor).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: it takes what it takes
        return [inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)]


def import_modules(names, recorded_by: str | None = None) -> None:
    """Import a user's modules (``spikedistill --import MODULE``) so their registrations apply.

    ``recorded_by`` names the run or checkpoint that recorded them, for the message when one is gone."""
    import importlib

    for name in names or ():
        try:
            importlib.import_module(name)
        except ImportError as exc:
            where = f"{recorded_by} needs the module '{name}'" if recorded_by else f"--import {name}"
            raise SpikeDistillError(f"{where}, which cannot be imported ({type(exc).__name__}: {exc}); install it or "
                                    "put its folder on PYTHONPATH") from None
