"""Data-dependent couplings against exact answers: the projections, the corruptions, and the
whole restoration pipeline (CoupledField, projected noise, samplers, likelihood) driven by the
exact denoiser of Gaussian data, whose conditional law given the observation is known."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from heatbath.generative.corruptions import (Inpainting, Paired, SuperResolution, downsample,
                                             psnr, upsample)
from heatbath.generative.field import CoupledField
from heatbath.paths import build_path
from heatbath.samplers import SamplerSettings, draw_samples
from heatbath.samplers.likelihood import log_likelihood



@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons in double precision, restored afterwards for the other tests."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _random_images(n, shape=(1, 8, 8), seed=0):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


def _projection_matrix(obs, dim):
    basis = torch.eye(dim).reshape(dim, *obs.base.shape[1:])
    rows = [obs.rows([0] * dim).project(basis)]
    return rows[0].reshape(dim, dim)


@pytest.mark.parametrize("corruption", [Inpainting("center", torch.zeros(1, 8, 8)),
                                        Inpainting("random", torch.zeros(1, 8, 8)),
                                        SuperResolution(2), SuperResolution(4)],
                         ids=["center", "random", "superres2", "superres4"])
def test_projection_is_orthogonal_with_rank_dims(corruption):
    obs = corruption.observe(_random_images(3), torch.Generator().manual_seed(1))
    matrix = _projection_matrix(obs.rows([0]), 64)
    assert torch.allclose(matrix @ matrix, matrix, atol=1e-12)
    assert torch.allclose(matrix, matrix.T, atol=1e-12)
    assert int(torch.linalg.matrix_rank(matrix)) == int(obs.dims()[0])


def test_inpainting_keeps_known_pixels_and_fills_the_hole_with_the_mean():
    fill = torch.full((1, 8, 8), 0.25)
    x = _random_images(4)
    obs = Inpainting("center", fill).observe(x, None)
    hole = obs.missing.bool()
    assert int(hole[0].sum()) == 16 and hole[0, 0, 2:6, 2:6].all()
    assert torch.equal(obs.base[~hole], x[~hole])
    assert torch.all(obs.base[hole] == 0.25)
    half = Inpainting("half", fill).observe(x, None)
    assert half.missing[0, 0, 4:].all() and not half.missing[0, 0, :4].any()


def test_random_holes_depend_only_on_the_seed_and_have_the_stated_sizes():
    corruption = Inpainting("random", torch.zeros(1, 8, 8))
    first = corruption.observe(_random_images(50), torch.Generator().manual_seed(3))
    again = corruption.observe(_random_images(50), torch.Generator().manual_seed(3))
    assert torch.equal(first.missing, again.missing)
    rows = first.missing[:, 0].any(2).sum(1)
    cols = first.missing[:, 0].any(1).sum(1)
    assert rows.min() >= 2 and rows.max() <= 4 and cols.min() >= 2 and cols.max() <= 4
    assert len(set(map(tuple, first.missing.flatten(1).tolist()))) > 10


def test_superresolution_base_has_the_observed_block_means():
    x = _random_images(5)
    obs = SuperResolution(4).observe(x, None)
    assert torch.allclose(downsample(obs.base, 4), downsample(x, 4), atol=1e-12)
    assert torch.allclose(obs.base, upsample(downsample(x, 4), 4))
    residual = obs.project(x - obs.base)
    assert torch.allclose(residual, x - obs.base, atol=1e-12)   # already on the subspace


def test_paired_base_is_the_source():
    x, x0 = _random_images(3), _random_images(3, seed=9)
    obs = Paired().observe(x, None, x0)
    assert torch.equal(obs.base, x0) and torch.all(obs.missing == 1)
    assert torch.equal(obs.project(x), x)


def test_psnr_of_a_known_error():
    truth = torch.zeros(2, 1, 4, 4)
    restored = torch.full((2, 1, 4, 4), 0.1)
    assert torch.allclose(psnr(restored, truth, 2.0), torch.full((2,), 10 * math.log10(400.0)))


class ExactResidualNet(nn.Module):
    """The exact velocity α'·E[y₁ | y_t] + σ'·E[z | y_t] for a residual y₁ ~ N(m, s²P) on the
    unknown subspace (regular at both ends of the linear path, so the ODE runs on all of
    [0, 1]); m is read from the context's missing map (in-painting) or given (super-res)."""

    def __init__(self, path, s2: float, channels: int, mean_of) -> None:
        super().__init__()
        self.path, self.s2, self.channels, self.mean_of = path, s2, channels, mean_of

    def forward(self, x, t, c=None, drop=None, context=None):
        coeff = self.path.coefficients(t, x)
        y = x / self.path.input_scale(coeff)
        m = self.mean_of(context[:, self.channels:])
        var = coeff.alpha ** 2 * self.s2 + coeff.sigma ** 2
        data = m + coeff.alpha * self.s2 / var * (y - coeff.alpha * m)
        noise = coeff.sigma / var * (y - coeff.alpha * m)
        return coeff.d_alpha * data + coeff.d_sigma * noise


