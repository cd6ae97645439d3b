"""MCMC kernels, spin moves and parallel tempering against exact answers, through z-scores.

Every check runs many *independent* chains, averages each chain over its trace, and compares the
cross-chain mean with the exact value using the cross-chain standard error (valid whatever the
autocorrelation inside a chain). Seeds are fixed; |z| < 4 per quantity.
"""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
import torch

from heatbath.mcmc import (BAOAB, HMC, MALA, RWM, BAOABParams, HMCParams, IsingModel,
                           MALAParams, MCMCMove, RWMParams, SpinMove, TemperedDensity,
                           adapt_step_size, heat_bath_sweep, ising_energy, magnetisation,
                           mala_step, metropolis_sweep, parallel_tempering, run_chain,
                           uniform_spins, wolff_update)
from heatbath.mcmc.continuous import _metropolis
from heatbath.mcmc.density import flat_sum, log_prob_and_grad
from heatbath.testsystems import Bimodal1D, CorrelatedGaussian, correlated_gaussian

F64 = torch.float64


# ----------------------------------------------------------------------------- local targets

# ----------------------------------------------------------------------------- z-score helpers

def z_scores(per_chain: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """(cross-chain mean − exact) / cross-chain standard error, elementwise over trailing dims."""
    n = per_chain.shape[0]
    return (per_chain.mean(0) - exact) / (per_chain.std(0) / math.sqrt(n))


def gaussian_moment_z(trace: torch.Tensor, target: CorrelatedGaussian) -> torch.Tensor:
    """z-scores of every mean and (upper-triangular) covariance entry from a (T, N, d) trace."""
    centred = trace - target.mean
    second = torch.einsum("tni,tnj->tnij", centred, centred).mean(0)     # per chain (N, d, d)
    iu = torch.triu_indices(target.dim, target.dim)
    z_mean = z_scores(trace.mean(0), target.mean)
    z_cov = z_scores(second[:, iu[0], iu[1]], target.cov[iu[0], iu[1]])
    return torch.cat([z_mean, z_cov])


# ----------------------------------------------------------------------------- continuous kernels

KERNEL_CASES = {
    "rwm": (RWM, RWMParams(step_size=0.8)),
    "mala": (MALA, MALAParams(step_size=0.8)),
    "hmc": (HMC, HMCParams(step_size=0.3, n_leapfrog=5)),
    "baoab": (BAOAB, BAOABParams(dt=0.1, friction=1.0)),
}


@pytest.mark.parametrize("dim", [2, 5])
@pytest.mark.parametrize("name", list(KERNEL_CASES))
def test_kernel_leaves_correlated_gaussian_invariant(name, dim):
    """Chains started from exact samples stay exact: moments match through z-scores.

    BAOAB is unadjusted, but on a Gaussian its configurational marginal is exact for any stable
    dt (Leimkuhler & Matthews 2013), so its O(dt²) bias is zero here, well inside the tolerance.
    """
    kernel, params = KERNEL_CASES[name]
    target = correlated_gaussian(dim)
    g = torch.Generator().manual_seed(100 + dim)
    state = kernel.init(target, target.sample_exact(2000, g), g)
    state, trace = run_chain(kernel, target, state, g, params, n_steps=30, keep_trace=True)
    z = gaussian_moment_z(trace, target)
    assert z.abs().max() < 4, z
    if kernel.adjusted:                               # the kernel really moved the chains
        assert 0.2 < float(state.acceptance_rate.mean()) < 0.99


def test_moment_check_has_power_against_a_wrong_kernel():
    """MALA without its Metropolis–Hastings correction (plain ULA) is caught by the same check."""
    target = correlated_gaussian(5)
    g = torch.Generator().manual_seed(7)
    x = target.sample_exact(2000, g)
    h = 0.8
    trace = []
    for _ in range(30):
        _, grad = log_prob_and_grad(TemperedDensity(target), x)
        x = x + 0.5 * h * h * grad + h * torch.randn(x.shape, generator=g, dtype=F64)
        trace.append(x)
    z = gaussian_moment_z(torch.stack(trace), target)
    assert z.abs().max() > 4


def test_mala_accepts_log_prob_callables_and_per_chain_step_sizes():
    """Kernels take any log_prob(x) (autograd gradient) and one step size per chain."""
    target = correlated_gaussian(2)
    precision, mean = target.precision, target.mean

    def log_prob(x):
        d = x - mean
        return -0.5 * torch.einsum("ni,ij,nj->n", d, precision, d)

    g = torch.Generator().manual_seed(3)
    x0 = target.sample_exact(2000, g)
    steps = torch.linspace(0.3, 1.2, 2000, dtype=F64)
    state = MALA.init(log_prob, x0)
    state, trace = run_chain(MALA, log_prob, state, g, MALAParams(steps), 30, keep_trace=True)
    assert gaussian_moment_z(trace, target).abs().max() < 4
    rate = state.acceptance_rate
    assert float(rate[:500].mean()) > float(rate[-500:].mean())   # bigger steps, fewer accepts


def test_state_is_immutable_and_same_seed_gives_same_chain():
    target = correlated_gaussian(2)
    x0 = target.sample_exact(50, torch.Generator().manual_seed(0))
    state = HMC.init(target, x0)
    with pytest.raises(FrozenInstanceError):
        state.x = x0
    runs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(5)
        new, _ = run_chain(HMC, target, state, g, HMCParams(0.3, 3), 5)
        runs.append(new.x)
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(state.x, x0) and state.n_steps == 0


def test_kernels_run_in_float32():
    target = correlated_gaussian(2)
    x0 = target.sample_exact(10, torch.Generator().manual_seed(0)).float()
    target32 = CorrelatedGaussian(target.mean.float(), target.cov.float())
    g = torch.Generator().manual_seed(0)
    for kernel, params in KERNEL_CASES.values():
        state, _ = run_chain(kernel, target32, kernel.init(target32, x0, g), g, params, 3)
        assert state.x.dtype == torch.float32 and torch.isfinite(state.x).all()


def test_metropolis_rejects_nan_proposals():
    target = correlated_gaussian(2)
    state = RWM.init(target, torch.zeros(4, 2, dtype=F64))
    proposal = torch.ones(4, 2, dtype=F64)
    nan = torch.full((4,), math.nan, dtype=F64)
    new = _metropolis(state, proposal, nan, None, nan, torch.Generator().manual_seed(0))
    assert torch.equal(new.x, state.x) and int(new.n_accepted.sum()) == 0


@pytest.mark.parametrize("kernel,params,goal", [(MALA, MALAParams(0.1), 0.574),
                                                 (HMC, HMCParams(0.05, 3), 0.65),
                                                 (RWM, RWMParams(3.0), 0.3)])
def test_dual_averaging_reaches_the_target_acceptance(kernel, params, goal):
    target = correlated_gaussian(5)
    g = torch.Generator().manual_seed(9)
    state = kernel.init(target, target.sample_exact(500, g), g)
    state, tuned = adapt_step_size(kernel, target, state, g, params, n_steps=150)
    state, _ = run_chain(kernel, target, kernel.init(target, state.x), g, tuned, 40)
    assert abs(float(state.acceptance_rate.mean()) - goal) < 0.08


def test_adaptation_refuses_unadjusted_kernels():
    target = correlated_gaussian(2)
    g = torch.Generator().manual_seed(0)
    state = BAOAB.init(target, torch.zeros(3, 2, dtype=F64), g)
    with pytest.raises(ValueError):
        adapt_step_size(BAOAB, target, state, g, BAOABParams(0.1), 10)


def test_target_counters_see_kernel_work():
    target = correlated_gaussian(2)
    g = torch.Generator().manual_seed(0)
    state = MALA.init(target, torch.zeros(10, 2, dtype=F64))
    target.reset_counters()
    mala_step(target, state, g, MALAParams(0.5))
    assert target.energy_evals == 10 and target.force_evals == 10


# ----------------------------------------------------------------------------- Ising spins

def enumerate_ising(L: int, M: int, beta: float, J: float = 1.0, h: float = 0.0) -> dict:
    """Exact ln Z, ⟨H⟩, ⟨m⟩, ⟨|m|⟩, ⟨m²⟩ by summing over all 2^(LM) states (numpy, float64)."""
    n = L * M
    codes = np.arange(2 ** n)[:, None]
    spins = (2 * ((codes >> np.arange(n)) & 1) - 1).reshape(-1, L, M).astype(np.float64)
    bonds = spins * np.roll(spins, -1, axis=1) + spins * np.roll(spins, -1, axis=2)
    energy = -J * bonds.sum(axis=(1, 2)) - h * spins.sum(axis=(1, 2))
    log_w = -beta * energy
    log_z = log_w.max() + np.log(np.exp(log_w - log_w.max()).sum())
    p = np.exp(log_w - log_z)
    m = spins.mean(axis=(1, 2))
    return {"log_z": float(log_z), "energy": float(p @ energy), "m": float(p @ m),
            "abs_m": float(p @ np.abs(m)), "m2": float(p @ m ** 2)}


def test_enumeration_matches_kaufman_reference():
    """The brute-force helper reproduces the 4×4 ln Z at K_c from REFERENCES.md."""
    assert abs(enumerate_ising(4, 4, 0.4406867935)["log_z"] - 15.52191546) < 1e-7


def run_spin_chains(sweep, beta, h, n_chains, n_burn, n_measure, seed):
    """Per-chain averages of H, m, |m|, m² after burn-in, from a cold-and-hot mixed start."""
    g = torch.Generator().manual_seed(seed)
    spins = uniform_spins(n_chains, 4, 4, g)
    for _ in range(n_burn):
        spins = sweep(spins, beta, 1.0, h, g)
    sums = torch.zeros(4, n_chains, dtype=F64)
    for _ in range(n_measure):
        spins = sweep(spins, beta, 1.0, h, g)
        m = magnetisation(spins)
        sums += torch.stack([ising_energy(spins, 1.0, h), m, m.abs(), m * m])
    return sums / n_measure


SWEEPS = {"metropolis": metropolis_sweep, "heat_bath": heat_bath_sweep, "wolff": wolff_update}


@pytest.mark.parametrize("beta", [0.3, 0.44])
@pytest.mark.parametrize("name", list(SWEEPS))
def test_spin_moves_match_enumeration(name, beta):
    exact = enumerate_ising(4, 4, beta)
    per_chain = run_spin_chains(SWEEPS[name], beta, 0.0, n_chains=1000, n_burn=50,
                                n_measure=100, seed=21)
    truth = torch.tensor([exact["energy"], exact["abs_m"], exact["m2"]], dtype=F64)
    z = z_scores(per_chain[[0, 2, 3]].T, truth)
    assert z.abs().max() < 4, z


@pytest.mark.parametrize("name", ["metropolis", "heat_bath"])
def test_local_sweeps_in_a_field_match_enumeration(name):
    beta, h = 0.3, 0.2
    exact = enumerate_ising(4, 4, beta, h=h)
    per_chain = run_spin_chains(SWEEPS[name], beta, h, n_chains=1000, n_burn=50,
                                n_measure=60, seed=22)
    truth = torch.tensor([exact["energy"], exact["m"], exact["m2"]], dtype=F64)
    assert z_scores(per_chain[[0, 1, 3]].T, truth).abs().max() < 4


def test_spin_moves_take_one_beta_per_chain_and_do_not_mutate_input():
    g = torch.Generator().manual_seed(0)
    spins = uniform_spins(6, 4, 4, g)
    before = spins.clone()
    betas = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4, 10.0], dtype=F64)
    for sweep in SWEEPS.values():
        out = sweep(spins, betas, 1.0, 0.0, g)
        assert out.shape == spins.shape and set(out.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(spins, before)


def test_spin_moves_reject_invalid_input():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="h = 0"):
        wolff_update(uniform_spins(2, 4, 4, g), 0.4, 1.0, 0.1, g)
    with pytest.raises(ValueError, match="at least 2"):
        heat_bath_sweep(uniform_spins(2, 1, 4, g), 0.4, 1.0, 0.0, g)
    with pytest.raises(ValueError, match="beta"):
        metropolis_sweep(uniform_spins(2, 4, 4, g), torch.ones(3, dtype=F64), 1.0, 0.0, g)


