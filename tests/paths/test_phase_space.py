"""Phase-space processes (CLD, PSLD): closed-form kernels against the matrix exponential, the
stationary law, the hybrid-score-matching targets and the probability-flow ODE."""

import math

import mpmath
import numpy as np
import pytest
import scipy.linalg
import torch

from heatbath.core import rng
from heatbath.generative.analytic_field import GaussianPhaseField
from heatbath.generative.field import PhaseField
from heatbath.paths import PATHS, build_path
from heatbath.paths.phase_path import PhaseSpacePath, split
from heatbath.paths.phase_space import PROCESSES, cld, expm_2x2, noise_covariance, psld
from heatbath.samplers.likelihood import log_likelihood

PROCESS_CASES = {"cld": cld(), "psld": psld(),
                 "psld-underdamped": psld(friction=0.5, nu=3.0),
                 "cld-linear-beta": cld(beta=1.0, beta_max=6.0)}
LENGTHS = [0.0, 1e-4, 0.3, 2.0, 7.5]


def test_every_phase_path_is_registered_with_its_process():
    phase = {name for name, kind in PATHS.items() if kind.process is not None}
    assert phase == {"cld", "psld"} == set(PROCESSES)


@pytest.mark.parametrize("name", sorted(PROCESS_CASES))
def test_transition_matches_the_matrix_exponential(name):
    process = PROCESS_CASES[name]
    phi = expm_2x2(process.a, torch.tensor(LENGTHS, dtype=torch.float64))
    for b, closed_form in zip(LENGTHS, phi):
        reference = scipy.linalg.expm(process.a.numpy() * b)
        assert np.abs(closed_form.numpy() - reference).max() < 1e-10 * max(1, np.abs(reference).max())


@pytest.mark.parametrize("name", sorted(PROCESS_CASES))
def test_noise_covariance_matches_van_loans_exponential_at_30_digits(name):
    # An independent route to Q(b) = ∫₀ᵇ e^{rA} D e^{rAᵀ} dr (the code uses Gauss–Legendre):
    # Van Loan (1978), exp(b·[[−A, D], [0, Aᵀ]]) = [[·, G], [0, F]] gives Q = Fᵀ·G, here with
    # mpmath's matrix exponential at 30 digits (a quadrature of the integrand took 100× longer).
    process = PROCESS_CASES[name]
    got = noise_covariance(process.a, process.d, torch.tensor(LENGTHS[1:], dtype=torch.float64))
    for b, value in zip(LENGTHS[1:], got):
        reference = _van_loan_covariance(process.a.tolist(), process.d.tolist(), b)
        assert np.abs(value.numpy() - reference).max() < 1e-10 * np.abs(reference).max()


def _van_loan_covariance(a, d, b: float) -> np.ndarray:
    """Q(b) from exp(b·[[−A, diag d], [0, Aᵀ]]) at 30 digits (restored afterwards)."""
    with mpmath.workdps(30):
        block = mpmath.matrix(4, 4)
        for i in range(2):
            block[i, 2 + i] = d[i] * b
            for j in range(2):
                block[i, j], block[2 + i, 2 + j] = -a[i][j] * b, a[j][i] * b
        exponential = mpmath.expm(block)
        q = exponential[2:4, 2:4].T * exponential[0:2, 2:4]
        return np.array([[float(q[i, j]) for j in range(2)] for i in range(2)])


@pytest.mark.parametrize("name", sorted(PROCESS_CASES))
def test_stationary_law_is_unit_position_and_mass_velocity(name):
    process = PROCESS_CASES[name]
    sigma = process.stationary
    assert torch.allclose(sigma, torch.diag(torch.tensor([1.0, process.mass], dtype=torch.float64)),
                          atol=1e-12)
    lyapunov = process.a @ sigma + sigma @ process.a.T + torch.diag(process.d)
    assert lyapunov.abs().max() < 1e-12
    # Far from the data every kernel forgets its start: Φ → 0 and the covariance → Σ∞.
    phi, cov = process.kernel(torch.tensor([1.0], dtype=torch.float64),
                              initial=torch.zeros(2, 2, dtype=torch.float64))
    if process.integrated_beta(torch.tensor(1.0)) >= 4:
        assert (cov[0] - sigma).abs().max() < 0.05 and phi.abs().max() < 0.05


