"""Parsing of `NAME[:key=value,...]` specifications (built-in data sets and targets)."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from heatbath.core.errors import UserError


def parse_value(text: str) -> Any:
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True, anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split 'name:k=v,k2=v2' into ('name', {'k': v, 'k2': v2})."""
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    if rest.strip():
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise UserError(f"bad parameter '{item}' in '{spec}': write key=value, "
                                f"e.g. {name}:n=1000")
            params[key.strip()] = parse_value(value)
    return name.strip(), params


def call_with_params(factory: Callable, params: dict[str, Any], what: str) -> Any:
    """Call `factory(**params)`, turning unknown or ill-typed keys into one clear UserError."""
    signature = inspect.signature(factory)
    accepted = [p for p in signature.parameters if p not in ("self", "generator")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UserError(f"unknown parameter(s) {', '.join(unknown)} for {what}; "
                        f"accepted: {', '.join(accepted) or 'none'}")
    try:
        return factory(**params)
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad parameters for {what}: {exc}") from None
