"""AIS and SMC: log Z against exact values (Gaussian in closed form, 4×4 Ising by enumeration).

Every comparison is |estimate − exact| < 3 standard errors with a fixed seed, and each test also
bounds the standard error itself so that "within 3 stderr" cannot pass by being vague.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from heatbath.annealing import (GaussianBase, ais, ais_from_base, ess_estimate, geometric_betas,
                                linear_betas, log_z_estimate, sigmoid_betas, smc,
                                systematic_resample)
from heatbath.mcmc import (HMC, MALA, HMCParams, IsingModel, MALAParams, MCMCMove, SpinMove,
                           heat_bath_sweep, metropolis_sweep, uniform_spins)
from heatbath.testsystems import CorrelatedGaussian

F64 = torch.float64
LOG2 = math.log(2.0)


# ----------------------------------------------------------------------------- local targets

def gaussian_target() -> CorrelatedGaussian:
    """d = 5, mean away from 0, correlated covariance with eigenvalues ≈ 0.3 … 3.4."""
    g = torch.Generator().manual_seed(11)
    a = torch.randn(5, 5, generator=g, dtype=F64)
    cov = a @ a.T / 5 + 0.3 * torch.eye(5, dtype=F64)
    mean = torch.tensor([1.0, -1.0, 0.5, 2.0, 0.0], dtype=F64)
    return CorrelatedGaussian(mean, cov, offset=3.0)


def ising_exact(beta: float, L: int = 4) -> tuple[float, np.ndarray, np.ndarray]:
    """(ln Z, all 2^(L²) configurations, their probabilities) for J = 1, h = 0, by enumeration."""
    n = L * L
    codes = np.arange(2 ** n)[:, None]
    spins = (2 * ((codes >> np.arange(n)) & 1) - 1).reshape(-1, L, L).astype(np.float64)
    bonds = (spins * np.roll(spins, -1, axis=1) + spins * np.roll(spins, -1, axis=2)).sum((1, 2))
    log_w = beta * bonds
    log_z = log_w.max() + np.log(np.exp(log_w - log_w.max()).sum())
    return float(log_z), spins, np.exp(log_w - log_z)


def assert_close(estimate, exact: float, max_stderr: float) -> None:
    assert 0 < estimate.stderr < max_stderr, estimate
    assert abs(estimate.z_score(exact)) < 3, (estimate, exact)


HMC_MOVE = MCMCMove(HMC, HMCParams(step_size=0.3, n_leapfrog=3))


# ----------------------------------------------------------------------------- schedules

@pytest.mark.parametrize("make", [lambda: linear_betas(50), lambda: sigmoid_betas(50),
                                  lambda: geometric_betas(49, 1e-3, prepend_zero=True)])
def test_schedules_run_from_zero_to_one_monotonically(make):
    betas = make()
    assert betas.shape == (51,) and betas.dtype == F64
    assert float(betas[0]) == 0.0 and float(betas[-1]) == 1.0
    assert bool((betas[1:] > betas[:-1]).all())


def test_schedule_shapes_and_errors():
    geo = geometric_betas(4, 0.01, 1.0)
    assert torch.allclose(geo[1:] / geo[:-1], torch.full((4,), 10 ** 0.5, dtype=F64))
    down = linear_betas(4, 0.44, 0.3)
    assert float(down[0]) == 0.44 and float(down[-1]) == 0.3
    with pytest.raises(ValueError):
        geometric_betas(10, 0.0, 1.0)
    with pytest.raises(ValueError):
        linear_betas(0)
    with pytest.raises(ValueError):
        sigmoid_betas(10, 0.5, 0.5)


# ----------------------------------------------------------------------------- weights

def test_weight_estimates_on_equal_and_known_weights():
    equal = torch.zeros(100, dtype=F64)
    assert log_z_estimate(equal, offset=2.0).value == pytest.approx(2.0)
    assert log_z_estimate(equal).stderr == 0.0
    assert ess_estimate(equal).value == pytest.approx(1.0)                    # a fraction
    two_values = torch.log(torch.tensor([1.0, 3.0] * 50, dtype=F64))
    assert log_z_estimate(two_values).value == pytest.approx(math.log(2.0))
    assert ess_estimate(two_values).value == pytest.approx(4 / 5)            # E[w]²/E[w²]


def test_systematic_resampling_takes_floor_or_ceil_copies():
    g = torch.Generator().manual_seed(0)
    log_w = torch.randn(3, 40, generator=g, dtype=F64) * 1.5
    ancestors = systematic_resample(log_w, g)
    expected = 40 * torch.softmax(log_w, dim=1)
    for row in range(3):
        counts = torch.bincount(ancestors[row], minlength=40).to(F64)
        assert bool(((counts >= expected[row].floor()) & (counts <= expected[row].ceil())).all())
    identity = systematic_resample(torch.zeros(2, 7, dtype=F64), g)
    assert torch.equal(identity, torch.arange(7).expand(2, 7))


# ----------------------------------------------------------------------------- AIS / SMC: Gaussian

def test_ais_gaussian_log_z_from_a_broad_base():
    target = gaussian_target()
    base = GaussianBase((5,), scale=3.0)
    g = torch.Generator().manual_seed(1)
    result = ais_from_base(target, base, 1000, linear_betas(100), HMC_MOVE, g)
    assert_close(result.log_z, target.log_z(), max_stderr=0.1)
    assert 0.1 < result.ess.value <= 1.0          # ESS as a fraction of the 1000 particles
    assert result.energy_evals == 1000 * 100 * (1 + 3)      # one path evaluation + 3 leapfrogs
    assert result.log_z.energy_evals == result.energy_evals


@pytest.mark.parametrize("threshold", [0.5, 1.0])
def test_smc_gaussian_log_z_with_adaptive_and_constant_resampling(threshold):
    """threshold = 1.0 resamples every step: log Z must still add up across epochs."""
    target = gaussian_target()
    base = GaussianBase((5,), scale=3.0)
    g = torch.Generator().manual_seed(2)
    result = smc(target, base.sample(8 * 125, g), linear_betas(100), HMC_MOVE, g, base=base,
                 ess_threshold=threshold)
    assert_close(result.log_z, target.log_z(), max_stderr=0.1)
    assert result.n_resamples > 0 and result.replica_log_z.shape == (8,)
    if threshold == 1.0:
        assert result.n_resamples >= 8 * 99                    # all but the ESS = n ties


@pytest.mark.parametrize("beta_a,beta_b", [(0.5, 2.0), (2.0, 0.5)])
def test_annealing_between_two_temperatures_gives_the_free_energy_difference(beta_a, beta_b):
    """exp(−βU) from β_a to β_b, started from exact samples at β_a: log Z(β_b) − log Z(β_a)."""
    target = gaussian_target()
    exact = target.log_z(beta_b) - target.log_z(beta_a)
    move = MCMCMove(MALA, MALAParams(step_size=0.4))
    g = torch.Generator().manual_seed(3)
    betas = linear_betas(60, beta_a, beta_b)
    result = ais(target, target.sample_at(beta_a, 1000, g), betas, move, g)
    assert_close(result.log_z, exact, max_stderr=0.1)
    result = smc(target, target.sample_at(beta_a, 1000, g), betas, move, g)
    assert_close(result.log_z, exact, max_stderr=0.1)


# ----------------------------------------------------------------------------- AIS / SMC: Ising

@pytest.mark.parametrize("sweep", [heat_bath_sweep, metropolis_sweep])
def test_ais_ising_log_z_from_infinite_temperature(sweep):
    """4×4 periodic Ising at K = 0.44, annealed from uniform spins (β = 0, ln Z = 16 ln 2)."""
    log_z, _, _ = ising_exact(0.44)
    model = IsingModel(J=1.0)
    g = torch.Generator().manual_seed(4)
    result = ais(model, uniform_spins(1000, 4, 4, g), linear_betas(150, 0.0, 0.44),
                 SpinMove(model, sweep), g, log_z_start=16 * LOG2)
    assert_close(result.log_z, log_z, max_stderr=0.03)
    assert result.energy_evals is None


def test_smc_ising_between_two_temperatures_from_exact_samples():
    """ln Z(0.44) − ln Z(0.3) from exact (enumerated) samples at β = 0.3, with forced resampling."""
    log_z_a, spins, probs = ising_exact(0.3)
    log_z_b, _, _ = ising_exact(0.44)
    g = torch.Generator().manual_seed(5)
    picks = torch.multinomial(torch.from_numpy(probs), 8 * 100, replacement=True, generator=g)
    x0 = torch.from_numpy(spins)[picks]
    model = IsingModel(J=1.0)
    result = smc(model, x0, linear_betas(60, 0.3, 0.44), SpinMove(model), g, ess_threshold=0.95)
    assert result.n_resamples > 0
    assert_close(result.log_z, log_z_b - log_z_a, max_stderr=0.03)


# ----------------------------------------------------------------------------- determinism, errors

def test_same_seed_gives_identical_log_weights():
    target = gaussian_target()
    base = GaussianBase((5,), scale=3.0)
    runs = []
    for seed in (7, 7, 8):
        g = torch.Generator().manual_seed(seed)
        a = ais_from_base(target, base, 64, linear_betas(10), HMC_MOVE, g)
        g = torch.Generator().manual_seed(seed)
        s = smc(target, base.sample(64, g), linear_betas(10), HMC_MOVE, g, base=base)
        runs.append((a.log_w, s.log_w, s.x))
    assert all(torch.equal(u, v) for u, v in zip(runs[0], runs[1]))
    assert not torch.equal(runs[0][0], runs[2][0])


def test_annealing_rejects_bad_input():
    target = gaussian_target()
    base = GaussianBase((5,), scale=3.0)
    g = torch.Generator().manual_seed(0)
    x0 = base.sample(16, g)
    with pytest.raises(ValueError, match="monotone"):
        ais(target, x0, torch.tensor([0.0, 0.5, 0.4, 1.0]), HMC_MOVE, g, base=base)
    with pytest.raises(ValueError, match="beta = 0"):
        ais_from_base(target, base, 16, linear_betas(5, 0.1, 1.0), HMC_MOVE, g)
    with pytest.raises(ValueError, match="n_replicas"):
        smc(target, x0[:15], linear_betas(5), HMC_MOVE, g, base=base)
    with pytest.raises(ValueError, match="ess_threshold"):
        smc(target, x0, linear_betas(5), HMC_MOVE, g, base=base, ess_threshold=0.0)
