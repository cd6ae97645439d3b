"""Argument checks shared by every room (target parameters first): each bad value becomes one
UserError line that says the fix.

Values arrive either from Python or from a spec string (`parse_spec` turns '2' into 2 and
'abc' into 'abc'), so every check also rejects the wrong type instead of failing later.
"""

from __future__ import annotations

import math
import numbers

from heatbath.core.errors import UserError


def _is_real(value) -> bool:
    # numbers.Real also admits numpy scalars; bool is an int subclass but never a sensible value.
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def real(name: str, value, target: str) -> float:
    """A finite real number."""
    if not _is_real(value) or not math.isfinite(value):
        raise UserError(f"{target}: {name} must be a finite number, got {value!r}")
    return float(value)


def positive(name: str, value, target: str) -> float:
    """A finite number > 0 (temperatures, widths, spring constants)."""
    number = real(name, value, target)
    if number <= 0:
        raise UserError(f"{target}: {name} must be > 0, got {value!r}")
    return number


def non_negative(name: str, value, target: str) -> float:
    number = real(name, value, target)
    if number < 0:
        raise UserError(f"{target}: {name} must be >= 0, got {value!r}")
    return number


def integer(name: str, value, target: str, minimum: int) -> int:
    """An int >= minimum (a float such as 4.0 is refused: it is probably a typo)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise UserError(f"{target}: {name} must be a whole number >= {minimum}, got {value!r}")
    if value < minimum:
        raise UserError(f"{target}: {name} must be >= {minimum}, got {value}")
    return int(value)


def inverse_temperature(beta, T, default: float, target: str) -> float:
    """β from either `beta` or `T` (= 1/β); giving both is ambiguous and refused."""
    if beta is not None and T is not None:
        raise UserError(f"{target}: give either beta or T (= 1/beta), not both")
    if T is not None:
        return 1.0 / positive("T (temperature)", T, target)
    if beta is None:
        return default
    return positive("beta (inverse temperature)", beta, target)


def choice(value, choices, key: str) -> None:
    """`value` must be one of `choices` (a registry's keys or a tuple of names)."""
    if value not in choices:
        raise UserError(f"unknown {key} '{value}'; choose one of {', '.join(choices)}")
