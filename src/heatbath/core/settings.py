"""Settings machinery shared by both wings: typed sections, TOML in and out, `--set` overrides.

A configuration is a dataclass of section dataclasses. Values are coerced to the type of each
field's default, unknown sections and keys are refused with the list of what exists, and the
fully resolved configuration serialises back to TOML for the run directory.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import fields
from pathlib import Path

from heatbath.core.errors import UserError
from heatbath.core.spec import parse_value


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
        if isinstance(value, list):
            return value
        if isinstance(value, str):   # parse_value never raises: items stay text if not numbers
            return [parse_value(v) for v in value.strip("[]").split(",") if v.strip()]
        raise UserError(f"{where} must be a list like [1, 2], got {value!r}")
    if isinstance(value, str):
        return value
    raise UserError(f"{where} must be text, got {value!r}")


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
    setattr(section, name, _coerce(value, getattr(section, name), key))


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