# ----------------------------------------------------------------------------- tempering

def bimodal_pt(base, betas, seed):
    target = Bimodal1D()
    n_systems, K = 400, betas.shape[0]
    # Every replica starts in the *left* mode: the right mode's 70 % must come from swaps.
    x0 = torch.full((K, n_systems, 1), -target.a, dtype=F64)
    scale = 4.0 if base is not None else 1.0          # widest rung: base std, or σ/√β_min
    steps = torch.minimum(1.5 * target.sigma / betas.sqrt(), torch.tensor(scale, dtype=F64))
    move = MCMCMove(RWM, RWMParams(steps.repeat_interleave(n_systems)), n_steps=2)
    g = torch.Generator().manual_seed(seed)
    result = parallel_tempering(target, x0, betas, move, g, n_rounds=400, burn_in=100, base=base)
    return target, result


class NormalBase:
    def __init__(self, scale: float) -> None:
        self.scale = scale

    def sample(self, n, generator):
        return self.scale * torch.randn(n, 1, generator=generator, dtype=F64)

    def log_prob(self, x):
        log_norm = math.log(self.scale * math.sqrt(2 * math.pi))
        return flat_sum(-0.5 * (x / self.scale) ** 2) - log_norm


@pytest.mark.parametrize("with_base", [False, True])
def test_parallel_tempering_recovers_mixture_weights(with_base):
    if with_base:
        base = NormalBase(4.0)
        betas = torch.tensor([0.0, 0.05, 0.15, 0.3, 0.5, 0.75, 1.0], dtype=F64)
    else:
        base, betas = None, torch.logspace(math.log10(0.05), 0, 7, dtype=F64)
    target, result = bimodal_pt(base, betas, seed=31)
    x = result.samples[..., 0]                         # (n_kept, N)
    per_system = torch.stack([(x > 0).to(F64).mean(0), x.mean(0), (x * x).mean(0)], dim=1)
    a, s, w = target.a, target.sigma, target.w_right
    truth = torch.tensor([target.exact_p_right(), (2 * w - 1) * a, a * a + s * s], dtype=F64)
    assert z_scores(per_system, truth).abs().max() < 4
    assert bool(((result.swap_acceptance > 0.1) & (result.swap_acceptance < 1)).all())
    assert result.energy_evals > 0


