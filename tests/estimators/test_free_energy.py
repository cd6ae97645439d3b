"""EXP, BAR, MBAR and thermodynamic integration against pymbar and against exact free energies."""

import math

import numpy as np
import pytest
import torch

from heatbath.core.errors import UserError
from heatbath.estimators.free_energy import bar, exp_estimator, mbar
from heatbath.estimators.integration import simpson_weights, thermodynamic_integration

SAMPLES_PER_STATE = [200, 300, 400, 500, 600]


def harmonic_test_case():
    # pymbar is optional: the tests that need it (its test system, its numbers) skip without it.
    oscillators = pytest.importorskip("pymbar.testsystems.harmonic_oscillators")
    return oscillators.HarmonicOscillatorsTestCase()  # O_k = 0..4, K_k = 1, 2, 4, 8, 16


def harmonic_work(seed):
    """Forward/reverse work between U₀ = x²/2 and U₁ = (x − 1)², pymbar's own sampler."""
    oscillators = pytest.importorskip("pymbar.testsystems.harmonic_oscillators")
    case = oscillators.HarmonicOscillatorsTestCase(O_k=[0, 1], K_k=[1, 2])
    w_F, w_R, _ = case.sample(N_k=[300, 400], mode="wFwR", seed=seed)
    return case, w_F, w_R


