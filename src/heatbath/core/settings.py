"""Settings machinery shared by both wings: typed sections, TOML in and out, `--set` overrides.

A configuration is a dataclass of section dataclasses. Values are coerced to the type of each
field's default, unknown sections and keys are refused with the list of what exists, and the
fully resolved configuration serialises back to TOML for the run directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from heatbath.core.errors import UserError
from heatbath.core.spec import parse_value


@dataclass(frozen=True)
class Bounds:
    """The range a numeric setting must lie in; NaN is never inside. For a list setting the
    bounds apply to every item."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False        # True: low itself is refused
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low == -math.inf:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")

    def outside(self) -> list[float]:
        """Values just out of range (tests walk every setting with them)."""
        values = [math.nan]
        if self.low > -math.inf:
            values.append(self.low if self.low_open else self.low - 1)
        if self.high < math.inf:
            values.append(self.high if self.high_open else self.high + 1)
        return values


FINITE = Bounds(high=math.inf, high_open=True, low=-math.inf, low_open=True)
POSITIVE = Bounds(low=0, low_open=True, high=math.inf, high_open=True)
NON_NEGATIVE = Bounds(low=0, high=math.inf, high_open=True)
AT_LEAST_1 = Bounds(low=1, high=math.inf, high_open=True)
FRACTION_OPEN = Bounds(low=0, high=1, low_open=True, high_open=True)   # (0, 1)


def setting(default, bounds: Bounds | None = None):
    """A config field with declarative bounds (lists get a copy of their default each time)."""
    metadata = {"bounds": bounds} if bounds is not None else {}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def bounds_of(section, name: str) -> Bounds | None:
    """The declared bounds of a numeric field; floats without bounds must still be finite."""
    declared = {f.name: f for f in fields(section)}[name].metadata.get("bounds")
    if declared is None and isinstance(getattr(section, name), float):
        return FINITE
    return declared


def check_bounds(value, bounds: Bounds | None, where: str) -> None:
    if bounds is None:
        return
    items = value if isinstance(value, list) else [value]
    if not all(bounds.contains(item) for item in items):
        what = f"every item of {where}" if isinstance(value, list) else where
        raise UserError(f"{what} must be {bounds.describe()}, got {value!r}")


def check_all_bounds(config) -> None:
    """Check every bounded setting of a config built in Python (TOML and --set are checked as
    they are read)."""
    for section_field in fields(config):
        section = getattr(config, section_field.name)
        for f in fields(section):
            check_bounds(getattr(section, f.name), bounds_of(section, f.name),
                         f"{section_field.name}.{f.name}")


def _coerce(value, default, where: str):
    """Give `value` the type of the field's default, or say exactly why it cannot."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise UserError(f"{where} must be true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise UserError(f"{where} must be an integer, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise UserError(f"{where} must be a number, got {value!r}")
    if isinstance(default, list):
        return _coerce_list(value, default, where)
    if isinstance(value, str):
        return value
    raise UserError(f"{where} must be text, got {value!r}")


def _coerce_list(value, default: list, where: str) -> list:
    """A list like the default: integers stay integers (model.mults), and it is never empty."""
    if isinstance(value, str):   # parse_value never raises: items stay text if not numbers
        value = [parse_value(v) for v in value.strip("[]").split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise UserError(f"{where} must be a non-empty list like [1, 2], got {value!r}")
    if default and all(isinstance(d, int) and not isinstance(d, bool) for d in default):
        return [_coerce(item, 0, f"every item of {where}") for item in value]
    return value


def _section(config, name: str):
    sections = [f.name for f in fields(config)]
    if name not in sections:
        raise UserError(f"unknown config section '{name}'; sections: {', '.join(sections)}")
    return getattr(config, name)


def set_value(config, key: str, value) -> None:
    """Set 'section.key' with type checking; unknown keys list what exists."""
    section_name, dot, name = key.partition(".")
    if not dot:
        raise UserError(f"bad key '{key}': write section.key=value, e.g. train.steps=500")
    section = _section(config, section_name)
    known = [f.name for f in fields(section)]
    if name not in known:
        raise UserError(f"unknown setting '{key}'; {section_name} has: {', '.join(known)}")
    value = _coerce(value, getattr(section, name), key)
    check_bounds(value, bounds_of(section, name), key)
    setattr(section, name, value)


def apply_overrides(config, overrides: list[str]) -> None:
    for item in overrides:
        key, eq, text = item.partition("=")
        if not eq:
            raise UserError(f"bad --set '{item}': write --set section.key=value")
        # Lists stay text here; _coerce splits them against the setting's default.
        value = text if text.strip().startswith("[") else parse_value(text)
        set_value(config, key.strip(), value)


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot parse {path}: {exc}") from None


def fill_config(config, raw: dict, origin: str):
    """Set every key of a parsed TOML table on a config of section dataclasses."""
    for section_name, values in raw.items():
        if not isinstance(values, dict):
            raise UserError(f"{origin}: '{section_name}' must be a [section] table")
        _section(config, section_name)
        for key, value in values.items():
            set_value(config, f"{section_name}.{key}", value)
    return config


def to_toml(config) -> str:
    """Serialise to TOML (the value types used here are all JSON-compatible TOML literals)."""
    lines = []
    for section_name, values in dataclasses.asdict(config).items():
        lines.append(f"[{section_name}]")
        for key, value in values.items():
            literal = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
            lines.append(f"{key} = {literal}")
        lines.append("")
    return "\n".join(lines)


def config_from(factory, config_file: str | Path | None, overrides: list[str],
                flags: dict[str, object]):
    """A config from an optional TOML file, then --set overrides, then explicit CLI flags
    (a flag given as None is left alone)."""
    config = factory()
    if config_file is not None:
        fill_config(config, read_toml(config_file), str(config_file))
    apply_overrides(config, overrides)
    for key, value in flags.items():
        if value is not None:
            set_value(config, key, value)
    return config
