"""Point-cloud metrics: Chamfer/EMD by hand and by enumeration, MMD/COV/1-NNA exact cases."""

import itertools
import math

import numpy as np
import pytest
import torch

from heatbath.core.errors import UserError
from heatbath.estimators.clouds import (chamfer, coverage, emd, mmd, one_nna,
                                        one_nna_null_expectation, pairwise_distances,
                                        with_floor)


def _t(points):
    return torch.tensor(points, dtype=torch.float64)


def _clouds(shape, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) + shift


def test_chamfer_by_hand():
    assert float(chamfer(_t([[0, 0, 0], [1, 0, 0]]), _t([[0, 0, 0]]))) == 0.5
    # a→b squared minima 1, 0 (mean 1/2); b→a minima 1, 0, 9 (mean 10/3).
    a, b = _t([[0, 0, 0], [2, 0, 0]]), _t([[0, 1, 0], [2, 0, 0], [5, 0, 0]])
    assert float(chamfer(a, b)) == pytest.approx(0.5 + 10 / 3, abs=1e-14)
    assert float(chamfer(a, a)) == 0.0


def test_emd_by_hand():
    # Matchings: identity (1 + √10)/2 ≈ 2.08, swap (3 + 0)/2 = 1.5.
    a, b = _t([[0, 0, 0], [1, 0, 0]]), _t([[1, 0, 0], [0, 0, 3]])
    assert float(emd(a, b)) == pytest.approx(1.5, abs=1e-15)


@pytest.mark.parametrize("points", [2, 4, 6])
def test_emd_against_all_matchings(points):
    a, b = _clouds((points, 3), points), _clouds((points, 3), 10 + points)
    brute = min(float((a - b[list(p)]).norm(dim=-1).mean())
                for p in itertools.permutations(range(points)))
    assert float(emd(a, b)) == pytest.approx(brute, rel=1e-12)


def test_batched_distances_match_pair_by_pair():
    a, b = _clouds((4, 5, 3), 0), _clouds((4, 5, 3), 1)
    for function in (chamfer, emd):
        batched = function(a, b)
        assert batched.shape == (4,)
        for i in range(4):
            assert float(batched[i]) == pytest.approx(float(function(a[i], b[i])), rel=1e-12)
    matrix = pairwise_distances(a, b, "chamfer", chunk_elements=30)   # forces several blocks
    assert float(matrix[2, 3]) == pytest.approx(float(chamfer(a[2], b[3])), rel=1e-12)


def test_mmd_and_coverage_on_one_point_clouds_by_hand():
    # Clouds of one point: emd = |s − r|, chamfer = 2|s − r|². S = {0, 10}, R = {1, 12, 13}.
    S, R = _t([[[0, 0, 0]], [[10, 0, 0]]]), _t([[[1, 0, 0]], [[12, 0, 0]], [[13, 0, 0]]])
    # Per reference, the closest sample: 1, 2, 3 -> MMD-EMD 2, MMD-CD 2·(1 + 4 + 9)/3.
    assert mmd(S, R, "emd").value == pytest.approx(2.0, abs=1e-14)
    assert mmd(S, R, "chamfer").value == pytest.approx(28 / 3, abs=1e-13)
    # Nearest references: 0 -> 1, 10 -> 12, so two of three are covered.
    assert coverage(S, R, "emd").value == pytest.approx(2 / 3, abs=1e-15)


def test_a_set_against_itself_and_a_collapsed_model():
    R = _clouds((8, 16, 3), 2)
    assert mmd(R, R).value == 0.0 and coverage(R, R).value == 1.0
    collapsed = R[:1].repeat(8, 1, 1)   # every sample the same cloud
    assert coverage(collapsed, R).value == pytest.approx(1 / 8, abs=1e-15)
    assert mmd(collapsed, R).stderr > 0


def test_one_nna_is_one_for_separated_sets():
    result = one_nna(_clouds((20, 16, 3), 3), _clouds((25, 16, 3), 4, shift=10.0))
    assert result.value == 1.0 and result.extra["accuracy_S"] == 1.0


@pytest.mark.parametrize("distance", ["chamfer", "emd"])
def test_one_nna_is_about_one_half_for_one_distribution(distance):
    n = 100
    result = one_nna(_clouds((n, 12, 3), 5), _clouds((n, 12, 3), 6), distance)
    # Binomial standard error of an accuracy near 1/2 over 2n predictions; 3 of them.
    assert abs(result.value - 0.5) < 3 * 0.5 / math.sqrt(2 * n)
    assert result.ci95[0] >= 0.0 and result.ci95[1] <= 1.0


@pytest.mark.parametrize("n, m", [(6, 6), (4, 9)])
def test_one_nna_of_one_law_averages_its_exact_null_expectation(n, m):
    """Over many independent draws of equal-law sets, the mean 1-NNA is the exchangeability
    value [n(n−1) + m(m−1)] / [(n+m)(n+m−1)], below 1/2; tolerance 4 standard errors."""
    draws = 3000
    clouds = _clouds((draws, n + m, 5, 2), 11)
    values = np.array([one_nna(c[:n], c[n:]).value for c in clouds])
    expected = one_nna_null_expectation(n, m)
    assert one_nna(clouds[0, :n], clouds[0, n:]).extra["null_expectation"] == expected
    assert abs(values.mean() - expected) < 4 * values.std(ddof=1) / math.sqrt(draws)
    assert expected == pytest.approx({(6, 6): 5 / 11, (4, 9): (12 + 72) / (13 * 12)}[(n, m)])


def test_with_floor_matches_the_metric_on_the_halves():
    S, R = _clouds((6, 10, 3), 7), _clouds((12, 10, 3), 8)
    first, second = np.arange(6), np.arange(6, 12)
    value, floor = with_floor("mmd", S, R, (first, second))
    assert floor.value == mmd(R[:6], R[6:]).value
    assert value.value == mmd(S, R[6:]).value   # S' is all of S, reordered: MMD ignores order
    value, floor = with_floor("one_nna", S, R, distance="emd")   # random halves
    assert 0.0 <= value.value <= 1.0 and 0.0 <= floor.value <= 1.0


def test_bad_input_is_a_user_error():
    with pytest.raises(UserError, match="equal size"):
        emd(_clouds((3, 3), 0), _clouds((4, 3), 1))
    with pytest.raises(UserError, match="unknown cloud distance"):
        mmd(_clouds((2, 3, 3), 0), _clouds((2, 3, 3), 1), "hausdorff")
    with pytest.raises(UserError, match=r"\(N, P, d\)"):
        coverage(_clouds((5, 3), 0), _clouds((2, 5, 3), 1))
    with pytest.raises(UserError, match="unknown set metric"):
        with_floor("fid", _clouds((2, 3, 3), 0), _clouds((4, 3, 3), 1))
