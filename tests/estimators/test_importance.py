"""Importance-sampling estimators against exact answers for Gaussian targets and proposals.

Target: p̃(x) = exp(−|x|²/2) in d dimensions, so log Z = (d/2) ln 2π. Proposal q = N(0, σ² I).
For normalised weights w = p/q, E_q[w²] = (σ²/√(2σ² − 1))^d, which is the limit of both the Kish
and the forward ESS fraction: 1/E_q[w²].
"""

import math

import numpy as np
import pytest
import torch

from heatbath.core.errors import UserError
from heatbath.estimators.bootstrap import bootstrap
from heatbath.estimators.importance import (forward_ess, kish_ess, log_z_importance,
                                            self_normalized, weight_tail_diagnostic)


def gaussian_log_weights(rng, n, d, sigma):
    """Samples of N(0, σ²I) and their log-weights log p̃ − log q for p̃ = exp(−|x|²/2)."""
    x = rng.normal(0.0, sigma, size=(n, d))
    log_q = -0.5 * np.sum(x**2, axis=1) / sigma**2 - d * math.log(sigma) - 0.5 * d * math.log(
        2 * math.pi)
    return x, -0.5 * np.sum(x**2, axis=1) - log_q


def exact_ess_fraction(d, sigma):
    return (math.sqrt(2 * sigma**2 - 1) / sigma**2) ** d


@pytest.mark.parametrize("d, sigma", [(1, 1.5), (5, 1.3)])
def test_log_z_of_gaussian_target_matches_exact(d, sigma):
    _, log_w = gaussian_log_weights(np.random.default_rng(1), 20_000, d, sigma)
    estimate = log_z_importance(log_w, energy_evals=20_000)
    assert abs(estimate.z_score(0.5 * d * math.log(2 * math.pi))) < 4
    assert estimate.n == 20_000 and estimate.energy_evals == 20_000
    assert 0 < estimate.stderr < 0.05


def test_torch_input_gives_the_same_answer_as_numpy():
    _, log_w = gaussian_log_weights(np.random.default_rng(2), 1000, 2, 1.4)
    from_numpy = log_z_importance(log_w)
    from_torch = log_z_importance(torch.tensor(log_w, dtype=torch.float64))
    assert from_torch.value == from_numpy.value and from_torch.stderr == from_numpy.stderr


def test_huge_log_weights_do_not_overflow():
    _, log_w = gaussian_log_weights(np.random.default_rng(3), 1000, 1, 1.5)
    shifted = log_z_importance(log_w + 5000.0)
    plain = log_z_importance(log_w)
    assert shifted.value - 5000.0 == pytest.approx(plain.value, abs=1e-9)
    assert shifted.stderr == pytest.approx(plain.stderr, rel=1e-9)


def test_kish_ess_is_one_when_proposal_equals_target():
    _, log_w = gaussian_log_weights(np.random.default_rng(4), 5000, 3, 1.0)
    estimate = kish_ess(log_w)
    assert estimate.value == pytest.approx(1.0, abs=1e-12)
    assert estimate.stderr < 1e-6
    assert estimate.ci95[1] <= 1.0


def test_kish_ess_converges_to_closed_form():
    _, log_w = gaussian_log_weights(np.random.default_rng(5), 20_000, 5, 1.3)
    estimate = kish_ess(log_w)
    assert abs(estimate.z_score(exact_ess_fraction(5, 1.3))) < 4
    assert 0.0 <= estimate.ci95[0] <= estimate.value <= estimate.ci95[1] <= 1.0


@pytest.mark.parametrize("d, sigma", [(1, 1.2), (3, 0.9)])
def test_forward_ess_converges_to_closed_form(d, sigma):
    # Samples of the *target* N(0, I); log w = log p̃ − log q. E_p[w²] and E_p[1/w²] are finite
    # for 2/3 < σ² < 2, so the delta-method error bar is valid.
    rng = np.random.default_rng(6)
    x = rng.normal(size=(20_000, d))
    log_q = -0.5 * np.sum(x**2, axis=1) / sigma**2 - d * math.log(sigma)  # constants cancel
    estimate = forward_ess(-0.5 * np.sum(x**2, axis=1) - log_q)
    assert abs(estimate.z_score(exact_ess_fraction(d, sigma))) < 4


def test_forward_ess_is_one_for_constant_weights():
    assert forward_ess(np.full(100, -3.7)).value == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("d, sigma", [(1, 1.5), (5, 1.3)])
