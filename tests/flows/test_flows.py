"""Flows and stochastic normalizing flows, checked against exact answers.

Contract tests run over every variant: exact densities (log_prob vs. sample_and_log_prob,
round trips, normalisation by quadrature) for plain flows, and for every path sampler (Flow and
SNF with each kernel) reproducibility and E[w] = Z. Training tests compare importance-sampling
log Z with the exact value through z-scores (delta-method standard errors).
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy.integrate import quad

from heatbath.estimators.importance import self_normalized, weight_tail_diagnostic
from heatbath.flows import SNF, Flow, importance_sample, train_flow
from heatbath.flows.spline import make_knots, spline_forward, spline_inverse
from heatbath.targets.analytic import Gaussian
from heatbath.targets.base import EnergyTarget
from heatbath.targets.benchmarks import ManyWell
from heatbath.targets.lattice import Phi4
from heatbath.testsystems import four_modes, randomise_heads, tilted_gaussian

Z_MAX = 3.0


# -- variants ------------------------------------------------------------------------------------
DENSITY_VARIANTS = {
    "flow-1d": lambda: Flow(1, layers=3, hidden=16),
    "flow-2d": lambda: Flow(2, layers=4, hidden=16, loc=[0.5, -0.5], scale=[1.5, 0.8]),
    "flow-lattice": lambda: Flow(4, layers=4, hidden=16, event_shape=(2, 2), base_scale=1.3),
}
PATH_VARIANTS = {
    "flow": lambda: Flow(2, layers=4, hidden=16, scale=2.0),
    "snf-langevin": lambda: SNF(2, n_blocks=2, layers_per_block=2, hidden=16, scale=2.0,
                                kernel="langevin", mcmc_steps=2, step_size=0.05),
    "snf-mala": lambda: SNF(2, n_blocks=2, layers_per_block=2, hidden=16, scale=2.0,
                            kernel="mala", mcmc_steps=2, step_size=0.1),
    "snf-no-mcmc": lambda: SNF(2, n_blocks=2, layers_per_block=2, hidden=16, scale=2.0,
                               mcmc_steps=0),
}


def density_flow(name: str, std: float = 0.5) -> Flow:
    flow = DENSITY_VARIANTS[name]().double()
    randomise_heads(flow, seed=1, std=std)
    return flow


# -- the spline itself ---------------------------------------------------------------------------
def test_spline_inverse_and_log_slope_are_exact():
    gen = torch.Generator().manual_seed(0)
    raw = [torch.randn(7, s, generator=gen, dtype=torch.float64) for s in (8, 8, 7)]
    knots = make_knots(*raw, bound=3.0)
    x = torch.linspace(-4.0, 4.0, 7, dtype=torch.float64).requires_grad_(True)
    y, log_det = spline_forward(x, knots, 3.0)
    (slope,) = torch.autograd.grad(y.sum(), x)
    back, log_det_inverse = spline_inverse(y.detach(), knots, 3.0)
    assert torch.allclose(back, x.detach(), atol=1e-12)
    assert torch.allclose(log_det, slope.log(), atol=1e-12)
    assert torch.allclose(log_det + log_det_inverse, torch.zeros(7, dtype=torch.float64),
                          atol=1e-12)
    # Outside [−B, B] the spline is the identity.
    assert y[0].item() == -4.0 and y[-1].item() == 4.0


# -- density contract (every plain-flow variant) -------------------------------------------------
@pytest.mark.parametrize("name", DENSITY_VARIANTS)
def test_log_prob_matches_sample_and_log_prob(name):
    flow = density_flow(name)
    x, log_q = flow.sample_and_log_prob(500, torch.Generator().manual_seed(3))
    assert x.shape == (500, *flow.event_shape)
    assert torch.allclose(flow.log_prob(x), log_q, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", DENSITY_VARIANTS)
def test_round_trip_x_to_z_to_x(name):
    flow = density_flow(name)
    x = flow.sample(500, torch.Generator().manual_seed(4))
    z, log_det_inverse = flow.inverse(flow.flatten(x))
    x_back, log_det = flow.transform(z)
    assert torch.allclose(flow.unflatten(x_back), x, atol=1e-6)
    assert torch.allclose(log_det + log_det_inverse, torch.zeros(500, dtype=torch.float64),
                          atol=1e-6)


@pytest.mark.parametrize("name", DENSITY_VARIANTS)
def test_same_seed_same_samples(name):
    first = density_flow(name).sample(64, torch.Generator().manual_seed(5))
    second = density_flow(name).sample(64, torch.Generator().manual_seed(5))
    other = density_flow(name).sample(64, torch.Generator().manual_seed(6))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("name", ["flow-1d", "flow-2d"])
def test_density_integrates_to_one(name):
    # Milder random splines than elsewhere: a 481² grid must resolve their narrowest bins.
    flow = density_flow(name, std=0.3)
    cells = 24001 if flow.dim == 1 else 481
    axis = torch.linspace(-12.0, 12.0, cells, dtype=torch.float64)
    grid = torch.cartesian_prod(*[axis] * flow.dim).reshape(-1, flow.dim)
    with torch.no_grad():
        density = torch.cat([flow.log_prob(chunk).exp() for chunk in grid.split(65536)])
    assert density.max() > 0.5   # a peaked, non-Gaussian density, not a flat one
    total = density.sum().item() * (axis[1] - axis[0]).item() ** flow.dim
    assert abs(total - 1.0) < 1e-3


# -- path-weight contract (Flow and every SNF) ---------------------------------------------------
@pytest.mark.parametrize("name", PATH_VARIANTS)
def test_same_seed_same_weighted_samples(name):
    target = tilted_gaussian()
    first = PATH_VARIANTS[name]().sample_with_log_weights(64, torch.Generator().manual_seed(7),
                                                          target)
    second = PATH_VARIANTS[name]().sample_with_log_weights(64, torch.Generator().manual_seed(7),
                                                           target)
    assert first[0].shape == (64, 2) and first[1].shape == (64,)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert bool(torch.isfinite(first[1]).all())


@pytest.mark.parametrize("name", PATH_VARIANTS)
def test_untrained_weights_are_unbiased(name):
    """E[w] = Z for any parameters: a random (untrained) model still gives the exact log Z."""
    model = PATH_VARIANTS[name]()
    randomise_heads(model, seed=2, std=0.1)
    target = tilted_gaussian()
    samples = importance_sample(model, target, 40_000, torch.Generator().manual_seed(8))
    # The delta-method stderr is only trustworthy for light-tailed weights: check that first.
    assert weight_tail_diagnostic(samples.log_w).reliable
    estimate = samples.log_z()
    assert abs(estimate.z_score(target.exact.log_z)) < Z_MAX, estimate


@pytest.mark.parametrize("name", PATH_VARIANTS)
def test_weights_are_differentiable(name):
    model = PATH_VARIANTS[name]()
    batch = model.weighted_sample(32, torch.Generator().manual_seed(9), tilted_gaussian())
    batch.log_w.mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_flow_log_weight_is_minus_energy_minus_log_q():
    flow = density_flow("flow-2d")
    target = tilted_gaussian()
    x, log_w = flow.sample_with_log_weights(100, torch.Generator().manual_seed(10), target)
    expected = -target.energy(x) - flow.log_prob(x)
    assert torch.allclose(log_w, expected, atol=1e-8)


def test_mala_snf_on_its_own_base_has_constant_weight_log_z():
    """Target = p₀·Z and identity couplings: the MALA increments telescope, log w ≡ log Z."""
    snf = SNF(2, n_blocks=3, layers_per_block=2, hidden=8, loc=[1.0, -2.0], scale=1.5,
              kernel="mala", mcmc_steps=3, step_size=0.5).double()
    target = Gaussian(dim=2, mean=[1.0, -2.0], std=1.5)
    x, log_w = snf.sample_with_log_weights(200, torch.Generator().manual_seed(11), target)
    assert torch.allclose(log_w, torch.full_like(log_w, target.exact.log_z), atol=1e-10)
    assert target.energy_evals == 200 * 3 * 4   # per block: 1 evaluation + 3 proposals


# -- training ------------------------------------------------------------------------------------
def _check_log_z(model, target, n: int, seed: int, min_ess: float):
    samples = importance_sample(model, target, n, torch.Generator().manual_seed(seed))
    estimate, ess = samples.log_z(), samples.ess()
    assert abs(estimate.z_score(target.exact.log_z)) < Z_MAX, (estimate, ess)
    assert ess.value > min_ess, ess
    return samples


def test_reverse_kl_flow_on_tilted_gaussian():
    target = tilted_gaussian()
    flow = Flow(2, layers=4, hidden=32, scale=2.0)
    log = train_flow(flow, target, steps=300, batch_size=256, lr=3e-3,
                     generator=torch.Generator().manual_seed(0), log_every=100)
    assert log.steps == (100, 200, 300) and log.skipped_steps == 0
    assert log.energy_evals == 300 * 256
    _check_log_z(flow, target, 10_000, seed=1, min_ess=0.9)


def test_reverse_kl_flow_on_four_mode_mixture():
    target = four_modes(a=2.0, std=0.5)
    flow = Flow(2, layers=4, hidden=32, scale=2.5)
    train_flow(flow, target, steps=300, batch_size=256, lr=3e-3,
               generator=torch.Generator().manual_seed(0), log_every=100)
    _check_log_z(flow, target, 10_000, seed=1, min_ess=0.5)


def test_forward_kl_from_exact_samples_covers_separated_modes():
    target = four_modes(a=3.0, std=0.5)
    generator = torch.Generator().manual_seed(0)
    data = target.sample_exact(20_000, generator)
    flow = Flow(2, layers=4, hidden=32, scale=3.5)
    log = train_flow(flow, target, steps=300, batch_size=256, lr=3e-3, objective="forward_kl",
                     samples=data, generator=generator, log_every=100)
    assert all(math.isfinite(e) for e in log.ess)
    _check_log_z(flow, target, 10_000, seed=1, min_ess=0.6)


def test_reverse_kl_flow_on_lattice_event_shape():
    target = Phi4(L=3, m2=1.0, lam=0.0)            # a 3×3 free field: exact log Z
    flow = Flow(9, layers=4, hidden=32, scale=1.0, event_shape=(3, 3))
    train_flow(flow, target, steps=200, batch_size=256, lr=3e-3,
               generator=torch.Generator().manual_seed(0), log_every=100)
    samples = _check_log_z(flow, target, 10_000, seed=1, min_ess=0.5)
    assert samples.x.shape == (10_000, 3, 3)


@pytest.mark.parametrize("kernel", ["langevin", "mala"])
def test_snf_on_tilted_gaussian(kernel):
    target = tilted_gaussian()
    snf = SNF(2, n_blocks=2, layers_per_block=2, hidden=32, scale=2.0, kernel=kernel,
              mcmc_steps=1, step_size=0.1)
    train_flow(snf, target, steps=200, batch_size=256, lr=3e-3,
               generator=torch.Generator().manual_seed(0), log_every=100)
    _check_log_z(snf, target, 10_000, seed=1, min_ess=0.9)


def _well_mass_right() -> float:
    """Exact P(x₁ > 0) of the 2-D ManyWell: ∫₀^∞ e^{−E(a)} da / ∫ e^{−E(a)} da."""
    weight = lambda a: math.exp(-(a ** 4 - 6 * a ** 2 - 0.5 * a))   # noqa: E731
    right = quad(weight, 0.0, math.inf)[0]
    return right / (right + quad(weight, -math.inf, 0.0)[0])


def test_mala_snf_on_double_well_gets_both_modes():
    """Barrier ≈ 9 kT: the SNF must weigh both wells correctly, not only find log Z.

    (The same couplings without MCMC blocks collapsed onto one well for 3 of 5 seeds in our
    runs — log Z off by tens of standard errors — while this SNF was right for all 5.)
    """
    target = ManyWell(dim=2)
    snf = SNF(2, n_blocks=2, layers_per_block=2, hidden=32, scale=1.5, kernel="mala",
              mcmc_steps=2, step_size=0.05)
    train_flow(snf, target, steps=300, batch_size=256, lr=3e-3,
               generator=torch.Generator().manual_seed(0), log_every=100)
    samples = _check_log_z(snf, target, 10_000, seed=1, min_ess=0.3)
    right = self_normalized((samples.x[:, 0] > 0).double(), samples.log_w)
    assert abs(right.z_score(_well_mass_right())) < Z_MAX, right


# -- guards --------------------------------------------------------------------------------------
class NaNEnergy(EnergyTarget):
    def __init__(self) -> None:
        super().__init__((2,))

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1) * math.nan


def test_non_finite_losses_are_skipped_then_fail_clearly():
    flow = Flow(2, layers=2, hidden=8)
    with pytest.raises(RuntimeError, match="non-finite"):
        train_flow(flow, NaNEnergy(), steps=50, batch_size=8,
                   generator=torch.Generator().manual_seed(0), max_nonfinite=5)
    before = [p.detach().clone() for p in flow.parameters()]
    log = train_flow(flow, NaNEnergy(), steps=3, batch_size=8,
                     generator=torch.Generator().manual_seed(0), log_every=1)
    assert log.skipped_steps == 3 and all(math.isnan(v) for v in log.losses)
    assert all(torch.equal(a, b) for a, b in zip(before, flow.parameters()))


def test_objective_errors_are_clear():
    from heatbath.core.errors import UserError

    gen = torch.Generator().manual_seed(0)
    with pytest.raises(UserError, match="unknown objective"):
        train_flow(Flow(2), tilted_gaussian(), steps=1, objective="kl", generator=gen)
    with pytest.raises(UserError, match="needs target samples"):
        train_flow(Flow(2), tilted_gaussian(), steps=1, objective="forward_kl", generator=gen)
    with pytest.raises(UserError, match="tractable log q"):
        train_flow(SNF(2), tilted_gaussian(), steps=1, objective="both",
                   samples=torch.zeros(4, 2), generator=gen)


def test_flow_importance_samples_do_not_depend_on_batching():
    flow = Flow(2, layers=2, hidden=8).double()
    target = Gaussian(dim=2)
    big = importance_sample(flow, target, 50, torch.Generator().manual_seed(3), batch_size=7)
    small = importance_sample(flow, target, 10, torch.Generator().manual_seed(3), batch_size=1000)
    assert torch.allclose(big.x[:10], small.x) and torch.allclose(big.log_w[:10], small.log_w)
    np_log_q = flow.log_prob(small.x)
    assert torch.allclose(np_log_q, small.log_q, atol=1e-8)


@pytest.mark.parametrize("kernel", ["langevin", "mala"])
def test_snf_importance_samples_do_not_depend_on_batching(kernel):
    snf = SNF(2, n_blocks=2, layers_per_block=1, hidden=8, kernel=kernel, mcmc_steps=2).double()
    target = Gaussian(dim=2)
    big = importance_sample(snf, target, 30, torch.Generator().manual_seed(3), batch_size=7)
    small = importance_sample(snf, target, 10, torch.Generator().manual_seed(3), batch_size=1000)
    assert torch.equal(big.x[:10], small.x) and torch.equal(big.log_w[:10], small.log_w)
    other = importance_sample(snf, target, 10, torch.Generator().manual_seed(4))
    assert not torch.equal(other.x, small.x)
