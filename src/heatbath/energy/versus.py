"""Free-energy difference between the targets of two energy runs: EXP, BAR and MBAR.

Samples of run A (target U_A) and run B (target U_B, same event shape) are evaluated under both
energies; the works w_F = U_B(x_A) − U_A(x_A) and w_R = U_A(x_B) − U_B(x_B) give
ΔF = F_B − F_A = −(ln Z_B − ln Z_A) in kT. Weighted runs (flow, snf, ais, smc) are first
resampled in proportion to their weights (systematic resampling, seeded); Markov-chain runs are
thinned by their integrated autocorrelation time so the i.i.d. error formulas hold.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from heatbath.annealing.smc import systematic_resample

from heatbath.core.errors import UserError
from heatbath.estimators.autocorr import integrated_time
from heatbath.estimators.free_energy import bar, exp_estimator, mbar
from heatbath.energy.run import load_energy_run
from heatbath.targets.plugin import user_code_guard


def _load(run_dir: Path):
    _, target, arrays, result = load_energy_run(run_dir, "--versus (it compares two energy runs)")
    return target, arrays, result.weighted


def _representative(arrays: dict, weighted: bool, seed: int) -> torch.Tensor:
    """Approximately independent, equally weighted samples of the run's target."""
    x = torch.as_tensor(arrays["x"])
    if weighted:
        log_w = torch.as_tensor(arrays["log_w"], dtype=torch.float64)
        rows = systematic_resample(log_w[None], torch.Generator().manual_seed(seed))[0]
        return x[rows]
    traces = arrays.get("energy_traces")
    if traces is None:
        return x
    chains, steps = traces.shape
    stride = max(1, math.ceil(integrated_time(traces)))
    keep = torch.arange(0, steps, stride)
    return x.reshape(chains, steps, *x.shape[1:])[:, keep].reshape(-1, *x.shape[1:])


def free_energy_difference(run_a: Path, run_b: Path, *, seed: int = 0) -> dict:
    target_a, arrays_a, weighted_a = _load(run_a)
    target_b, arrays_b, weighted_b = _load(run_b)
    if target_a.event_shape != target_b.event_shape:
        raise UserError(f"the two runs sample different spaces: {target_a.event_shape} vs "
                        f"{target_b.event_shape}")
    xa = _representative(arrays_a, weighted_a, seed).to(torch.float64)
    xb = _representative(arrays_b, weighted_b, seed + 1).to(torch.float64)
    with torch.no_grad(), user_code_guard(target_a, "evaluating --versus energies"), \
            user_code_guard(target_b, "evaluating --versus energies"):
        u_aa, u_ba = target_a.energy(xa).numpy(), target_b.energy(xa).numpy()
        u_ab, u_bb = target_a.energy(xb).numpy(), target_b.energy(xb).numpy()
    if not all(np.isfinite(u).all() for u in (u_aa, u_ba, u_ab, u_bb)):
        raise UserError("non-finite energies: one run's samples lie outside the other "
                        "target's support, so no free-energy difference can be estimated")
    w_forward, w_reverse = u_ba - u_aa, u_ab - u_bb
    u_kn = np.stack([np.concatenate([u_aa, u_ab]), np.concatenate([u_ba, u_bb])])
    both = mbar(u_kn, [len(xa), len(xb)]).difference(0, 1)
    reverse = exp_estimator(w_reverse)
    out = {"delta_f": {"exp_forward": exp_estimator(w_forward).to_json(),
                       "exp_reverse": {**reverse.to_json(), "value": -reverse.value,
                                       "ci95": [-reverse.ci95[1], -reverse.ci95[0]]},
                       "bar": bar(w_forward, w_reverse).to_json(), "mbar": both.to_json()},
           "n": [len(xa), len(xb)], "states": [str(run_a), str(run_b)],
           "convention": "delta_f = F_B - F_A = -(ln Z_B - ln Z_A), in kT"}
    if target_a.exact.log_z is not None and target_b.exact.log_z is not None:
        out["exact"] = {"delta_f": -(target_b.exact.log_z - target_a.exact.log_z)}
    return out
