"""`heatbath sample` on an energy run: new importance-weighted samples from a trained flow, SNF
or CNF (each method's `redraw`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from heatbath.energy.chart import to_original, working_target
from heatbath.core.records import EnergyRunRecord
from heatbath.energy.config import EnergyRunConfig, load_energy_config
from heatbath.energy.methods import METHODS, Method
from heatbath.energy.validate import validate
from heatbath.targets.plugin import user_code_guard
from heatbath.core.errors import UserError
from heatbath.core.runs import atomic_save_npz
from heatbath.energy.run import energy_run_target, read_energy_record


def learned_run(run_dir: Path, n: int) -> tuple[EnergyRunRecord, Method, EnergyRunConfig]:
    """(run record, method, config) of a run whose trained model can draw n more samples."""
    info = read_energy_record(run_dir)
    method = METHODS.get(info.method)
    if method is None or not method.learned:
        names = [name for name, m in METHODS.items() if m.learned]
        learned = ", ".join(names[:-1]) + " and " + names[-1]
        raise UserError(f"{run_dir} ran '{info.method}', which keeps no sampler; only "
                        f"{learned} runs can draw new samples (re-run fit for more)")
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    config = load_energy_config(run_dir / "config.toml")
    if config.method.name != info.method:
        raise UserError(f"{run_dir / 'config.toml'} names method '{config.method.name}' but the "
                        f"run was made with '{info.method}'; restore config.toml")
    return info, method, config


def sample_energy_run(run_dir: Path, *, n: int, seed: int = 0, out: Path | None = None) -> Path:
    info, method, config = learned_run(run_dir, n)
    target = energy_run_target(run_dir, info)
    validate(config, target)
    working = working_target(target)   # learned samplers were trained in the space's chart
    with user_code_guard(target, "sampling"):
        drawn = method.redraw(config, working, target, run_dir / "model.safetensors", n,
                              torch.Generator().manual_seed(seed))
    drawn["x"] = to_original(working, drawn["x"])
    arrays = {key: value.detach().cpu().numpy() for key, value in drawn.items()}
    target_path = out or run_dir / f"samples-seed{seed}.npz"
    atomic_save_npz(target_path, {k: np.asarray(v) for k, v in arrays.items()})
    return target_path