@pytest.mark.parametrize("name", sorted(PROCESS_CASES))
def test_kernel_moments_solve_the_forward_sde_moment_equations(name):
    """dμ/ds = β·A·μ and dΣ/ds = β·(AΣ + ΣAᵀ + D), checked by central differences, with Σ₀ the
    hybrid-score-matching start diag(0, γM) (linear β included)."""
    process = PROCESS_CASES[name]
    h = 1e-5
    for s in (0.05, 0.4, 0.9):
        times = torch.tensor([s - h, s, s + h], dtype=torch.float64)
        phi, cov = process.kernel(times)
        beta = float(process.beta(torch.tensor(s, dtype=torch.float64)))
        d_phi = (phi[2] - phi[0]) / (2 * h)
        d_cov = (cov[2] - cov[0]) / (2 * h)
        a, d = process.a, torch.diag(process.d)
        assert (d_phi - beta * a @ phi[1]).abs().max() < 1e-6
        assert (d_cov - beta * (a @ cov[1] + cov[1] @ a.T + d)).abs().max() < 1e-6


def test_psld_refuses_a_massless_choice_in_one_line():
    from heatbath.core.errors import UserError
    with pytest.raises(UserError, match="psld_friction"):
        psld(friction=2.0, nu=2.0)


@pytest.mark.parametrize("name", ["cld", "psld"])
def test_hsm_sample_and_target_follow_the_kernel(name):
    """u = Φ·(x₀, 0) + L·ε exactly; the network's target is ε minus the Gaussian model's E·u."""
    path = build_path(name, sigma_data=0.7)
    x1 = torch.tensor([[0.3, -1.2]], dtype=torch.float64).repeat(3, 1)
    t = torch.tensor([0.1, 0.5, 0.95], dtype=torch.float64)
    eps = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sample = path.sample(x1, t, eps)
    c = path.coefficients(t)
    for i in range(3):
        for k in range(2):
            pair = torch.stack([sample.x_t[i, k], sample.x_t[i, 2 + k]])
            noise = torch.stack([eps[i, k], eps[i, 2 + k]])
            expected = c.phi[i, :, 0] * x1[i, k] + c.chol[i] @ noise
            assert torch.allclose(pair, expected, atol=1e-14)
    residual = path.regression_target("eps", sample)
    assert torch.allclose(residual + path.gaussian_eps(sample.x_t, c), eps, atol=1e-14)


@pytest.mark.parametrize("name", ["cld", "psld"])
def test_eps_of_the_exact_field_is_the_scaled_score(name):
    """∇_u log p_t(u) = −L⁻ᵀ·E[ε | u] for the exact marginal of Gaussian data."""
    path = build_path(name)
    field = GaussianPhaseField(path, torch.tensor([0.5, -0.3]), torch.tensor([0.09, 0.25]))
    u = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for t in (0.2, 0.7, 0.99):
        grad_u = u.clone().requires_grad_(True)
        score = torch.autograd.grad(field.marginal_log_prob(grad_u, t).sum(), grad_u)[0]
        eps, c = field.eps(u, t)
        inverse_t = torch.linalg.inv(c.chol[0]).T
        for k in range(2):
            pair = torch.stack([eps[:, k], eps[:, 2 + k]], 1)
            expected = torch.stack([score[:, k], score[:, 2 + k]], 1)
            assert torch.allclose(-(pair @ inverse_t.T), expected, atol=1e-9)


class ZeroNet(torch.nn.Module):
    def forward(self, x, t, c=None, drop=None):
        return torch.zeros_like(x)