@pytest.mark.parametrize("seed", [0, 1])
def test_exp_and_bar_match_pymbar(seed):
    other = pytest.importorskip("pymbar.other_estimators")
    pymbar_bar, pymbar_exp = other.bar, other.exp

    _, w_F, w_R = harmonic_work(seed)
    for ours, theirs in [(exp_estimator(w_F), pymbar_exp(w_F)),
                         (exp_estimator(w_R), pymbar_exp(w_R)),
                         (bar(w_F, w_R), pymbar_bar(w_F, w_R))]:
        assert ours.value == pytest.approx(theirs["Delta_f"], abs=1e-8)
        assert ours.stderr == pytest.approx(theirs["dDelta_f"], rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_mbar_matches_pymbar(seed):
    x_n, u_kn, N_k, _ = harmonic_test_case().sample(N_k=SAMPLES_PER_STATE, mode="u_kn", seed=seed)
    pymbar = pytest.importorskip("pymbar")
    ours = mbar(u_kn, N_k)
    theirs = pymbar.MBAR(u_kn, N_k).compute_free_energy_differences()
    np.testing.assert_allclose(ours.delta_f, theirs["Delta_f"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.d_delta_f, theirs["dDelta_f"], rtol=1e-6, atol=1e-12)


def test_mbar_with_an_unsampled_state_matches_pymbar():
    x_n, u_kn, N_k, _ = harmonic_test_case().sample(N_k=SAMPLES_PER_STATE, mode="u_kn", seed=2)
    u_extra = np.vstack([u_kn, 0.5 * 3.0 * (x_n - 1.5) ** 2])   # K = 3, O = 1.5, never sampled
    n_extra = np.append(N_k, 0)
    pymbar = pytest.importorskip("pymbar")
    ours = mbar(u_extra, n_extra)
    theirs = pymbar.MBAR(u_extra, n_extra).compute_free_energy_differences()
    np.testing.assert_allclose(ours.delta_f, theirs["Delta_f"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.d_delta_f, theirs["dDelta_f"], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_mbar_matches_analytic_free_energies(seed):
    case = harmonic_test_case()
    _, u_kn, N_k, _ = case.sample(N_k=SAMPLES_PER_STATE, mode="u_kn", seed=seed)
    result = mbar(torch.tensor(u_kn), torch.tensor(N_k))
    exact = case.analytical_free_energies()   # f_k − f_0 = ½ ln(K_k / K_0)
    assert result.free_energies[0].value == 0.0 and result.free_energies[0].stderr == 0.0
    for k in range(1, len(exact)):
        assert abs(result.free_energies[k].z_score(exact[k])) < 4
    assert result.difference(1, 3).value == pytest.approx(result.delta_f[1, 3])


@pytest.mark.parametrize("seed", [0, 1])
def test_bar_and_exp_match_analytic_free_energy(seed):
    case, w_F, w_R = harmonic_work(seed)
    exact = case.analytical_free_energies()[1]
    assert abs(bar(w_F, w_R).z_score(exact)) < 4
    assert abs(exp_estimator(w_F).z_score(exact)) < 4
    assert abs(exp_estimator(w_R).z_score(-exact)) < 4


def two_gaussian_work(rng, sigma0, sigma1, n0, n1):
    """u_k = x²/(2σ_k²); ΔF = f₁ − f₀ = −ln(σ₁/σ₀)."""
    x0, x1 = rng.normal(0, sigma0, n0), rng.normal(0, sigma1, n1)
    u0, u1 = (lambda x: x**2 / (2 * sigma0**2)), (lambda x: x**2 / (2 * sigma1**2))
    return u1(x0) - u0(x0), u0(x1) - u1(x1), (x0, x1, u0, u1)


def test_bar_on_two_gaussians_matches_exact():
    w_F, w_R, _ = two_gaussian_work(np.random.default_rng(0), 1.0, 1.5, 2000, 1500)
    estimate = bar(w_F, w_R)
    assert abs(estimate.z_score(-math.log(1.5))) < 4
    assert 0 < estimate.stderr < 0.05
    assert estimate.n == 3500


def test_mbar_with_two_states_equals_bar():
    w_F, w_R, (x0, x1, u0, u1) = two_gaussian_work(np.random.default_rng(1), 1.0, 2.0, 800, 900)
    x = np.concatenate([x0, x1])
    result = mbar(np.stack([u0(x), u1(x)]), [800, 900])
    assert result.free_energies[1].value == pytest.approx(bar(w_F, w_R).value, abs=1e-10)


def test_mbar_follows_large_energy_offsets_exactly():
    # Adding c_k to state k's reduced potential shifts f_k by exactly c_k, however large.
    w_F, w_R, (x0, x1, u0, u1) = two_gaussian_work(np.random.default_rng(3), 1.0, 1.3, 500, 500)
    x = np.concatenate([x0, x1])
    u_kn = np.stack([u0(x), u1(x), 0.5 * (u0(x) + u1(x))])
    counts = [500, 500, 0]
    offsets = np.array([0.0, 250.0, -400.0])
    plain, shifted = mbar(u_kn, counts), mbar(u_kn + offsets[:, None], counts)
    np.testing.assert_allclose(shifted.delta_f[0], plain.delta_f[0] + offsets, rtol=0, atol=1e-9)
    np.testing.assert_allclose(shifted.d_delta_f, plain.d_delta_f, rtol=1e-6)


def test_bar_widens_a_bad_bracket_far_from_zero():
    # A large offset in both work directions: ΔF = 50 + ln σ₀/σ₁.
    w_F, w_R, _ = two_gaussian_work(np.random.default_rng(2), 1.0, 1.2, 1000, 1000)
    shifted = bar(w_F + 50.0, w_R - 50.0)
    assert shifted.value == pytest.approx(bar(w_F, w_R).value + 50.0, abs=1e-9)


def test_free_energy_input_errors():
    with pytest.raises(UserError):
        mbar(np.zeros((2, 5)), [2, 2])        # counts do not add up to the samples
    with pytest.raises(UserError):
        mbar(np.zeros((2, 4)), [2, 2, 0])     # one count per state
    with pytest.raises(UserError):
        bar([0.0, np.nan], [1.0, 2.0])


def harmonic_ti_inputs(betas, d=3):
    """⟨H⟩ = d/(2β) for H = |x|²/2; exact ln Z(β) = (d/2) ln(2π/β)."""
    betas = np.asarray(betas, dtype=np.float64)
    exact = -0.5 * d * math.log(betas[-1] / betas[0])
    return d / (2 * betas), exact


def test_ti_converges_at_fourth_order_on_a_geometric_grid():
    errors = []
    for n_points in (5, 9, 17, 33):
        betas = np.geomspace(0.5, 2.0, n_points)
        energies, exact = harmonic_ti_inputs(betas)
        estimate = thermodynamic_integration(betas, energies, np.zeros(n_points))
        errors.append(abs(estimate.value - exact))
        assert estimate.stderr == 0.0
    assert errors[-1] < 1e-5     # 33 points already give ~1.5e-6
    for coarse, fine in zip(errors, errors[1:]):
        assert coarse / fine > 10    # halving h: 16× for a fourth-order rule


@pytest.mark.parametrize("n_points", [4, 7])   # odd and even numbers of intervals
def test_simpson_exact_for_quadratics_on_uneven_grids(n_points):
    x = np.sort(np.random.default_rng(n_points).uniform(0.0, 2.0, n_points))
    y = 1.0 - 2.0 * x + 3.0 * x**2
    exact = lambda t: t - t**2 + t**3
    assert simpson_weights(x) @ y == pytest.approx(exact(x[-1]) - exact(x[0]), abs=1e-13)
    assert simpson_weights(x[::-1]) @ y[::-1] == pytest.approx(exact(x[0]) - exact(x[-1]),
                                                                abs=1e-13)


def test_ti_propagates_standard_errors():
    # Uniform 3-point Simpson: weights h/3 · (1, 4, 1).
    estimate = thermodynamic_integration([1.0, 1.5, 2.0], [3.0, 2.0, 1.5], [0.1, 0.2, 0.3])
    h = 0.5
    assert estimate.value == pytest.approx(-(h / 3) * (3.0 + 4 * 2.0 + 1.5))
    assert estimate.stderr == pytest.approx((h / 3) * math.sqrt(0.1**2 + 0.8**2 + 0.3**2))


def test_ti_with_noisy_energies_is_within_its_error_bar():
    betas = np.geomspace(0.5, 2.0, 17)
    energies, exact = harmonic_ti_inputs(betas)
    stderrs = 0.02 * energies
    noisy = energies + stderrs * np.random.default_rng(3).normal(size=betas.size)
    assert abs(thermodynamic_integration(betas, noisy, stderrs).z_score(exact)) < 4


def test_ti_input_errors():
    with pytest.raises(UserError):
        thermodynamic_integration([1.0, 0.5, 2.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    with pytest.raises(UserError):
        thermodynamic_integration([1.0, 2.0], [1.0, 1.0, 1.0], [0.0, 0.0])
