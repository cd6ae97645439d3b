"""The density of what a sampler returned (samplers/returned.py) against exact answers.

On the exact Gaussian field every deterministic sampler is an affine map of its starting noise,
so its output is Gaussian with a covariance we can build from the map itself: log q must equal
that density. The field's probability-flow ODE density is the data density p exactly, so
weighting by it (w = 1) leaves each few-step sampler's discretisation bias in place; the
returned densities and path log-weights must remove it, at 2, 5 and 10 NFE.
"""

import math

import pytest
import torch

from heatbath.estimators.tail import weight_tail_diagnostic
from heatbath.generative.analytic_field import GaussianDataField, sampler_output_law
from heatbath.paths import build_path
from heatbath.samplers import (SAMPLERS, SamplerSettings, draw_samples, end_time, finish,
                               initial_noise, run_sampler, sampler_grid)
from heatbath.samplers.likelihood import prior_log_prob
from heatbath.samplers.returned import MAP_DENSITY_MAX_DIM

MEAN = torch.tensor([0.5, -1.0, 0.25], dtype=torch.float64)
A = torch.tensor([[1.0, 0.3, 0.0], [0.0, 0.7, -0.2], [0.1, 0.0, 0.5]], dtype=torch.float64)
COV = A @ A.T + 0.1 * torch.eye(3, dtype=torch.float64)

# One settings case per density kind a registry sampler can have.
CASES = [SamplerSettings("euler"), SamplerSettings("heun"), SamplerSettings("dpm++2m"),
         SamplerSettings("conjugate", conjugate_lambda=-1.0),
         SamplerSettings("ddim", eta=0.0), SamplerSettings("ddim", eta=0.5),
         SamplerSettings("ddpm"), SamplerSettings("euler-maruyama", churn=1.0),
         SamplerSettings("euler-maruyama", churn=0.0), SamplerSettings("dopri5")]


def field_for(schedule: str, mean=MEAN, cov=COV) -> GaussianDataField:
    return GaussianDataField(build_path(schedule, sigma_data=1.0, data_mean=mean), mean, cov)


def with_nfe(settings: SamplerSettings, nfe: int) -> SamplerSettings:
    return SamplerSettings(settings.name, nfe=nfe, eta=settings.eta, churn=settings.churn,
                           grid=settings.grid, conjugate_lambda=settings.conjugate_lambda)


def test_cases_cover_every_sampler_and_density_kind():
    assert {s.name for s in CASES} == {n for n, s in SAMPLERS.items() if not s.phase_only}
    kinds = {s.name: set() for s in CASES}
    for settings in CASES:
        kinds[settings.name].add(settings.sampler.density(settings))
    assert kinds["ddim"] == {"map", "path"} and kinds["euler-maruyama"] == {"map", "path"}
    assert kinds["dopri5"] == {"ode"} and kinds["ddpm"] == {"path"}
    assert all(kinds[name] == {"map"} for name in ("euler", "heun", "dpm++2m", "conjugate"))


def run_map(field, settings, x0):
    """The sampler's own map applied to chosen starting points (no density bookkeeping)."""
    grid = sampler_grid(field, settings)
    no_noise = lambda step: torch.zeros_like(x0)   # churn 0 still draws (and multiplies by 0)
    result = run_sampler(field, x0, settings, grid, no_noise)
    return finish(field, result.x, end_time(field, settings, grid))[0]


@pytest.mark.parametrize("schedule", ["linear", "vp"])
@pytest.mark.parametrize("settings", [s for s in CASES if s.sampler.density(s) == "map"],
                         ids=lambda s: f"{s.name}-eta{s.eta}-churn{s.churn}")
def test_map_density_is_the_density_of_the_affine_pushforward(settings, schedule):
    field = field_for(schedule)
    settings = with_nfe(settings, 4)
    drawn = draw_samples(field, 50, (3,), settings, seed=3, dtype=torch.float64,
                         with_log_q=True)
    t0 = float(sampler_grid(field, settings)[0])
    x0 = initial_noise(field.path, t0, torch.arange(50), (3,), 3, torch.float64)
    assert torch.allclose(drawn.x, run_map(field, settings, x0), atol=1e-12)
    law = sampler_output_law(field, settings)
    assert torch.allclose(drawn.log_q, law.log_prob(drawn.x), atol=1e-8)
    # and it is not the ODE's density (= the data density for this exact field) at 4 NFE
    data = torch.distributions.MultivariateNormal(MEAN, COV).log_prob(drawn.x)
    assert (drawn.log_q - data).abs().max() > 1e-3
    # the starting law the pushforward assumes is the prior the density starts from
    alpha = float(field.path.schedule.alpha(torch.tensor(t0, dtype=torch.float64)))
    sigma = float(field.path.schedule.sigma(torch.tensor(t0, dtype=torch.float64)))
    start = torch.distributions.MultivariateNormal(
        alpha * MEAN, (sigma ** 2 + alpha ** 2) * torch.eye(3, dtype=torch.float64))
    assert torch.allclose(prior_log_prob(field.path, x0, t0), start.log_prob(x0), atol=1e-10)


@pytest.mark.parametrize("settings", [s for s in CASES if s.sampler.density(s) != "ode"],
                         ids=lambda s: f"{s.name}-eta{s.eta}-churn{s.churn}")
