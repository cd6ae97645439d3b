"""The Fréchet distance between Gaussian fits (FID convention, squared) against closed forms."""

import numpy as np
import pytest
import scipy.linalg

from heatbath.estimators.frechet import (frechet_squared, frechet_squared_value,
                                         gaussian_frechet_squared)


def random_gaussian(rng, dim):
    factor = rng.normal(size=(dim, dim))
    return rng.normal(size=dim), factor @ factor.T + 0.1 * np.eye(dim)


def test_matches_the_matrix_square_root_formula_for_non_commuting_covariances():
    rng = np.random.default_rng(0)
    (mean_a, cov_a), (mean_b, cov_b) = random_gaussian(rng, 5), random_gaussian(rng, 5)
    direct = (((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b)
              - 2 * np.trace(scipy.linalg.sqrtm(cov_a @ cov_b)).real)
    assert gaussian_frechet_squared(mean_a, cov_a, mean_b, cov_b) == pytest.approx(direct,
                                                                                  rel=1e-10)
    assert gaussian_frechet_squared(mean_b, cov_b, mean_a, cov_a) == pytest.approx(direct,
                                                                                  rel=1e-10)
    assert gaussian_frechet_squared(mean_a, cov_a, mean_a, cov_a) == pytest.approx(0, abs=1e-9)


def test_diagonal_covariances_give_the_squared_w2_in_closed_form():
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mean_a - mean_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()
    assert gaussian_frechet_squared(mean_a, np.diag(var_a), mean_b, np.diag(var_b)) == \
        pytest.approx(expected, rel=1e-12)


def test_sample_estimate_covers_the_population_value():
    rng = np.random.default_rng(1)
    (mean_a, cov_a), (mean_b, cov_b) = random_gaussian(rng, 3), random_gaussian(rng, 3)
    truth = gaussian_frechet_squared(mean_a, cov_a, mean_b, cov_b)
    a = rng.multivariate_normal(mean_a, cov_a, size=20000)
    b = rng.multivariate_normal(mean_b, cov_b, size=20000)
    estimate = frechet_squared(a, b, seed=2)
    assert abs(estimate.value - truth) < 4 * estimate.stderr
    assert estimate.ci95[0] < estimate.value < estimate.ci95[1] and estimate.n == 20000
    assert estimate.extra == {"metric": "frechet_squared", "features": 3}


def test_batched_value_equals_one_set_at_a_time():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 50, 3)), rng.normal(size=(4, 50, 3)) + 0.5
    batched = frechet_squared_value(a, b)
    assert np.allclose(batched, [frechet_squared_value(a[i], b[i]) for i in range(4)],
                       rtol=1e-12)
