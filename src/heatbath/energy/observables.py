"""User observables f(x) -> (N,) estimated from an energy run, with error bars.

Weighted runs give self-normalised averages Σwf/Σw with delta-method errors and bootstrap
intervals; Markov-chain runs average over independent chains.
"""

from __future__ import annotations

import numpy as np
import torch

from heatbath.core.errors import UserError
from heatbath.core.estimate import Estimate
from heatbath.estimators.autocorr import chain_mean_estimate
from heatbath.estimators.importance import self_normalized
from heatbath.targets.plugin import load_function


def _values(name: str, function, x: torch.Tensor) -> np.ndarray:
    try:
        with torch.no_grad():
            out = function(x)
    except Exception as exc:   # a user function: report its failure in one line
        raise UserError(f"observable {name} failed: {type(exc).__name__}: {exc}") from None
    values = np.asarray(torch.as_tensor(out).detach().cpu().numpy(), dtype=np.float64)
    if values.shape != (len(x),):
        raise UserError(f"observable {name} must return one number per sample, shape "
                        f"({len(x)},); got {values.shape}")
    if not np.isfinite(values).all():
        raise UserError(f"observable {name} returned non-finite values")
    return values


def observable_estimate(name: str, function, arrays: dict, weighted: bool,
                        seed: int = 0) -> Estimate:
    """E_p[f] from a run's samples: self-normalised for weighted runs (bootstrap interval),
    else the mean over independent chains."""
    values = _values(name, function, torch.as_tensor(arrays["x"]))
    if weighted:
        return self_normalized(values, arrays["log_w"], seed=seed)
    chains = arrays["energy_traces"].shape[0]
    return chain_mean_estimate(values.reshape(chains, -1))


def estimate_observables(specs: list[str], arrays: dict, weighted: bool, seed: int = 0) -> dict:
    """`--observable FILE.py:NAME` for each spec: {NAME: estimate JSON}."""
    out = {}
    for spec in specs:
        name, function = load_function(spec)
        out[name] = observable_estimate(name, function, arrays, weighted, seed).to_json()
    return out
