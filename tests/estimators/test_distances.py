"""Energy distance and sliced Wasserstein against closed forms, and the held-out floor."""

import math

import numpy as np
import pytest
import torch
from scipy.special import gammaln
from scipy.stats import energy_distance as scipy_energy_distance
from scipy.stats import norm

from heatbath.core.errors import UserError
from heatbath.estimators import distances
from heatbath.estimators.distances import (distance_with_floor, energy_distance,
                                           sliced_wasserstein)


def _normal(shape, seed, shift=0.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64) + shift


def _mean_abs_normal(mu, s):
    """E|Z| for Z ~ N(mu, s²)."""
    return (s * math.sqrt(2 / math.pi) * math.exp(-mu**2 / (2 * s**2))
            + mu * (1 - 2 * norm.cdf(-mu / s)))


def _energy_closed_form(shift):
    """2E|X−Y| − E|X−X'| − E|Y−Y'| for X ~ N(0,1), Y ~ N(shift,1) (differences: variance 2)."""
    root2 = math.sqrt(2)
    return 2 * _mean_abs_normal(shift, root2) - 2 * _mean_abs_normal(0.0, root2)


def _mean_abs_direction_component(dim):
    """E|θ_1| for θ uniform on the unit sphere in `dim` dimensions."""
    return math.exp(gammaln(dim / 2) - gammaln((dim + 1) / 2)) / math.sqrt(math.pi)


# --- energy distance -------------------------------------------------------------------------

def test_energy_distance_matches_closed_form_for_shifted_gaussians():
    estimate = energy_distance(_normal((3000, 1), 0), _normal((2500, 1), 1, shift=1.0))
    truth = _energy_closed_form(1.0)
    assert estimate.stderr < 0.05
    assert abs(estimate.z_score(truth)) < 4


def test_energy_stderr_is_calibrated_over_repeats():
    truth = _energy_closed_form(0.5)
    z = [energy_distance(_normal((200, 1), 2 * r), _normal((150, 1), 2 * r + 1, 0.5)).z_score(truth)
         for r in range(40)]
    assert abs(np.mean(z)) < 0.6 and 0.6 < np.std(z) < 1.5


def test_energy_v_statistic_agrees_with_scipy():
    x, y = _normal((300, 1), 3), _normal((170, 1), 4, shift=0.3)
    ours = energy_distance(x, y, unbiased=False).value
    # scipy returns sqrt(2E|X−Y| − E|X−X'| − E|Y−Y'|) for the empirical distributions.
    assert ours == pytest.approx(scipy_energy_distance(x[:, 0], y[:, 0]) ** 2, rel=1e-9)


def test_energy_distance_of_identical_sets():
    x = _normal((400, 3), 5)
    # Exact zero up to the ~1e-8 rounding of the matrix-product distance form.
    assert energy_distance(x, x, unbiased=False).value == pytest.approx(0.0, abs=1e-9)
    # The U-statistic drops the zero i = i pairs within each set, hence a small negative value.
    assert -0.05 < energy_distance(x, x).value < 0


def test_energy_distance_is_the_same_in_small_chunks(monkeypatch):
    x, y = _normal((90, 4), 6), _normal((70, 4), 7, shift=0.2)
    whole = energy_distance(x, y)
    monkeypatch.setattr(distances, "CHUNK_ELEMENTS", 50)
    chunked = energy_distance(x, y)
    assert chunked.value == pytest.approx(whole.value, rel=1e-10)
    assert chunked.stderr == pytest.approx(whole.stderr, rel=1e-10)


def test_energy_distance_flattens_images_and_accepts_numpy():
    images = _normal((40, 1, 4, 4), 8).float()
    estimate = energy_distance(images, images.reshape(40, 16).numpy() + 1.0)
    assert estimate.value > 0 and estimate.n == 40


@pytest.mark.parametrize("x, y, message", [
    (torch.zeros(10, 2), torch.zeros(10, 3), "different event sizes \\(2 vs 3"),
    (torch.zeros(3, 2), torch.zeros(10, 2), "at least 4 samples"),
    (torch.full((10, 2), math.nan), torch.zeros(10, 2), "NaN or inf"),
    (torch.zeros(0, 2), torch.zeros(10, 2), "no samples"),
    ([["a"]], torch.zeros(10, 2), "numeric array"),
])
def test_energy_distance_rejects_bad_input(x, y, message):
    with pytest.raises(UserError, match=message):
        energy_distance(x, y)


# --- sliced Wasserstein ----------------------------------------------------------------------

