"""Estimates from importance log-weights: log Z by log-mean-exp, and the Kish effective sample size.

The Estimates come from `heatbath.estimators.importance` (delta method on i.i.d. weights); this
module adds the batched tensor forms that SMC needs inside its loop.
"""

from __future__ import annotations

import math

import torch

from heatbath.core.estimate import Estimate
from heatbath.estimators.importance import kish_ess as importance_kish_ess
from heatbath.estimators.importance import log_z_importance


def log_mean_exp(log_w: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])


def kish_ess_count(log_w: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """(Σw)² / Σw² along `dim`, a count between 1 and n (batched, inside SMC's loop); the
    fraction with its error bar is `heatbath.estimators.kish_ess`."""
    return torch.exp(2 * torch.logsumexp(log_w, dim=dim) - torch.logsumexp(2 * log_w, dim=dim))


def log_z_estimate(log_w: torch.Tensor, offset: float = 0.0,
                   energy_evals: int | None = None) -> Estimate:
    """log mean(w) + offset with its delta-method standard error (see estimators.importance)."""
    found = log_z_importance(log_w.detach().to(torch.float64).reshape(-1).cpu().numpy())
    return Estimate(found.value + offset, found.stderr, found.n, energy_evals=energy_evals)


def ess_estimate(log_w: torch.Tensor) -> Estimate:
    """Kish ESS as a fraction of n, with its delta-method standard error."""
    return importance_kish_ess(log_w.detach().to(torch.float64).reshape(-1).cpu().numpy())