@pytest.mark.parametrize("name", ["cld", "psld"])
def test_untrained_residual_is_the_gaussian_model_of_the_data_scale(name):
    """Mixed score: a network that outputs 0 is the exact model of N(mean, σ_data²) data."""
    mean = torch.tensor([0.4, -0.2], dtype=torch.float64)
    path = build_path(name, sigma_data=0.6, data_mean=mean)
    exact = GaussianPhaseField(PhaseSpacePath(path.process, 0.6), torch.zeros(2),
                               torch.full((2,), 0.36))
    u = torch.randn(6, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for t in (0.0, 0.5, 0.99):
        got = PhaseField(ZeroNet(), path).eps(u, t)[0]
        assert torch.allclose(got, exact.eps(u, t)[0], atol=1e-10)


@pytest.mark.parametrize("name", ["cld", "psld"])
def test_probability_flow_carries_the_noise_marginal_to_the_data_marginal(name):
    """dopri5 on the exact field maps the exact law at t = 0 onto the exact law at the data end
    (the map is affine: read off from 0 and the unit vectors)."""
    from heatbath.samplers.ode import adaptive

    path = build_path(name)
    field = GaussianPhaseField(path, torch.tensor([0.5, -0.3]), torch.tensor([0.09, 0.25]))
    t_hi = path.time_range[1]
    points = torch.cat([torch.zeros(1, 4), torch.eye(4)]).double()
    out = adaptive(field, points, 0.0, t_hi, rtol=1e-10, atol=1e-10).x
    offset, jacobian = out[0], (out[1:] - out[0]).T
    mu0, cov0 = field.marginal(0.0)
    mu1, cov1 = field.marginal(t_hi)
    for k in range(2):
        rows = [k, 2 + k]
        j = jacobian[rows][:, rows]
        assert torch.allclose(offset[rows] + j @ mu0[0, :, k], mu1[0, :, k], atol=1e-7)
        assert torch.allclose(j @ cov0[0, k] @ j.T, cov1[0, k], atol=1e-7)


@pytest.mark.parametrize("process", [cld(beta=8.0), psld(beta=16.0)], ids=["cld", "psld"])
def test_likelihood_bound_is_the_joint_density_less_the_velocity_law(process):
    """On the exact field the joint ODE density of (x, v₀) is the exact joint marginal, and the
    bound sits below log p(x). β is doubled so that the prior N(0, Σ∞) is the exact law at
    t = 0 to ~1e-6 (at the default β the mismatch, ~e^(−8), reaches 1e-2 in log q)."""
    mean, var = torch.tensor([0.5, -0.3]), torch.tensor([0.09, 0.25])
    path = PhaseSpacePath(process)
    field = GaussianPhaseField(path, mean, var)
    x = mean + var.sqrt() * torch.randn(400, 2, generator=torch.Generator().manual_seed(3))
    x = x.double()
    found = log_likelihood(field, x, method="exact", seed=5, rtol=1e-9, atol=1e-9)
    exact = torch.distributions.Normal(mean.double(), var.double().sqrt()).log_prob(x).sum(1)
    gap = exact - found.log_q              # E[gap] = E_x KL(p(v₀) ‖ p(v₀ | x)) ≥ 0
    assert gap.mean() > 3 * gap.std() / math.sqrt(len(gap))
    # The joint part: log q(x, v₀) against the exact marginal at the data end.
    normal = rng.normal(5, torch.arange(400), 2_000_000, (2,), torch.float64)
    v0 = normal * math.sqrt(path.process.gamma * path.process.mass)
    joint = found.log_q + path.velocity_prior_log_prob(v0)
    exact_joint = field.marginal_log_prob(torch.cat([x, v0], 1), path.time_range[1])
    assert (joint - exact_joint).abs().max() < 1e-4


def test_mix_moves_the_cpu_matrices_to_the_state_device():
    """Samplers build their 2×2 matrices in float64 on the CPU; a state on another device (a
    GPU; here the meta device, which refuses a CPU operand the same way) must get them there."""
    from heatbath.paths.phase_path import mix

    matrix = torch.tensor([[[1.0, 2.0], [0.0, 1.0]]], dtype=torch.float64).expand(3, 2, 2)
    x = torch.zeros(3, 4, device="meta")
    mixed = mix(matrix, x, x)
    assert all(part.device.type == "meta" and part.dtype == torch.float32 for part in mixed)
