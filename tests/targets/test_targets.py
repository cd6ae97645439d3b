"""Energy targets: exact answers, the shared contract, and float64 / autograd safety."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize

from heatbath.core.errors import UserError
from heatbath.targets.analytic import Gaussian, Harmonic
from heatbath.targets.benchmarks import (DW4, GMM40, GMM_STD, ManyWell, fab_gmm_means,
                                         well_integrals)
from heatbath.targets.lattice import Phi4, free_field_log_z
from heatbath.targets.particles import LennardJones, lj_pair_energy
from heatbath.targets.registry import build_target


def _z_score(values: torch.Tensor, truth: float, variance: float) -> float:
    return (values.double().mean().item() - truth) / math.sqrt(variance / values.numel())


# ---------------------------------------------------------------- Gaussian / harmonic


def test_gaussian_log_z_by_quadrature_1d():
    target = Gaussian(dim=1, mean=0.5, std=2.0)
    density = lambda x: math.exp(-target.energy(torch.tensor([[x]], dtype=torch.float64)).item())
    z, _ = integrate.quad(density, -40, 40, points=(0.5,), epsabs=0, epsrel=1e-12)
    assert target.exact.log_z == pytest.approx(math.log(z), abs=1e-10)


def test_gaussian_full_covariance_log_z_by_2d_quadrature():
    cov = [[2.0, 0.6], [0.6, 1.0]]
    target = Gaussian(dim=2, mean=[1.0, -1.0], cov=cov)
    step = 0.04
    grid = torch.arange(-16, 16 + step / 2, step, dtype=torch.float64)
    a, b = torch.meshgrid(grid + 1.0, grid - 1.0, indexing="ij")
    energy = target.energy(torch.stack([a.reshape(-1), b.reshape(-1)], 1))
    # The trapezoid rule on a wide grid is spectrally accurate for a Gaussian.
    log_z = torch.logsumexp(-energy, 0).item() + 2 * math.log(step)
    assert target.exact.log_z == pytest.approx(log_z, abs=1e-10)
    reference = torch.distributions.MultivariateNormal(
        torch.tensor([1.0, -1.0], dtype=torch.float64), torch.tensor(cov, dtype=torch.float64))
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(-target.energy(x) - target.exact.log_z, reference.log_prob(x))


def test_gaussian_exact_samples_moments():
    target = Gaussian(dim=3, mean=[1.0, 2.0, -3.0], std=0.5)
    x = target.sample_exact(40000, torch.Generator().manual_seed(1)).double()
    for axis, mean in enumerate([1.0, 2.0, -3.0]):
        assert abs(_z_score(x[:, axis], mean, 0.25)) < 4
    # U = χ²_3 / 2 has mean and variance d/2.
    assert abs(_z_score(target.energy(x), target.exact.energy_mean, 1.5)) < 4
    assert target.exact.heat_capacity == 1.5


def test_harmonic_is_a_gaussian_with_variance_one_over_beta_k():
    spring = Harmonic(dim=3, k=2.0, T=4.0)
    assert spring.exact.log_z == pytest.approx(1.5 * math.log(2 * math.pi * 4.0 / 2.0))
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    assert spring.energy(x).item() == pytest.approx(0.5 * 2.0 / 4.0 * 14.0)
    assert spring.params == {"dim": 3, "k": 2.0, "beta": 0.25}


@pytest.mark.parametrize("kwargs,message", [
    ({"std": 0.0}, "std must be > 0"), ({"std": -1.0}, "std must be > 0"),
    ({"dim": 0}, "dim must be >= 1"), ({"mean": [1.0, 2.0, 3.0]}, "mean must have 2"),
    ({"cov": [[1.0, 2.0], [2.0, 1.0]]}, "positive definite"),
    ({"cov": [[1.0, 0.1], [0.0, 1.0]]}, "symmetric"), ({"std": 1.0, "cov": [[1.0]]}, "not both"),
])
def test_gaussian_rejects_bad_parameters(kwargs, message):
    with pytest.raises(UserError, match=message):
        Gaussian(**kwargs)


# ---------------------------------------------------------------- GMM-40


def test_gmm40_means_follow_the_manual_seed_convention():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        uniform = torch.rand(40, 2)
    assert torch.allclose(fab_gmm_means(), 40.0 * (2.0 * uniform.double() - 1.0), atol=0)
    assert GMM_STD == pytest.approx(torch.nn.functional.softplus(torch.tensor(1.0)).item())


def test_gmm40_energy_is_minus_log_density_of_the_mixture():
    target = GMM40()
    means = fab_gmm_means()
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(40, dtype=torch.float64)),
        torch.distributions.Independent(torch.distributions.Normal(means, GMM_STD), 1))
    x = 30 * torch.randn(7, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.allclose(target.energy(x), -mixture.log_prob(x))
    # Trapezoid error for a Gaussian of width σ is ~exp(−2π²σ²/step²): negligible at step 0.25.
    step = 0.25
    grid = torch.arange(-60, 60, step, dtype=torch.float64)
    a, b = torch.meshgrid(grid, grid, indexing="ij")
    energy = target.energy(torch.stack([a.reshape(-1), b.reshape(-1)], 1))
    assert torch.logsumexp(-energy, 0).item() + 2 * math.log(step) == pytest.approx(0.0, abs=1e-8)


def test_gmm40_exact_samples_have_the_mixture_mean_and_variance():
    target, n = GMM40(), 40000
    x = target.sample_exact(n, torch.Generator().manual_seed(4)).double()
    means = fab_gmm_means()
    variance = GMM_STD ** 2 + means.var(dim=0, unbiased=False)
    for axis in range(2):
        assert abs(_z_score(x[:, axis], means[:, axis].mean().item(), variance[axis].item())) < 4
        centred_sq = (x[:, axis] - means[:, axis].mean()) ** 2
        fourth = (centred_sq ** 2).mean().item()
        assert abs(_z_score(centred_sq, variance[axis].item(), fourth - variance[axis] ** 2)) < 4


# ---------------------------------------------------------------- ManyWell


def test_manywell_log_z_from_quadrature():
    z_a, _, _ = well_integrals()
    assert z_a == pytest.approx(11784.50927, abs=1e-5)
    assert ManyWell().exact.log_z == pytest.approx(164.6956753, abs=1e-6)
    assert ManyWell(dim=4).exact.log_z == pytest.approx(164.6956753 / 8, abs=1e-6)
    right, _ = integrate.quad(lambda a: math.exp(-(a ** 4 - 6 * a ** 2 - 0.5 * a)), 0, 8)
    assert right / z_a == pytest.approx(0.8443, abs=5e-5)


def test_manywell_exact_samples():
    target, n = ManyWell(dim=8), 20000
    x = target.sample_exact(n, torch.Generator().manual_seed(5)).double()
    assert x.shape == (n, 8)
    exact = target.exact
    assert abs(_z_score(target.energy(x), exact.energy_mean, exact.heat_capacity)) < 4
    right = (x[:, 0::2] > 0).double()
    p_right = 0.8443071
    assert abs(_z_score(right, p_right, p_right * (1 - p_right))) < 4
    assert abs(_z_score(x[:, 1::2], 0.0, 1.0)) < 4


def test_manywell_rejects_odd_dim():
    with pytest.raises(UserError, match="even"):
        ManyWell(dim=7)


# ---------------------------------------------------------------- particles


def test_dw4_energy_of_a_square():
    side = 4.0
    square = torch.tensor([[0, 0, side, 0, side, side, 0, side]], dtype=torch.float64)
    diagonal = side * math.sqrt(2) - 4.0
    expected = 2 * (-4.0 * diagonal ** 2 + 0.9 * diagonal ** 4)   # the four sides are at d0
    target = DW4()
    assert target.energy(square).item() == pytest.approx(expected)
    rotation = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=torch.float64)
    moved = (square.reshape(4, 2)[[2, 0, 3, 1]] @ rotation.T + 7.0).reshape(1, 8)
    assert target.energy(moved).item() == pytest.approx(expected)


def _icosahedron(radius: float) -> np.ndarray:
    phi = (1 + math.sqrt(5)) / 2
    vertices = []
    for s1 in (1, -1):
        for s2 in (1, -1):
            vertices += [(0, s1, s2 * phi), (s1, s2 * phi, 0), (s2 * phi, 0, s1)]
    vertices = np.array(vertices, dtype=np.float64)
    vertices *= radius / np.linalg.norm(vertices[0])
    return np.vstack([np.zeros(3), vertices]).reshape(-1)


def _pair_energy_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
    x = torch.tensor(flat.reshape(1, 13, 3), dtype=torch.float64, requires_grad=True)
    energy = lj_pair_energy(x)
    (grad,) = torch.autograd.grad(energy.sum(), x)
    return energy.item(), grad[0].reshape(-1).numpy()


def test_lj13_icosahedron_reaches_the_known_global_minimum():
    radial = optimize.minimize_scalar(lambda r: _pair_energy_and_gradient(_icosahedron(r))[0],
                                      bounds=(0.8, 1.3), method="bounded",
                                      options={"xatol": 1e-10})
    relaxed = optimize.minimize(_pair_energy_and_gradient, _icosahedron(radial.x), jac=True,
                                method="L-BFGS-B", options={"maxiter": 300, "gtol": 1e-10})
    assert relaxed.fun == pytest.approx(-44.326801, abs=1e-4)
    target = LennardJones(13)
    assert target.exact.extra["pair_energy_global_minimum"] == -44.326801
    x = torch.tensor(relaxed.x[None], dtype=torch.float64)
    positions = x.reshape(13, 3)
    restraint = 0.5 * (positions - positions.mean(0)).pow(2).sum().item()
    assert target.energy(x).item() == pytest.approx(relaxed.fun + restraint)


def test_lj_overlapping_particles_stay_finite_in_float32():
    target = LennardJones(55)
    start = torch.zeros(2, 55, 3, dtype=torch.float32)
    energy, force = target.energy_and_force(start)
    assert torch.isfinite(energy).all() and torch.isfinite(force).all()
    assert (energy > 1e25).all()   # the floor only caps a physically unreachable energy


# ---------------------------------------------------------------- phi^4


@pytest.mark.parametrize("L,m2,log_z", [(4, 1.0, -2.858131815), (8, 1.0, -11.62288526),
                                        (16, 0.25, -17.48557877)])
def test_phi4_free_field_log_z(L, m2, log_z):
    assert free_field_log_z(L, m2) == pytest.approx(log_z, abs=1e-8)
    assert Phi4(L=L, m2=m2, lam=0.0).exact.log_z == pytest.approx(log_z, abs=1e-8)


@pytest.mark.parametrize("L", [2, 3])
def test_phi4_free_field_formula_matches_the_action_hessian(L):
    target = Phi4(L=L, m2=0.7, lam=0.0)
    hessian = torch.autograd.functional.hessian(
        lambda v: target.energy(v.reshape(1, L, L)).sum(), torch.zeros(L * L, dtype=torch.float64))
    precision = 0.5 * hessian   # S = φᵀAφ, so A is half the Hessian
    log_z = 0.5 * L * L * math.log(math.pi) - 0.5 * torch.logdet(precision).item()
    assert target.exact.log_z == pytest.approx(log_z, abs=1e-12)


def test_phi4_free_field_exact_samples():
    L, n = 3, 40000
    target = Phi4(L=L, m2=0.5, lam=0.0)
    x = target.sample_exact(n, torch.Generator().manual_seed(6)).double()
    assert abs(_z_score(target.energy(x), L * L / 2, L * L / 2)) < 4
    hessian = torch.autograd.functional.hessian(
        lambda v: target.energy(v.reshape(1, L, L)).sum(), torch.zeros(L * L, dtype=torch.float64))
    covariance = torch.linalg.inv(hessian)   # (2A)⁻¹
    flat = x.reshape(n, -1)
    empirical = flat.T @ flat / n
    diag = torch.diagonal(covariance)
    stderr = torch.sqrt((diag[:, None] * diag[None, :] + covariance ** 2) / n)
    assert ((empirical - covariance).abs() / stderr).max().item() < 4.5


def test_phi4_interacting_constant_field_and_bad_parameters():
    target = Phi4(L=4, m2=-4.0, lam=8.0)
    constant = torch.full((1, 4, 4), 0.5, dtype=torch.float64)
    assert target.energy(constant).item() == pytest.approx(16 * (-4.0 * 0.25 + 8.0 * 0.0625))
    assert target.exact.log_z is None and target.sample_exact(3, torch.Generator()) is None
    with pytest.raises(UserError, match="m2 > 0"):
        Phi4(L=4, m2=0.0, lam=0.0)
    with pytest.raises(UserError, match="lam"):
        Phi4(L=4, lam=-1.0)


# ---------------------------------------------------------------- contract over all built-ins

SPECS = ["gaussian:dim=3,std=2,mean=1", "harmonic:dim=2,k=3", "gmm40", "manywell:dim=4", "dw4",
         "lj13", "lj55", "phi4:L=4", "phi4:L=3,m2=1,lam=0", "ising2d:L=3,M=4,h=0.1"]


def _probe(target, n, dtype):
    generator = torch.Generator().manual_seed(7)
    if target.discrete:
        bits = torch.randint(0, 2, (n, *target.event_shape), generator=generator)
        return (2.0 * bits - 1.0).to(dtype)
    # Spread-out configurations so particle targets are in a well-conditioned region.
    return 1.5 * torch.randn(n, *target.event_shape, generator=generator, dtype=dtype)


@pytest.mark.parametrize("spec", SPECS)
def test_contract_shapes_dtypes_and_counters(spec):
    target = build_target(spec)
    x64 = _probe(target, 5, torch.float64)
    u64 = target.energy(x64)
    u32 = target.energy(x64.float())
    assert u64.shape == (5,) and u64.dtype == torch.float64 and u32.dtype == torch.float32
    assert torch.allclose(u32.double(), u64, rtol=1e-4, atol=1e-4)
    assert target.energy_evals == 10 and target.force_evals == 0
    if not target.discrete:
        _, force = target.energy_and_force(x64[:3])
        assert force.shape == x64[:3].shape and target.force_evals == 3
        assert target.energy_evals == 13
    target.reset_counters()
    assert target.energy_evals == target.force_evals == 0
    json.dumps(target.describe())


@pytest.mark.parametrize("spec", SPECS)
def test_contract_exact_samples_are_deterministic(spec):
    target = build_target(spec)
    first = target.sample_exact(6, torch.Generator().manual_seed(8))
    if first is None:
        return
    again = target.sample_exact(6, torch.Generator().manual_seed(8))
    assert first.shape == (6, *target.event_shape) and first.dtype == torch.get_default_dtype()
    assert torch.equal(first, again)
    assert torch.isfinite(target.energy(first)).all()


@pytest.mark.parametrize("spec", [s for s in SPECS if not s.startswith(("ising", "lj55"))])
def test_energies_pass_gradcheck_in_float64(spec):
    target = build_target(spec)
    x = _probe(target, 2, torch.float64)
    if spec.startswith("phi4:L=4"):
        x = 0.3 * x   # keep the quartic term moderate so finite differences stay accurate
    assert torch.autograd.gradcheck(target.energy, (x.requires_grad_(True),))
