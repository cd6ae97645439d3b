"""Paths: conversions round-trip, derivatives, inverses, PFGM++ noise and its D → ∞ limit."""

import itertools
import math

import pytest
import scipy.stats
import torch

from heatbath.generative.analytic_field import GaussianDataField
from heatbath.generative.couplings import ot_permutation
from heatbath.generative.field import Field
from heatbath.generative.objective import sample_times
from heatbath.paths import PREDICTIONS, SCHEDULES, StudentTNoise, build_path
from heatbath.samplers import SamplerSettings, draw_samples

NAMES = list(SCHEDULES)


@pytest.mark.parametrize("name,kind", list(itertools.product(NAMES, PREDICTIONS)))
def test_parametrisations_round_trip(name, kind):
    path = build_path(name, sigma_data=0.7)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(64, 3, generator=g, dtype=torch.float64)
    z = torch.randn(64, 3, generator=g, dtype=torch.float64)
    t = 0.05 + 0.9 * torch.rand(64, generator=g, dtype=torch.float64)
    ps = path.sample(x1, t, z)
    out = path.regression_target(kind, ps)
    c = path.coefficients(t, x1)
    x1_hat, z_hat = path.to_data_and_noise(kind, out, ps.x_t, c)
    assert torch.allclose(x1_hat, x1, atol=1e-9) and torch.allclose(z_hat, z, atol=1e-9)
    assert torch.allclose(path.velocity_from(x1_hat, z_hat, c), ps.velocity, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_derivatives_match_autograd(name):
    schedule = SCHEDULES[name]()
    t = torch.tensor([0.1, 0.4, 0.7, 0.9], dtype=torch.float64, requires_grad=True)
    for value, derivative in ((schedule.alpha, schedule.d_alpha), (schedule.sigma, schedule.d_sigma)):
        out = value(t)
        if not out.requires_grad:          # constant (α = 1 for VE/EDM)
            assert torch.all(derivative(t.detach()) == 0)
            continue
        (grad,) = torch.autograd.grad(out.sum(), t)
        assert torch.allclose(grad, derivative(t.detach()), atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_noise_level_inverse(name):
    schedule = SCHEDULES[name]()
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    back = schedule.t_from_noise_level(schedule.noise_level(t))
    assert torch.allclose(back, t, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_paths_go_from_noise_to_data(name):
    s = SCHEDULES[name]()
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
    level = s.noise_level(ends)
    assert level[0] > 40 and level[1] < 0.011         # noise-dominated at 0, data at 1


def test_student_t_noise_matches_scipy():
    noise = StudentTNoise(5.0)
    z = torch.randn(10, 3, dtype=torch.float64)
    expected = scipy.stats.multivariate_t(loc=[0, 0, 0], shape=torch.eye(3).numpy(), df=5).logpdf(z.numpy())
    assert torch.allclose(noise.log_prob(z), torch.from_numpy(expected), atol=1e-10)
    draws = noise.sample((200000, 3), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    radius2 = draws.pow(2).sum(1)
    # ‖z‖²/N ~ F(N, D): E‖z‖² = N·D/(D − 2), Var = 2N·D²(N + D − 2)/((D − 2)²(D − 4)).
    mean, var = 3 * 5 / 3, 2 * 3 * 25 * 6 / (9 * 1)
    assert abs(radius2.mean() - mean) / math.sqrt(var / len(radius2)) < 4


def test_pfgm_with_large_dof_recovers_edm():
    mean = torch.tensor([0.5, -0.25], dtype=torch.float64)
    cov = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    edm = GaussianDataField(build_path("edm"), mean, cov)
    pfgm = GaussianDataField(build_path("edm"), mean, cov)
    pfgm.path = build_path("pfgm", pfgm_dof=1e9)
    settings = SamplerSettings("heun", nfe=21)
    a = draw_samples(edm, 64, (2,), settings, seed=2, dtype=torch.float64).x
    b = draw_samples(pfgm, 64, (2,), settings, seed=2, dtype=torch.float64).x
    assert torch.allclose(a, b, atol=1e-3)
    z = torch.randn(5, 2, dtype=torch.float64)
    assert torch.allclose(StudentTNoise(1e9).log_prob(z), edm.path.noise.log_prob(z), atol=1e-6)
    small = build_path("pfgm", pfgm_dof=3.0)
    heavy = small.noise.sample((50000, 2), generator=torch.Generator().manual_seed(0))
    assert heavy.abs().max() > 20   # heavy tails at small D


def test_lognormal_times_have_edm_noise_levels():
    path = build_path("edm")
    t = sample_times("lognormal", 20000, path, (0.0, 1.0), torch.Generator().manual_seed(0),
                     torch.float64)
    log_level = torch.log(path.schedule.noise_level(t))
    assert abs(log_level.mean() + 1.2) < 4 * 1.2 / math.sqrt(20000)
    assert abs(log_level.std() - 1.2) < 0.03


def test_ot_coupling_is_the_optimal_permutation():
    g = torch.Generator().manual_seed(0)
    x1, z = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    perm = ot_permutation(x1, z)
    cost = lambda p: float((x1 - z[list(p)]).pow(2).sum())
    best = min(itertools.permutations(range(6)), key=cost)
    assert cost(perm.tolist()) == pytest.approx(cost(best), abs=1e-6)


class _ToyConditional(torch.nn.Module):
    def forward(self, x, t, c=None, drop=None):
        if c is None:
            return x * 0.5
        drop = torch.zeros(len(x), dtype=torch.bool) if drop is None else drop
        shift = torch.where(drop, 0.0, c.double())
        return x * 0.5 + shift[:, None]


def test_classifier_free_guidance_combines_branches():
    path = build_path("linear")
    net = _ToyConditional()
    x = torch.randn(4, 2, dtype=torch.float64)
    c = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    w = 2.5
    guided = Field(net, path, "velocity", c, w).velocity(x, 0.3)
    cond = Field(net, path, "velocity", c, 0.0).velocity(x, 0.3)
    uncond = Field(net, path, "velocity").velocity(x, 0.3)
    assert torch.allclose(guided, (1 + w) * cond - w * uncond)


def test_clipping_keeps_denoised_estimates_in_range_and_consistent():
    path = build_path("vp")
    net = _ToyConditional()
    low, high = torch.full((2,), -1.0, dtype=torch.float64), torch.full((2,), 1.0, dtype=torch.float64)
    field = Field(net, path, "eps", clip=(low, high))
    x = 5 * torch.randn(50, 2, dtype=torch.float64)
    for t in (0.05, 0.5, 0.95):
        data, noise = field.predict(x, t)
        assert data.min() >= -1 and data.max() <= 1
        c = path.coefficients(torch.full((50,), t, dtype=torch.float64), x)
        assert torch.allclose(c.alpha * data + c.sigma * noise, x, atol=1e-10)
    unclipped, _ = Field(net, path, "eps").predict(x, 0.5)
    inside = (unclipped.abs() <= 1).all(1)
    assert torch.allclose(field.predict(x, 0.5)[0][inside], unclipped[inside])