def test_without_swaps_the_mixture_check_fails():
    """Control for the PT test: RWM at β = 1 alone never leaves the left mode."""
    target = Bimodal1D()
    g = torch.Generator().manual_seed(31)
    state = RWM.init(target, torch.full((400, 1), -target.a, dtype=F64))
    _, trace = run_chain(RWM, target, state, g, RWMParams(0.75), 300, keep_trace=True)
    assert float((trace > 0).to(F64).mean()) < 0.05


def test_parallel_tempering_with_spin_moves_matches_enumeration():
    model = IsingModel(J=1.0)
    betas = torch.tensor([0.2, 0.3, 0.37, 0.44], dtype=F64)
    g = torch.Generator().manual_seed(41)
    x0 = uniform_spins(4 * 500, 4, 4, g).reshape(4, 500, 4, 4)
    result = parallel_tempering(model, x0, betas, SpinMove(model), g, n_rounds=200, burn_in=50)
    energy = ising_energy(result.samples.reshape(-1, 4, 4)).reshape(result.samples.shape[:2])
    z = z_scores(energy.mean(0), torch.tensor(enumerate_ising(4, 4, 0.44)["energy"], dtype=F64))
    assert abs(float(z)) < 4
    assert result.energy_evals is None


def test_parallel_tempering_rejects_bad_ladders():
    target = Bimodal1D()
    g = torch.Generator().manual_seed(0)
    move = MCMCMove(RWM, RWMParams(0.5))
    x0 = torch.zeros(3, 4, 1, dtype=F64)
    with pytest.raises(ValueError, match="increasing"):
        parallel_tempering(target, x0, torch.tensor([1.0, 0.5, 0.2]), move, g, 10)
    with pytest.raises(ValueError, match="x0"):
        parallel_tempering(target, x0, torch.tensor([0.2, 1.0]), move, g, 10)
    with pytest.raises(ValueError, match="SpinMove"):
        model = IsingModel()
        SpinMove(model)(TemperedDensity(IsingModel(J=2.0), 0.3), uniform_spins(2, 4, 4, g), g)
