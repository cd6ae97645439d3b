"""Pareto k̂: how heavy is the right tail of the importance weights?

Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao & Gabry, "Pareto Smoothed
Importance Sampling", JMLR 25, 2024) fits a generalized Pareto distribution (GPD) to the largest
weights. Its shape k̂ says how many moments the weights have: finite variance needs k < 1/2,
and for k̂ ≥ 0.7 the estimates converge too slowly to trust (the paper's practical threshold).
Light-tailed or bounded weights give k̂ ≤ 0 (a bounded GPD).

The GPD is fitted with the empirical-Bayes estimator of Zhang & Stephens (Technometrics 51, 2009)
exactly as in PSIS (the R package `loo`, `gpdfit`): a grid of 30 + ⌊√M⌋ values of θ = −k/σ,
weighted by their profile likelihood, then the weakly informative prior that shrinks k̂ toward
0.5 with the weight of 10 observations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from heatbath.estimators._inputs import log_weights

RELIABLE_BELOW = 0.7      # PSIS practical threshold on k̂
_MIN_TAIL = 5             # fewer exceedances than this cannot identify a GPD
_PRIOR_K, _PRIOR_WEIGHT = 0.5, 10.0
_PRIOR_THETA_SCALE = 3.0  # Zhang & Stephens' grid spread around 1/x_max


@dataclass(frozen=True)
class TailDiagnostic:
    """PSIS diagnostic of a set of importance weights.

    k_hat: GPD shape of the largest `tail_length` weights (nan if too few weights, −inf if all
    weights are equal). reliable: k̂ < 0.7. max_weight_fraction: the largest normalised weight
    max w / Σ w (1/n for equal weights, near 1 when one sample dominates).
    """

    k_hat: float
    reliable: bool
    max_weight_fraction: float
    tail_length: int
    n: int
    message: str


def weight_tail_diagnostic(log_w) -> TailDiagnostic:
    """Fit the PSIS Pareto k̂ to the largest M = ⌈min(n/5, 3√n)⌉ weights (Vehtari et al. 2024)."""
    lw = np.sort(log_weights(log_w))
    n = lw.size
    max_fraction = float(math.exp(lw[-1] - logsumexp(lw)))
    tail_length = int(math.ceil(min(0.2 * n, 3.0 * math.sqrt(n))))
    if tail_length < _MIN_TAIL or tail_length >= n:
        message = (f"only {n} weights: too few to fit the tail (need at least "
                   f"{5 * _MIN_TAIL}); treat importance-sampling estimates as unreliable")
        return TailDiagnostic(math.nan, False, max_fraction, tail_length, n, message)
    # Exceedances over the (M+1)-th largest weight, on the scale max w = 1 (k̂ is scale-free).
    scaled = np.exp(lw[-(tail_length + 1):] - lw[-1])
    exceedances = scaled[1:] - scaled[0]
    if exceedances[-1] <= 0.0:
        k_hat = -math.inf
    else:
        k_hat = gpd_shape_zhang_stephens(exceedances)
    reliable = bool(k_hat < RELIABLE_BELOW)
    return TailDiagnostic(k_hat, reliable, max_fraction, tail_length, n,
                          _describe(k_hat, reliable, max_fraction))


def gpd_shape_zhang_stephens(x: np.ndarray) -> float:
    """GPD shape k of exceedances x ≥ 0 (sorted ascending, largest > 0), with the PSIS prior."""
    m = x.size
    grid_size = 30 + int(math.sqrt(m))
    j = np.arange(1, grid_size + 1, dtype=np.float64)
    first_quartile = x[int(m / 4 + 0.5) - 1]
    if first_quartile <= 0.0:  # many ties at the threshold: use the smallest positive value
        first_quartile = x[x > 0.0][0]
    # θ grid: all θ < 1/x_max, so every log1p(−θx) below is finite.
    theta = 1.0 / x[-1] + (1.0 - np.sqrt(grid_size / (j - 0.5))) / (_PRIOR_THETA_SCALE
                                                                     * first_quartile)
    k = np.log1p(-theta[:, None] * x[None, :]).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        profile_loglik = m * (np.log(-theta / k) - k - 1.0)
    profile_loglik = np.where(np.isfinite(profile_loglik), profile_loglik, -np.inf)
    posterior = np.exp(profile_loglik - logsumexp(profile_loglik))
    theta_hat = float(np.sum(theta * posterior))
    k_hat = float(np.mean(np.log1p(-theta_hat * x)))
    return (m * k_hat + _PRIOR_WEIGHT * _PRIOR_K) / (m + _PRIOR_WEIGHT)


def _describe(k_hat: float, reliable: bool, max_fraction: float) -> str:
    share = f"the largest weight carries {100 * max_fraction:.3g} % of the total"
    if reliable:
        return (f"k̂ = {k_hat:.2f} < {RELIABLE_BELOW}: light enough weight tail for "
                f"importance-sampling estimates and their error bars; {share}")
    return (f"k̂ = {k_hat:.2f} ≥ {RELIABLE_BELOW}: heavy-tailed weights (few samples dominate); "
            f"estimates and error bars are unreliable — the proposal misses parts of the target; "
            f"{share}")
