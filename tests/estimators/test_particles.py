"""Particle-set metrics: hand-computed W2 cases, invariances, and brute-force equivariant EMD."""

import itertools
import math
import sys

import numpy as np
import pytest
import torch

from heatbath.core.errors import UserError
from heatbath.estimators.particles import distance_w2, energy_w2, equivariant_emd
from heatbath.spaces import pair_distances


def _points(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _orthogonal(seed):
    q, r = torch.linalg.qr(_points((3, 3), seed))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.linalg.det(q) > 0 else -q


def _disguised_set(x, seed):
    """Every configuration rotated, permuted and translated on its own; the set shuffled."""
    g = torch.Generator().manual_seed(seed)
    copies = [(c @ _orthogonal(seed + i))[torch.randperm(c.shape[0], generator=g)] + 3.0 * i
              for i, c in enumerate(x)]
    return torch.stack(copies)[torch.randperm(len(copies), generator=g)]


# --- energy W2 -------------------------------------------------------------------------------

def test_energy_w2_equal_sizes_by_hand():
    result = energy_w2([2.0, 0.0, 1.0], [1.0, 3.0, 2.0])   # sorted gaps 1, 1, 1
    assert result.value == pytest.approx(1.0, abs=1e-15)
    assert result.extra["w2_squared"] == pytest.approx(1.0, abs=1e-15)


def test_energy_w2_unequal_sizes_by_hand():
    # Quantiles: a = 0 on (0, 1/2], 1 on (1/2, 1]; b = 0 on (0, 2/3], 3 on (2/3, 1].
    # W2² = (2/3 − 1/2)·1² + (1/3)·2² = 1/6 + 4/3 = 3/2.
    result = energy_w2([0.0, 1.0], [0.0, 0.0, 3.0])
    assert result.extra["w2_squared"] == pytest.approx(1.5, abs=1e-14)
    assert result.value == pytest.approx(math.sqrt(1.5), abs=1e-14)


def test_energy_w2_squared_is_pots_emd2_1d():
    ot = pytest.importorskip("ot")
    a, b = np.random.default_rng(0).normal(size=300), np.random.default_rng(1).normal(1, 2, 170)
    result = energy_w2(a, b)
    assert result.extra["w2_squared"] == pytest.approx(float(ot.emd2_1d(a, b)), rel=1e-10)
    assert result.value ** 2 == pytest.approx(result.extra["w2_squared"], rel=1e-14)


def test_energy_w2_of_a_shift_is_the_shift_with_a_reproducible_stderr():
    a = np.random.default_rng(2).normal(size=400)
    result = energy_w2(a, a + 0.7)
    assert result.value == pytest.approx(0.7, abs=1e-12)
    assert 0 < result.stderr < 0.5 and result.extra["w2_squared_stderr"] > 0
    assert energy_w2(a, a + 0.7).stderr == result.stderr   # fixed generator


def test_energy_w2_rejects_bad_input():
    with pytest.raises(UserError, match="NaN"):
        energy_w2([0.0, float("nan")], [0.0, 1.0])
    with pytest.raises(UserError, match="n_boot"):
        energy_w2([0.0, 1.0], [0.0, 1.0], n_boot=1)


def test_reweighted_energy_w2_on_two_points_is_the_mass_moved():
    # a: 0 with weight 0.2, 1 with 0.8; b: 0 and 1 equally. W2² = |0.2 − 0.5| · 1².
    result = energy_w2([0.0, 1.0], [1.0, 0.0], log_weights_a=np.log([0.2, 0.8]))
    assert result.extra["w2_squared"] == pytest.approx(0.3, abs=1e-15)
    assert result.extra["kish_ess"] == pytest.approx(1 / (0.2 ** 2 + 0.8 ** 2))


def test_reweighted_energy_w2_with_equal_weights_is_the_unweighted_one():
    a, b = _points((37,), 3), _points((23,), 4)
    weighted = energy_w2(a, b, log_weights_a=torch.full((37,), -2.5))
    assert weighted.value == pytest.approx(energy_w2(a, b).value, rel=1e-13)


def test_reweighted_energy_w2_squared_is_pots_weighted_emd2_1d():
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(5)
    a, b, lw = rng.normal(size=200), rng.normal(0.5, 1.5, 90), rng.normal(size=200)
    w = np.exp(lw - lw.max())
    expected = float(ot.emd2_1d(a, b, a=w / w.sum(), b=np.full(90, 1 / 90)))
    result = energy_w2(a, b, log_weights_a=lw)
    assert result.extra["w2_squared"] == pytest.approx(expected, rel=1e-10)


def test_reweighting_removes_a_known_shift_down_to_the_sampling_floor():
    # N(0, 1) samples weighted by N(1, 1)/N(0, 1) = exp(x − 1/2) against N(1, 1) samples: the
    # unweighted W2 is the shift 1; the weighted one falls to what two samples of N(1, 1) of the
    # weighted set's effective size differ by (their own W2, measured on the same seeds).
    n = 20000
    a, b = _points((n,), 6), _points((n,), 7) + 1.0
    weighted = energy_w2(a, b, log_weights_a=a - 0.5)
    n_eff = int(weighted.extra["kish_ess"])
    floor = energy_w2(_points((n_eff,), 8) + 1.0, b).value
    assert energy_w2(a, b).value == pytest.approx(1.0, abs=0.05)
    assert weighted.value < 3 * floor + 3 * weighted.stderr


def test_reweighted_energy_w2_rejects_bad_weights():
    with pytest.raises(UserError, match="log_weights_a"):
        energy_w2([0.0, 1.0], [0.0, 1.0], log_weights_a=[0.0, float("nan")])
    with pytest.raises(UserError, match="log_weights_a"):
        energy_w2([0.0, 1.0], [0.0, 1.0], log_weights_a=[0.0])
    with pytest.raises(UserError, match="log_weights_a"):
        energy_w2([0.0, 1.0], [0.0, 1.0], log_weights_a=[0.0, float("inf")])


# --- interparticle-distance W2 ---------------------------------------------------------------

def test_distance_w2_is_zero_for_identical_and_for_rigidly_moved_sets():
    x = _points((30, 5, 3), 3)
    assert distance_w2(x, x).value == 0.0
    assert distance_w2(x, _disguised_set(x, 4)).value < 1e-12


def test_distance_w2_of_a_scaled_set_by_hand():
    # Doubling every configuration doubles every distance d: W2² = mean(d²) over all pairs.
    x = _points((20, 4, 3), 5)
    expected = float(pair_distances(x).pow(2).mean().sqrt())
    assert distance_w2(x, 2 * x).value == pytest.approx(expected, rel=1e-12)


# --- equivariant EMD -------------------------------------------------------------------------

def test_equivariant_emd_is_zero_for_a_disguised_copy_and_positive_otherwise():
    pytest.importorskip("ot")
    x = _points((12, 6, 3), 6)
    same = equivariant_emd(x, _disguised_set(x, 7))
    assert same.value < 1e-9 and same.extra["eq_w2"] < 1e-9
    other = equivariant_emd(x, 1.3 * _points((12, 6, 3), 8))
    assert other.value > 0.1 and other.stderr > 0


def _brute_aligned_distance(x, y):
    """min over all particle permutations of the Kabsch-aligned distance: the exact optimum."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    best = math.inf
    for p in itertools.permutations(range(x.shape[0])):
        u, _, vh = torch.linalg.svd(yc[list(p)].T @ xc)
        flip = torch.diag(torch.tensor([1.0, 1.0, float(torch.linalg.det(u @ vh).sign())],
                                       dtype=torch.float64))
        best = min(best, float((yc[list(p)] @ u @ flip @ vh - xc).norm()))
    return best


def test_equivariant_emd_equals_brute_force_on_a_tiny_case():
    pytest.importorskip("ot")
    xa, xb = _points((3, 4, 3), 9), _points((3, 4, 3), 10)
    cost = np.array([[_brute_aligned_distance(a, b) for b in xb] for a in xa])
    matchings = list(itertools.permutations(range(3)))   # uniform 3 x 3: a vertex is optimal
    emd = min(np.mean([cost[i, s[i]] for i in range(3)]) for s in matchings)
    w2 = min(np.mean([cost[i, s[i]] ** 2 for i in range(3)]) for s in matchings) ** 0.5
    result = equivariant_emd(xa, xb)
    assert result.value == pytest.approx(emd, rel=1e-10)
    assert result.extra["eq_w2"] == pytest.approx(w2, rel=1e-10)


def test_equivariant_emd_refuses_large_sets_by_name():
    pytest.importorskip("ot")
    with pytest.raises(UserError, match="max_configurations=5"):
        equivariant_emd(_points((6, 3, 3), 0), _points((4, 3, 3), 1), max_configurations=5)


def test_equivariant_emd_without_pot_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ot", None)   # makes `import ot` raise ImportError
    with pytest.raises(UserError, match=r"pip install 'heatbath\[ot\]'"):
        equivariant_emd(_points((3, 3, 3), 0), _points((3, 3, 3), 1))