def _case(kind):
    """(observation of 400 points, residual mean m (per point), s², network)."""
    gen = torch.Generator().manual_seed(5)
    if kind == "inpaint":
        mu, fill = torch.tensor([0.5, -0.3, 1.0, 2.0]), torch.tensor([0.1, 0.1, -0.2, 0.4])
        x = torch.randn(400, 4, generator=gen)
        obs = Inpainting("half", fill).observe(x, None)
        mean_of = lambda missing: (mu - fill) * missing          # noqa: E731
        channels = 4
    else:
        mu = torch.randn(1, 4, 4, generator=gen)
        x = torch.randn(400, 1, 4, 4, generator=gen)
        obs = SuperResolution(2).observe(x, None)
        projected = obs.project(mu.expand_as(x))
        mean_of = lambda missing: projected[:len(missing)]       # noqa: E731
        channels = 1
    s2 = 0.49
    path = build_path("linear", sigma_data=0.7)
    net = ExactResidualNet(path, s2, channels, mean_of)
    return obs, mean_of(obs.missing), s2, CoupledField(net, path, "velocity", obs,
                                                       obs.context(-3.0, 3.0))


@pytest.mark.parametrize("kind", ["inpaint", "superres"])
def test_restorations_follow_the_exact_conditional_law(kind):
    obs, m, s2, field = _case(kind)
    settings = SamplerSettings("heun", nfe=99)
    y = draw_samples(field, len(obs), obs.base.shape[1:], settings, seed=2,
                     dtype=torch.float64).x
    restored = obs.base + obs.project(y)
    residual = restored - obs.base - m                        # ~ N(0, s²P) exactly
    assert torch.allclose(obs.project(residual), residual, atol=1e-12)   # on the subspace
    # Known pixels / block means are kept exactly.
    if kind == "inpaint":
        assert torch.equal(restored[:, :2], obs.base[:, :2])
    else:
        assert torch.allclose(downsample(restored, 2), downsample(obs.base, 2), atol=1e-12)
    flat = residual.flatten(1)
    n, dims = len(flat), obs.dims()[0]
    # Σ residual²/s² over the subspace is χ²(dims) per point: mean dims, sd √(2·dims/n).
    chi2 = (flat ** 2).sum(1) / s2
    assert abs(float(chi2.mean()) - dims) < 4 * math.sqrt(2 * dims / n)
    z_means = flat.mean(0) / math.sqrt(s2 / n)
    assert float(z_means.abs().max()) < 4.0


@pytest.mark.parametrize("kind", ["inpaint", "superres"])
def test_conditional_log_likelihood_is_exact_on_the_unknown_subspace(kind):
    obs, m, s2, field = _case(kind)
    part = obs.rows(slice(0, 8))
    gen = torch.Generator().manual_seed(4)
    y = part.project(m[:8] + math.sqrt(s2) * torch.randn(part.base.shape, generator=gen))
    found = log_likelihood(CoupledField(field.net, build_path("linear", sigma_data=0.7),
                                           "velocity", part, part.context(-3.0, 3.0)),
                           y, method="exact", rtol=1e-9, atol=1e-9)
    dims = part.dims()
    exact = -0.5 * ((y - m[:8]) ** 2).flatten(1).sum(1) / s2 - 0.5 * dims * math.log(
        2 * math.pi * s2)
    assert torch.allclose(found.log_q, exact, atol=1e-6)
