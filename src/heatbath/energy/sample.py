"""`heatbath sample` on an energy run: new importance-weighted samples from a trained flow/SNF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from heatbath.core.checkpoint import load_model_weights
from heatbath.energy.config import load_energy_config
from heatbath.energy.methods import METHODS
from heatbath.energy.validate import validate
from heatbath.targets.plugin import user_code_guard
from heatbath.core.runs import DTYPES
from heatbath.energy.methods.flows import build_model
from heatbath.core.errors import UserError
from heatbath.flows import importance_sample
from heatbath.core.runs import atomic_save_npz
from heatbath.energy.run import energy_run_target, read_energy_record


def sample_energy_run(run_dir: Path, *, n: int, seed: int = 0, out: Path | None = None) -> Path:
    info = read_energy_record(run_dir)
    method = METHODS.get(info.method)
    if method is None or not method.learned:
        learned = " and ".join(name for name, m in METHODS.items() if m.learned)
        raise UserError(f"{run_dir} ran '{info.method}', which keeps no sampler; only "
                        f"{learned} runs can draw new samples (re-run fit for more)")
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    config = load_energy_config(run_dir / "config.toml")
    if config.method.name != info.method:
        raise UserError(f"{run_dir / 'config.toml'} names method '{config.method.name}' but the "
                        f"run was made with '{info.method}'; restore config.toml")
    target = energy_run_target(run_dir, info)
    validate(config, target)
    model = build_model(config, target.dim).to(DTYPES[config.method.dtype])
    load_model_weights(model, run_dir / "model.safetensors")
    model.eval()
    with user_code_guard(target, "sampling"):
        drawn = importance_sample(model, target, n, torch.Generator().manual_seed(seed))
    arrays = {"x": drawn.x.reshape(n, *target.event_shape).numpy(),
              "log_w": drawn.log_w.numpy(), "energy": drawn.energy.numpy()}
    if drawn.log_q is not None:
        arrays["log_q"] = drawn.log_q.numpy()
    target_path = out or run_dir / f"samples-seed{seed}.npz"
    atomic_save_npz(target_path, {k: np.asarray(v) for k, v in arrays.items()})
    return target_path
