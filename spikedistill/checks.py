"""Value checks: a number in a range, a positive integer, a choice, a bool — each one line naming the
value, what came and what is allowed.

Every check takes the ``name`` the user knows the value by and ``say(name, value, rule)``, the wording of
the caller's message (default: ``"<name> must be <rule> (got <value>)"``); the rule itself is written here
once. The config, the losses, the LIF and the command line check through these.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterable

from .errors import SpikeDistillError

Say = Callable[[str, Any, str], str]


def must_be(name: str, value: Any, rule: str) -> str:
    return f"{name} must be {rule} (got {value!r})"


def bounds(low: float = -math.inf, high: float = math.inf, inclusive: bool = True) -> str:
    """``">= 0"``, ``"> 0"``, ``">= 0.0 and <= 1.0"``: the range in words (``inclusive`` is the low end's)."""
    parts = []
    if low > -math.inf:
        parts.append(f">= {low}" if inclusive else f"> {low}")
    if high < math.inf:
        parts.append(f"<= {high}")
    return " and ".join(parts)


def within(value, low: float = -math.inf, high: float = math.inf, inclusive: bool = True) -> bool:
    return (value >= low if inclusive else value > low) and value <= high


def is_number(value) -> bool:
    """A finite real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_range(name: str, value, low: float = -math.inf, high: float = math.inf, inclusive: bool = True,
                say: Say = must_be):
    """``value`` (already a number) within the bounds."""
    if not within(value, low, high, inclusive):
        raise SpikeDistillError(say(name, value, bounds(low, high, inclusive)))
    return value


def check_number(name: str, value, low: float = -math.inf, high: float = math.inf, inclusive: bool = True,
                 say: Say = must_be) -> float:
    """``value`` as a float if it is a finite number within the bounds."""
    if not (is_number(value) and within(value, low, high, inclusive)):
        raise SpikeDistillError(say(name, value, f"a number {bounds(low, high, inclusive)}".rstrip()))
    return float(value)


def check_int(name: str, value, low: float = -math.inf, say: Say = must_be) -> int:
    """``value`` if it is an integer (not a bool) >= ``low``."""
    if not (is_integer(value) and value >= low):
        raise SpikeDistillError(say(name, value, f"an integer {bounds(low)}".rstrip()))
    return int(value)


def check_positive_int(name: str, value, say: Say = must_be) -> int:
    """``value`` if it is an integer >= 1 (not a bool): a count, a size, a number of steps."""
    if not (is_integer(value) and value >= 1):
        raise SpikeDistillError(say(name, value, "a positive integer"))
    return int(value)


def check_choice(name: str, value, choices: Iterable, say: Say = must_be, quote: bool = False):
    """``value`` if it is one of ``choices`` (a ``None`` among them is allowed but not listed)."""
    choices = tuple(choices)
    if value not in choices:
        shown = ", ".join(repr(c) if quote else str(c) for c in choices if c is not None)
        raise SpikeDistillError(say(name, value, f"one of {shown}"))
    return value


def check_bool(name: str, value, say: Say = must_be) -> bool:
    if not isinstance(value, bool):
        raise SpikeDistillError(say(name, value, "true or false"))
    return value