def test_self_normalized_second_moment_matches_exact(d, sigma):
    x, log_w = gaussian_log_weights(np.random.default_rng(7), 20_000, d, sigma)
    estimate = self_normalized(np.sum(x**2, axis=1), log_w, n_boot=400, seed=0)
    assert abs(estimate.z_score(float(d))) < 4
    # The bootstrap and delta-method errors estimate the same spread.
    assert estimate.extra["bootstrap_stderr"] == pytest.approx(estimate.stderr, rel=0.2)
    assert estimate.ci95[0] < estimate.value < estimate.ci95[1]


def test_self_normalized_is_deterministic_given_seed():
    x, log_w = gaussian_log_weights(np.random.default_rng(8), 500, 1, 1.5)
    first = self_normalized(x[:, 0], log_w, n_boot=200, seed=3)
    again = self_normalized(x[:, 0], log_w, n_boot=200, seed=3)
    other = self_normalized(x[:, 0], log_w, n_boot=200, seed=4)
    assert first == again and first.ci95 != other.ci95


def test_tail_k_hat_small_for_light_tailed_weights():
    _, bounded = gaussian_log_weights(np.random.default_rng(9), 4000, 1, 1.5)   # w ≤ max
    lognormal = np.random.default_rng(10).normal(0.0, 0.5, 4000)               # k = 0 limit
    for log_w in (bounded, lognormal):
        diagnostic = weight_tail_diagnostic(log_w)
        assert diagnostic.k_hat < 0.5 and diagnostic.reliable
        assert diagnostic.tail_length == math.ceil(min(4000 / 5, 3 * math.sqrt(4000)))


def test_tail_k_hat_large_for_too_narrow_proposal():
    _, log_w = gaussian_log_weights(np.random.default_rng(11), 4000, 5, 0.3)
    diagnostic = weight_tail_diagnostic(log_w)
    assert diagnostic.k_hat > 0.7 and not diagnostic.reliable
    assert "unreliable" in diagnostic.message


def test_tail_k_hat_recovers_exact_pareto_shape():
    # w = U^(−ξ) has P(w > t) = t^(−1/ξ): its exceedances are exactly GPD with shape ξ.
    xi, n = 0.5, 100_000
    log_w = -xi * np.log(np.random.default_rng(12).uniform(size=n))
    diagnostic = weight_tail_diagnostic(log_w)
    asymptotic_sd = (1 + xi) / math.sqrt(diagnostic.tail_length)   # sd of the GPD shape MLE
    assert abs(diagnostic.k_hat - xi) < 4 * asymptotic_sd


def test_tail_diagnostic_edge_cases():
    equal = weight_tail_diagnostic(np.zeros(1000))
    assert equal.k_hat == -math.inf and equal.reliable
    assert equal.max_weight_fraction == pytest.approx(1e-3)
    few = weight_tail_diagnostic(np.zeros(10))
    assert math.isnan(few.k_hat) and not few.reliable


@pytest.mark.parametrize("bad", [[0.0, np.nan, 1.0], np.zeros((3, 2)), [np.inf, 0.0],
                                 [-np.inf, -np.inf], [1.0]])
def test_bad_log_weights_raise_user_error(bad):
    with pytest.raises(UserError):
        log_z_importance(bad)


def test_zero_weights_are_allowed():
    estimate = log_z_importance([0.0, -np.inf, 0.0, -np.inf])
    assert estimate.value == pytest.approx(math.log(0.5))


def test_mismatched_lengths_raise_user_error():
    with pytest.raises(UserError):
        self_normalized(np.zeros(5), np.zeros(6))


def test_bootstrap_of_mean_matches_standard_error():
    values = np.random.default_rng(13).exponential(size=2000)
    std, (lo, hi) = bootstrap(lambda v: v.mean(axis=1), (values,), n_boot=2000, seed=0)
    assert std == pytest.approx(values.std(ddof=1) / math.sqrt(values.size), rel=0.1)
    assert lo < values.mean() < hi


def test_bootstrap_vectorized_and_loop_agree():
    rng = np.random.default_rng(14)
    x, y = rng.normal(size=300), rng.normal(size=300)
    batched = bootstrap(lambda a, b: np.mean(a * b, axis=1), (x, y), n_boot=100, seed=5)
    looped = bootstrap(lambda a, b: np.mean(a * b), (x, y), n_boot=100, seed=5, vectorized=False)
    assert batched[0] == pytest.approx(looped[0], rel=1e-12)
    assert batched[1] == pytest.approx(looped[1], rel=1e-12)


def test_bootstrap_rejects_wrong_statistic_shape_and_bad_arrays():
    with pytest.raises(UserError):
        bootstrap(lambda v: v.mean(), (np.zeros(10),), n_boot=10)
    with pytest.raises(UserError):
        bootstrap(lambda a, b: a.mean(axis=1), (np.zeros(10), np.zeros(9)), n_boot=10)
    with pytest.raises(UserError):
        bootstrap(lambda v: v.mean(axis=1), np.zeros(10), n_boot=10)
