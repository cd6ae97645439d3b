"""Run configuration: typed sections, TOML in and out, and `--set section.key=value` overrides.

The CLI builds a `RunConfig` from an optional TOML file plus flags, resolves every "auto" from
the data, and writes the fully resolved result into the run directory. Library objects never see
this module: they take typed constructor arguments.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from heatbath.errors import UserError
from heatbath.spec import parse_value


@dataclass
class DataConfig:
    source: str = ""                 # .npz / .npy / builtin:NAME[:k=v,...]
    holdout: float = 0.1             # fraction kept out of training for evaluation
    n: int = 0                       # 0: all rows (toys: their default size)


@dataclass
class ModelConfig:
    net: str = "auto"                # auto | mlp | hollow | unet
    hidden: int = 256                # MLP / hollow trunk width
    depth: int = 4                   # MLP / hollow residual blocks
    features: int = 32               # hollow: per-coordinate context and network width
    base: int = 32                   # U-Net base channels
    mults: list = field(default_factory=lambda: [1, 2])
    attention: bool = False


@dataclass
class PathConfig:
    name: str = "linear"             # linear | trig | vp | cosine | ve | edm | interpolant | pfgm
    prediction: str = "auto"         # auto | eps | x1 | v | velocity | edm
    time_sampling: str = "auto"      # auto | uniform | lognormal
    pfgm_dof: float = 2048.0         # PFGM++ augmentation dimension D
    gamma_scale: float = 1.0         # interpolant latent noise γ(t)² = a·t(1 − t)
    sigma_min: float = 0.002         # edm / ve
    sigma_max: float = 80.0
    beta_min: float = 0.1            # vp
    beta_max: float = 20.0


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    warmup: int = 100                # linear learning-rate warm-up steps
    lr_schedule: str = "constant"    # constant | cosine (decays to 0 at train.steps)
    coupling: str = "independent"    # independent | ot
    cond_drop: float = 0.1           # classifier-free guidance: P(condition dropped)
    checkpoint_every: int = 500
    log_every: int = 50
    dtype: str = "float32"           # float32 | float64
    seed: int = 0
    device: str = "cpu"


@dataclass
class SampleConfig:
    sampler: str = "heun"
    nfe: int = 35
    grid: str = "auto"               # auto | uniform | karras | logsnr
    eta: float = 0.0
    churn: float = 1.0
    guidance: float = 0.0
    clip: bool = False               # clamp the denoised x̂₁ to the training data's range


@dataclass
class EvalConfig:
    samples: int = 2000              # drawn at the end of fit for the report and estimate
    likelihood_max: int = 500        # held-out points scored by estimate (0: all)
    probes: int = 4                  # Hutchinson probes above the exact-trace dimension
    rtol: float = 1e-5               # likelihood ODE (dopri5) tolerances
    atol: float = 1e-5


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    path: PathConfig = field(default_factory=PathConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)




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


def load_config(path: str | Path) -> RunConfig:
    """Read a TOML config; every key is checked against the sections above."""
    return fill_config(RunConfig(), read_toml(path), str(path))


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