def test_log_q_leaves_the_samples_alone_and_does_not_depend_on_the_batch(settings):
    field = field_for("vp")
    settings = with_nfe(settings, 5)
    plain = draw_samples(field, 30, (3,), settings, seed=4, dtype=torch.float64)
    whole = draw_samples(field, 30, (3,), settings, seed=4, dtype=torch.float64,
                         with_log_q=True)
    pieces = draw_samples(field, 30, (3,), settings, seed=4, dtype=torch.float64,
                          with_log_q=True, batch_size=7)
    assert torch.equal(plain.x, whole.x) and plain.nfe == whole.nfe
    assert torch.allclose(whole.log_q, pieces.log_q, atol=1e-10)
    assert torch.isfinite(whole.log_q).all()


# 1-D data N(0.5, 0.8²) on the VP path: each case's weights have a light tail (Pareto k̂ < 0.5,
# asserted), so the self-normalised estimate's standard error is meaningful.
UNBIASED = [("heun", 1.0, 2), ("heun", 1.0, 5), ("heun", 1.0, 10),
            ("euler-maruyama", 0.25, 2), ("euler-maruyama", 1.0, 5),
            ("euler-maruyama", 1.0, 10)]


@pytest.mark.parametrize("name,churn,nfe", UNBIASED)
def test_self_normalised_estimates_are_unbiased_with_returned_densities(name, churn, nfe):
    mean, cov = torch.tensor([0.5], dtype=torch.float64), torch.tensor([[0.64]],
                                                                        dtype=torch.float64)
    field = field_for("vp", mean, cov)
    settings = SamplerSettings(name, nfe=nfe, churn=churn)
    drawn = draw_samples(field, 20000, (1,), settings, seed=2, dtype=torch.float64,
                         with_log_q=True)
    assert settings.sampler.density(settings) == ("map" if name == "heun" else "path")
    log_w = torch.distributions.MultivariateNormal(mean, cov).log_prob(drawn.x) - drawn.log_q
    assert weight_tail_diagnostic(log_w).k_hat < 0.5
    second_moment, truth = drawn.x[:, 0] ** 2, 0.64 + 0.25
    w = torch.softmax(log_w, 0)
    estimate = float((w * second_moment).sum())
    stderr = float((w ** 2 * (second_moment - estimate) ** 2).sum().sqrt())
    assert abs(estimate - truth) < 4 * stderr
    raw = log_w.exp()     # E_q[p/q] = 1: the weights' normalisation is right too
    assert abs(float(raw.mean()) - 1) < 4 * float(raw.std()) / math.sqrt(len(raw))
    # The ODE density of this exact field is p itself: its weights are all 1, and the plain
    # average keeps the sampler's bias (beyond 5 standard errors here, except Heun at 10 NFE,
    # which is already accurate).
    plain_stderr = float(second_moment.std()) / math.sqrt(len(second_moment))
    if (name, nfe) != ("heun", 10):
        assert abs(float(second_moment.mean()) - truth) > 5 * plain_stderr


def test_refusals_are_one_line():
    field = field_for("vp")
    with pytest.raises(ValueError, match="ODE"):
        draw_samples(field, 4, (3,), SamplerSettings("dopri5"), with_log_q=True)
    big = MAP_DENSITY_MAX_DIM + 1
    wide = GaussianDataField(build_path("vp"), torch.zeros(big, dtype=torch.float64),
                             torch.eye(big, dtype=torch.float64))
    with pytest.raises(ValueError, match="dopri5"):
        draw_samples(wide, 2, (big,), SamplerSettings("euler", nfe=2), with_log_q=True)


class IsotropicParticleField:
    """The exact field of N(0, I) on the zero-CoM subspace of (P, d) configurations: the
    denoiser is a per-time scalar, so every map sampler is x ↦ c·x on the subspace."""

    prediction = "velocity"

    def __init__(self, path) -> None:
        self.path = path

    def predict(self, x, t):
        c = self.path.coefficients(torch.as_tensor(t, dtype=torch.float64).expand(len(x)), x)
        var = c.alpha ** 2 + c.sigma ** 2
        return c.alpha * x / var, c.sigma * x / var

    def velocity(self, x, t):
        c = self.path.coefficients(torch.as_tensor(t, dtype=torch.float64).expand(len(x)), x)
        data, noise = self.predict(x, t)
        return c.d_alpha * data + c.d_sigma * noise


@pytest.mark.parametrize("settings", [SamplerSettings("heun", nfe=5),
                                      SamplerSettings("euler-maruyama", nfe=5)],
                         ids=["heun", "euler-maruyama"])
def test_particle_densities_live_on_the_zero_com_subspace(settings):
    from heatbath.paths.noise import SpaceGaussianNoise
    from heatbath.spaces import CentredParticles

    path = build_path("vp")
    path.noise = SpaceGaussianNoise(CentredParticles(4, 2))
    field = IsotropicParticleField(path)
    drawn = draw_samples(field, 40, (4, 2), settings, seed=5, dtype=torch.float64,
                         with_log_q=True)
    assert drawn.x.mean(1).abs().max() < 1e-12 and torch.isfinite(drawn.log_q).all()
    if settings.sampler.density(settings) == "path":
        return
    # Φ(x0) = c·x0 with x0 ~ N(0, s²I) on the 6-dim subspace: q = N(0, c²s²I) there.
    grid = sampler_grid(field, settings)
    x0 = initial_noise(path, float(grid[0]), torch.arange(40), (4, 2), 5, torch.float64)
    c = float((run_map(field, settings, x0).flatten() / x0.flatten()).mean())
    t0 = torch.tensor(float(grid[0]), dtype=torch.float64)
    scale2 = float(path.schedule.sigma(t0)) ** 2 + float(path.schedule.alpha(t0)) ** 2
    var = c ** 2 * scale2
    exact = -drawn.x.pow(2).sum((1, 2)) / (2 * var) - 3 * math.log(2 * math.pi * var)
    assert torch.allclose(drawn.log_q, exact, atol=1e-8)