def test_sliced_w2_of_an_exact_shift_matches_the_direction_average():
    # y = x + m·1 projects to a pure shift θ·m1 in every direction, so W2(θ) = m|θ·1| exactly
    # and the only noise is the choice of directions, which the stderr describes.
    dim, m = 5, 0.7
    x = _normal((500, dim), 9)
    estimate = sliced_wasserstein(x, x + m, n_projections=512, seed=1)
    truth = m * math.sqrt(dim) * _mean_abs_direction_component(dim)
    assert abs(estimate.z_score(truth)) < 4
    # E(θ·1)² = |1|²/dim = 1, so the root-mean-square version is m.
    assert estimate.extra["sw2_rms"] == pytest.approx(m, rel=0.08)


def test_sliced_w2_between_independent_gaussians_is_near_analytic():
    dim, m = 3, 1.0
    estimate = sliced_wasserstein(_normal((4000, dim), 10), _normal((3000, dim), 11, shift=m))
    truth = m * math.sqrt(dim) * _mean_abs_direction_component(dim)
    assert estimate.value == pytest.approx(truth, abs=0.06)


def test_sliced_w2_identical_sets_and_determinism():
    x = _normal((200, 4), 12)
    same = sliced_wasserstein(x, x)
    assert same.value == pytest.approx(0.0, abs=1e-12)
    assert same.stderr == pytest.approx(0.0, abs=1e-12)
    y = _normal((150, 4), 13)
    assert sliced_wasserstein(x, y, seed=3).value == sliced_wasserstein(x, y, seed=3).value
    assert sliced_wasserstein(x, y, seed=3).value != sliced_wasserstein(x, y, seed=4).value


def test_one_dimensional_w2_with_unequal_sizes_matches_exact_transport():
    ot = pytest.importorskip("ot")
    x, y = _normal((7, 1), 14), _normal((5, 1), 15, shift=0.5)
    # In 1-D every unit direction is ±1, and W2 is unchanged by the sign.
    ours = sliced_wasserstein(x, y, n_projections=4).value
    cost = (x.numpy() - y.numpy().T) ** 2
    exact = math.sqrt(ot.emd2(np.full(7, 1 / 7), np.full(5, 1 / 5), cost))
    assert ours == pytest.approx(exact, rel=1e-9)


def test_sliced_w2_rejects_bad_projection_count():
    with pytest.raises(UserError, match="n_projections"):
        sliced_wasserstein(torch.zeros(5, 2), torch.zeros(5, 2), n_projections=1)


# --- distance next to its floor --------------------------------------------------------------

@pytest.mark.parametrize("metric", ["energy", "sliced_w2"])
def test_floor_is_small_next_to_a_shifted_distribution(metric):
    heldout = _normal((1200, 2), 16)
    shifted, floor = distance_with_floor(metric, _normal((2000, 2), 17, shift=1.0), heldout, seed=1)
    assert shifted.n == floor.n
    assert floor.value < 0.2 * shifted.value
    matched, floor_again = distance_with_floor(metric, _normal((2000, 2), 18), heldout, seed=1)
    assert floor_again.value == floor.value and matched.value < 0.2 * shifted.value


def test_energy_floor_is_consistent_with_zero():
    _, floor = distance_with_floor("energy", _normal((500, 2), 19), _normal((800, 2), 20))
    assert abs(floor.z_score(0.0)) < 4


def test_floor_uses_few_samples_when_few_are_given_and_accepts_callables():
    calls = []

    def sizes(a, b):
        calls.append((a.shape[0], b.shape[0]))
        return energy_distance(a, b)

    distance_with_floor(sizes, _normal((30, 2), 21), _normal((500, 2), 22))
    assert calls == [(30, 30), (30, 30)]


def test_floor_rejects_unknown_metric_and_tiny_heldout():
    with pytest.raises(UserError, match="unknown distance 'kl'; known: energy, sliced_w2"):
        distance_with_floor("kl", torch.zeros(10, 2), torch.zeros(10, 2))
    with pytest.raises(UserError, match="at least 2 held-out"):
        distance_with_floor("energy", torch.zeros(10, 2), torch.zeros(1, 2))


def test_sliced_wasserstein_error_covers_sampling_noise():
    """Over independent pairs of samples, the spread of the estimates matches their stderr."""
    import statistics

    from heatbath.estimators.distances import sliced_wasserstein

    values, errors = [], []
    for seed in range(30):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        y = torch.randn(400, 3, generator=g, dtype=torch.float64) + 0.5
        est = sliced_wasserstein(x, y, seed=0)
        values.append(est.value)
        errors.append(est.stderr)
    ratio = statistics.stdev(values) / statistics.mean(errors)
    # With 30 repeats the sample sd is within ~±40 % of the truth at 3 sigma.
    assert 0.6 < ratio < 1.5, ratio
