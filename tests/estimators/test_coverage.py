"""Do the 95 % intervals cover the truth 95 % of the time? 200 cheap repeats per estimator.

Each problem has light-tailed weights (bounded: the proposal is wider than the target), where the
delta-method and bootstrap intervals are asymptotically exact. The coverage of 200 repeats is
binomial: its standard error is sqrt(0.95 · 0.05 / 200) ≈ 1.5 %, and we accept two standard
errors (≈ 3 %, the 95 ± 3 % the issue asks for). A wrong error bar fails: a stderr off by 25 %
gives ~88 % or ~99 % coverage. Samples for all repeats are drawn in one vectorised call.
"""

import math

import numpy as np

from heatbath.estimators.free_energy import bar
from heatbath.estimators.importance import (forward_ess, kish_ess, log_z_importance,
                                            self_normalized)

REPEATS, N = 200, 500
NOMINAL = 0.95
TOLERANCE = 2 * math.sqrt(NOMINAL * (1 - NOMINAL) / REPEATS)   # ≈ 0.031
SIGMA_Q = 1.5    # proposal N(0, σ²) for the target exp(−x²/2): weights are bounded


def proposal_samples(seed):
    """(REPEATS, N) draws from q and their log-weights log p̃ − log q (q normalised)."""
    x = np.random.default_rng(seed).normal(0.0, SIGMA_Q, size=(REPEATS, N))
    log_q = -0.5 * x**2 / SIGMA_Q**2 - math.log(SIGMA_Q) - 0.5 * math.log(2 * math.pi)
    return x, -0.5 * x**2 - log_q


def coverage(estimates, truth):
    return np.mean([lo <= truth <= hi for lo, hi in (e.ci95 for e in estimates)])


def assert_nominal(fraction):
    assert abs(fraction - NOMINAL) <= TOLERANCE, f"coverage {fraction:.3f}, wanted 0.95 ± 0.03"


def test_log_z_interval_coverage():
    _, log_w = proposal_samples(seed=0)
    estimates = [log_z_importance(row) for row in log_w]
    assert_nominal(coverage(estimates, 0.5 * math.log(2 * math.pi)))


def test_self_normalized_interval_coverage():
    x, log_w = proposal_samples(seed=1)
    estimates = [self_normalized(xi**2, lw, n_boot=500, seed=i)
                 for i, (xi, lw) in enumerate(zip(x, log_w))]
    assert_nominal(coverage(estimates, 1.0))          # bootstrap percentile interval
    delta = np.mean([abs(e.z_score(1.0)) <= 1.959963984540054 for e in estimates])
    assert_nominal(delta)                              # ± 1.96 delta-method stderr


def test_ess_interval_coverage():
    exact = math.sqrt(2 * SIGMA_Q**2 - 1) / SIGMA_Q**2   # 1 / E_q[w²] for normalised w
    _, log_w = proposal_samples(seed=2)
    assert_nominal(coverage([kish_ess(row) for row in log_w], exact))
    # Forward ESS from target samples x ~ N(0, 1) with q = N(μ, 1): log w = −μx + μ²/2 is
    # Gaussian, so every moment of w and 1/w is finite, and 1/E_q[w²] = exp(−μ²). (A width
    # mismatch instead makes (w − 1)² strongly skewed and the n = 500 interval undercovers.)
    mu = 0.5
    x = np.random.default_rng(3).normal(size=(REPEATS, N))
    forward = [forward_ess(row) for row in -mu * x + 0.5 * mu**2]
    assert_nominal(coverage(forward, math.exp(-mu**2)))


def test_bar_interval_coverage():
    # u_k = x²/(2σ_k²) with σ₀ = 1: ΔF = f₁ − f₀ = −ln σ₁.
    sigma1 = 1.5
    rng = np.random.default_rng(4)
    x0, x1 = rng.normal(size=(REPEATS, N)), rng.normal(0.0, sigma1, size=(REPEATS, N))
    shift = 0.5 * (1 / sigma1**2 - 1)
    w_F, w_R = shift * x0**2, -shift * x1**2
    estimates = [bar(forward, reverse) for forward, reverse in zip(w_F, w_R)]
    assert_nominal(coverage(estimates, -math.log(sigma1)))
