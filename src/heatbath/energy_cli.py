"""CLI glue for the energy half: config from TOML + flags, then fit / estimate."""

from __future__ import annotations

from pathlib import Path

from heatbath.config import config_from, set_value
from heatbath.energy.config import EnergyRunConfig
from heatbath.errors import UserError


def build_energy_config(config_file: Path | None, target: str | None, method: str | None,
                        steps: int | None, seed: int | None, overrides: list[str]):
    config = config_from(EnergyRunConfig, config_file, overrides,
                         {"target.spec": target, "method.name": method, "method.seed": seed})
    if steps is not None:   # --steps means training steps for learned samplers
        key = "flow.steps" if config.method.name in ("flow", "snf") else "method.steps"
        set_value(config, key, steps)
    if not config.target.spec:
        raise UserError("no target given: pass --target NAME[:k=v] (see 'heatbath targets') "
                        "or --target path/to/file.py:NAME")
    return config


def fit_energy_command(config_file, target, method, out, steps, seed, overrides, quiet) -> None:
    from heatbath.energy.fit import fit_energy

    config = build_energy_config(config_file, target, method, steps, seed, overrides)
    run_dir = fit_energy(config, out)
    if not quiet:
        print(f"run directory: {run_dir}")
        print(f"report: {run_dir / 'report.html'}")
