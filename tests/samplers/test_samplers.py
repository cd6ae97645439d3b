"""Samplers driven by the exact Gaussian denoiser: moments, convergence order, NFE, determinism."""

import math

import numpy as np
import pytest
import torch

from heatbath.generative.analytic_field import GaussianDataField
from heatbath.paths import build_path
from heatbath.samplers import (SAMPLERS, SamplerSettings, conjugate, ddim, draw_samples,
                               dpm_solver_2m, euler, heun, time_grid)

MEAN = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.5], [0.5, 0.8]], dtype=torch.float64)


def gaussian_field(schedule: str) -> GaussianDataField:
    return GaussianDataField(build_path(schedule), MEAN, COV)


def endpoint_error(sampler, field, steps: int, grid_kind: str = "uniform") -> float:
    x0 = torch.randn(256, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grid = time_grid(field.path.schedule, steps, grid_kind)
    if grid_kind == "logsnr":
        # Stop before the final jump to λ = ∞, which no refinement of a log-SNR grid shrinks.
        grid = grid[:-1]
    x0 = x0 * float(field.path.schedule.sigma(grid[:1]))
    exact = field.flow_map(x0, float(grid[0]), float(grid[-1]))
    return float((sampler(field, x0, grid).x - exact).norm(dim=1).max())


def measured_order(sampler, field, grid_kind="uniform") -> float:
    steps = [16, 32, 64, 128]
    errors = [endpoint_error(sampler, field, n, grid_kind) for n in steps]
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    return -slope


@pytest.mark.parametrize("schedule", ["linear", "trig", "cosine"])
def test_euler_is_first_order(schedule):
    assert measured_order(euler, gaussian_field(schedule)) == pytest.approx(1.0, abs=0.2)


@pytest.mark.parametrize("schedule", ["linear", "trig", "cosine"])
def test_heun_is_second_order(schedule):
    assert measured_order(heun, gaussian_field(schedule)) == pytest.approx(2.0, abs=0.25)


@pytest.mark.parametrize("schedule", ["linear", "trig", "vp"])
def test_dpm_solver_2m_is_second_order(schedule):
    order = measured_order(dpm_solver_2m, gaussian_field(schedule), "logsnr")
    assert order == pytest.approx(2.0, abs=0.3)


def test_quadratic_grid_steps_fall_quadratically_toward_the_data_end():
    grid = time_grid(build_path("linear").schedule, 8, "quadratic")
    s = 1.0 - grid
    expected = (1.0 - torch.arange(9, dtype=torch.float64) / 8) ** 2
    assert torch.allclose(s, expected, atol=1e-15, rtol=0)
    assert float(grid[0]) == 0.0 and float(grid[-1]) == 1.0


def test_heun_is_second_order_on_the_quadratic_grid():
    assert measured_order(heun, gaussian_field("linear"), "quadratic") == pytest.approx(2.0,
                                                                                      abs=0.25)


def test_heun_on_edm_karras_grid_is_second_order():
    field = gaussian_field("edm")
    x0 = torch.randn(128, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    errors = []
    steps = [16, 32, 64, 128]
    for n in steps:
        grid = time_grid(field.path.schedule, n, "karras")
        start = x0 * float(field.path.schedule.sigma(grid[:1]))
        exact = field.flow_map(start, float(grid[0]), 1.0)
        errors.append(float((heun(field, start, grid).x - exact).norm(dim=1).max()))
    assert -np.polyfit(np.log(steps), np.log(errors), 1)[0] == pytest.approx(2.0, abs=0.3)


@pytest.mark.parametrize("schedule", ["vp", "edm", "linear"])
def test_conjugate_sampler_is_ddim_at_lambda_zero_and_first_order_otherwise(schedule):
    field = gaussian_field(schedule)
    grid = time_grid(field.path.schedule, 10, "karras")
    start = torch.randn(64, 2, generator=torch.Generator().manual_seed(4),
                        dtype=torch.float64) * float(field.path.schedule.sigma(grid[:1]))
    assert torch.allclose(conjugate(field, start, grid, lam=0.0).x, ddim(field, start, grid).x,
                          rtol=0, atol=1e-12)
    for lam in (1.0, 2.0):   # (λ < 0 can cancel the error pre-asymptotically: order noisy)
        order = measured_order(lambda f, x, g: conjugate(f, x, g, lam=lam), field, "logsnr")
        assert order == pytest.approx(1.0, abs=0.25), (lam, order)


def assert_moments(x: torch.Tensor, mean=MEAN, cov=COV, z_max=4.5):
    x = x.to(torch.float64)
    n = x.shape[0]
    z_mean = (x.mean(0) - mean) / torch.sqrt(torch.diag(cov) / n)
    assert z_mean.abs().max() < z_max, z_mean
    sample_cov = torch.cov(x.T)
    se = torch.sqrt((torch.outer(torch.diag(cov), torch.diag(cov)) + cov ** 2) / n)
    assert ((sample_cov - cov) / se).abs().max() < z_max, sample_cov


SETTINGS = [   # enough evaluations that discretisation error is well below sampling error
    ("linear", SamplerSettings("euler", nfe=1000)),
    ("linear", SamplerSettings("heun", nfe=101)),
    ("cosine", SamplerSettings("dpm++2m", nfe=100, grid="logsnr")),
    ("vp", SamplerSettings("ddim", nfe=1000)),
    ("vp", SamplerSettings("ddim", nfe=1000, eta=0.5)),
    ("vp", SamplerSettings("ddpm", nfe=1000)),
    ("trig", SamplerSettings("euler-maruyama", nfe=1000)),
    ("vp", SamplerSettings("conjugate", nfe=1000, conjugate_lambda=0.5)),
    ("edm", SamplerSettings("heun", nfe=101)),
    ("ve", SamplerSettings("heun", nfe=101)),
    ("interpolant", SamplerSettings("dopri5", nfe=1)),
]


@pytest.mark.parametrize("schedule,settings", SETTINGS, ids=[f"{p}-{s.name}" for p, s in SETTINGS])
def test_samplers_reproduce_gaussian_moments(schedule, settings):
    field = gaussian_field(schedule)
    result = draw_samples(field, 20000, (2,), settings, seed=3, batch_size=20000,
                          dtype=torch.float64)
    assert torch.isfinite(result.x).all()
    assert_moments(result.x)


# every registered sampler for ordinary paths, taken from the registry (phase-only ones are
# tested on phase-space paths in test_phase_samplers.py)
SAMPLER_CASES = sorted(name for name, s in SAMPLERS.items() if not s.phase_only)


def test_adaptive_samplers_are_exactly_those_without_a_step_cost():
    for record in SAMPLERS.values():
        assert record.adaptive == (record.evals_per_step == 0)


@pytest.mark.parametrize("name", SAMPLER_CASES)
def test_sample_does_not_depend_on_count_or_batch(name):
    field = gaussian_field("vp")
    settings = SamplerSettings(name, nfe=20, eta=0.5 if name == "ddim" else 0.0)
    big = draw_samples(field, 50, (2,), settings, seed=7, batch_size=16, dtype=torch.float64).x
    small = draw_samples(field, 10, (2,), settings, seed=7, batch_size=3, dtype=torch.float64).x
    # An adaptive solver shares its step size within a batch: there it holds to the tolerance.
    tolerance = 1e-4 if SAMPLERS[name].adaptive else 1e-12
    assert torch.allclose(big[:10], small, atol=tolerance)
    other = draw_samples(field, 10, (2,), settings, seed=8, batch_size=3, dtype=torch.float64).x
    assert not torch.allclose(other, small)


class CountingField:
    def __init__(self, field):
        self.field, self.path, self.calls = field, field.path, 0
        self.prediction = field.prediction

    def predict(self, x, t):
        self.calls += 1
        return self.field.predict(x, t)

    def velocity(self, x, t):
        self.calls += 1
        return self.field.velocity(x, t)


NFE_SCHEDULES = {"euler": "linear", "heun": "edm", "dpm++2m": "vp", "ddim": "cosine",
                 "ddpm": "vp", "euler-maruyama": "cosine", "dopri5": "linear",
                 "conjugate": "linear"}


def test_nfe_cases_cover_the_registry():
    assert set(NFE_SCHEDULES) == set(SAMPLER_CASES)


@pytest.mark.parametrize("name,schedule", sorted(NFE_SCHEDULES.items()) + [("heun", "ve")])
def test_reported_nfe_is_exact(name, schedule):
    field = CountingField(gaussian_field(schedule))
    result = draw_samples(field, 8, (2,), SamplerSettings(name, nfe=15), seed=0,
                          dtype=torch.float64)
    assert result.nfe == field.calls
    if not SAMPLERS[name].adaptive:
        assert abs(result.nfe - 15) <= 2


@pytest.mark.parametrize("changes,message", [({"eta": 1.5}, "--eta"), ({"eta": math.nan}, "--eta"),
                                             ({"churn": -1.0}, "--churn"),
                                             ({"churn": math.inf}, "--churn"),
                                             ({"rtol": 0.0}, "rtol"), ({"nfe": 0}, "--nfe"),
                                             ({"conjugate_lambda": math.inf},
                                              "--conjugate-lambda")])
def test_settings_out_of_range_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        SamplerSettings("ddim", **{"nfe": 10, **changes}).validate()
