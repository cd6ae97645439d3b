"""Heat capacity C = Var(U) (k_B units) from importance weights and from chains: the estimator's
arithmetic, its error bar's calibration, and agreement with Kaufman on a 4×4 lattice."""

import numpy as np
import pytest

from heatbath.energy import sample_energy
from heatbath.estimators.importance import self_normalized_variance
from heatbath.targets.ising import Ising2D


def test_equal_and_given_weights_give_the_plain_weighted_variance():
    f = np.array([1.0, 2.0, 4.0, 7.0])
    assert self_normalized_variance(f, np.zeros(4)).value == pytest.approx(np.var(f))
    w = np.array([1.0, 2.0, 3.0, 4.0])
    mean = np.sum(w * f) / w.sum()
    expected = np.sum(w * (f - mean) ** 2) / w.sum()
    assert self_normalized_variance(f, np.log(w)).value == pytest.approx(expected)


def test_reweighted_variance_is_calibrated():
    """Draws of N(0, 1) reweighted to N(0, 0.8²): Var = 0.64; over 200 repeats the z-scores
    have mean 0 and variance 1 within their sampling error."""
    rng = np.random.default_rng(0)
    zs = []
    for _ in range(200):
        x = rng.standard_normal(4000)
        log_w = -0.5 * x ** 2 / 0.64 + 0.5 * x ** 2
        found = self_normalized_variance(x, log_w, n_boot=2)
        zs.append((found.value - 0.64) / found.stderr)
    zs = np.array(zs)
    assert abs(zs.mean()) < 4 / np.sqrt(200) + 0.1      # + the O(1/n) ratio bias, small
    assert abs(zs.var(ddof=1) - 1) < 4 * np.sqrt(2 / 199)


@pytest.mark.parametrize("method,settings", [
    ("ais", {"method.steps": 100, "method.samples": 2000}),
    ("mcmc", {"method.steps": 400, "method.chains": 32, "method.kernel": "wolff"}),
])
def test_heat_capacity_against_kaufman(method, settings):
    target = Ising2D(L=4, beta=0.4)
    found = sample_energy(target, method, settings=settings, seed=2).estimates()
    exact = target.exact.heat_capacity
    assert abs(found.heat_capacity.z_score(exact)) < 4, (found.heat_capacity, exact)
    assert found.heat_capacity_per_site.value == pytest.approx(found.heat_capacity.value / 16)
    report = found.to_json()
    assert {"heat_capacity", "heat_capacity_per_site"} <= set(report["conventions"])
