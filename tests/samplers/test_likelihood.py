"""Probability-flow likelihoods against closed forms."""

import math

import pytest
import torch

from heatbath.generative.analytic_field import GaussianDataField
from heatbath.samplers.likelihood import exact_divergence, hutchinson_divergence, log_likelihood, rademacher
from heatbath.paths import build_path

MEAN = torch.tensor([0.5, -1.0, 0.25], dtype=torch.float64)
A = torch.tensor([[1.0, 0.3, 0.0], [0.0, 0.7, -0.2], [0.1, 0.0, 0.5]], dtype=torch.float64)
COV = A @ A.T + 0.1 * torch.eye(3, dtype=torch.float64)


def gaussian_log_prob(x):
    return torch.distributions.MultivariateNormal(MEAN, COV).log_prob(x)


def gaussian_draws(n: int, seed: int) -> torch.Tensor:
    """n draws of N(MEAN, COV) from their own seeded generator: MEAN + L ξ with COV = L Lᵀ."""
    noise = torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return MEAN + noise @ torch.linalg.cholesky(COV).T


def normal_draws(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("schedule", ["linear", "trig", "cosine", "vp", "edm", "ve"])
def test_exact_likelihood_matches_closed_form(schedule):
    field = GaussianDataField(build_path(schedule, sigma_data=1.0, data_mean=MEAN), MEAN, COV)
    x = gaussian_draws(64, seed=0)
    result = log_likelihood(field, x, method="exact", rtol=1e-8, atol=1e-8)
    # Paths with α(0) = 0 start from an exact prior. VP (α(0) = 0.0066) and EDM (σ_max = 80)
    # start from N(α·mean, σ² + α²σ_data²), which misses the data covariance at second order;
    # VE stops at σ_min = 0.01, so it scores x + 0.01·z rather than x.
    tol = {"vp": 2e-3, "edm": 1e-3, "ve": 3e-3}.get(schedule, 1e-5)
    assert torch.allclose(result.log_q, gaussian_log_prob(x), atol=tol)
    assert result.method == "exact" and result.nfe > 0


def test_exact_divergence_equals_trace_of_jacobian():
    field = GaussianDataField(build_path("trig"), MEAN, COV)
    x = normal_draws(5, 3, seed=2)
    _, trace = exact_divergence(field, x, 0.4)
    for i in range(5):
        jac = torch.autograd.functional.jacobian(lambda y: field.velocity(y[None], 0.4)[0], x[i])
        assert trace[i].item() == pytest.approx(torch.trace(jac).item(), abs=1e-12)


def test_hutchinson_is_unbiased_and_reports_its_error():
    field = GaussianDataField(build_path("linear"), MEAN, COV)
    x = gaussian_draws(200, seed=1)
    result = log_likelihood(field, x, method="hutchinson", probes=8, rtol=1e-7, atol=1e-7)
    error = result.log_q - gaussian_log_prob(x)
    z = error.mean() / (result.stderr.pow(2).mean().sqrt() / math.sqrt(len(x)))
    assert abs(z) < 4
    assert (result.stderr > 0).all()
    # Each stderr comes from 8 probes, so error/stderr is about Student-t with 7 degrees of
    # freedom: P(|t₇| < 1.96) ≈ 0.91, and the coverage of 200 points has stderr ≈ 0.02.
    coverage = (error.abs() < 1.96 * result.stderr).double().mean()
    assert coverage > 0.85, coverage


def test_hutchinson_probe_estimates_average_to_the_trace():
    field = GaussianDataField(build_path("cosine"), MEAN, COV)
    x = normal_draws(4, 3, seed=3)
    probes = rademacher(0, torch.arange(4), 4000, (3,), torch.float64)
    _, estimates = hutchinson_divergence(field, x, 0.6, probes)
    _, trace = exact_divergence(field, x, 0.6)
    se = estimates.std(1) / math.sqrt(4000)
    assert ((estimates.mean(1) - trace).abs() < 4 * se + 1e-12).all()


def test_likelihood_is_batch_independent():
    field = GaussianDataField(build_path("linear"), MEAN, COV)
    x = normal_draws(6, 3, seed=4)
    ids = torch.arange(6)
    full = log_likelihood(field, x, method="hutchinson", probes=2, ids=ids, solver="rk4", steps=20)
    part = log_likelihood(field, x[2:4], method="hutchinson", probes=2, ids=ids[2:4],
                          solver="rk4", steps=20)
    assert torch.allclose(full.log_q[2:4], part.log_q, atol=1e-12)
