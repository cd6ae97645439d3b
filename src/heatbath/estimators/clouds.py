"""Point-cloud metrics in the conventions of PointFlow (Yang et al. 2019, after Achlioptas et
al. 2018), checked against PointFlow's metrics/evaluation_metrics.py.

Between clouds a (P, d) and b (Q, d) (d = 3 usually; leading batch axes broadcast):

* `chamfer(a, b)` = (1/P) Σ_i min_j ‖a_i − b_j‖² + (1/Q) Σ_j min_i ‖a_i − b_j‖²: squared
  distances, the sum (not the average) of the two directional means, as PointFlow's
  `distChamfer` with `dl.mean(1) + dr.mean(1)`.
* `emd(a, b)` = min over bijections π of (1/P) Σ_i ‖a_i − b_π(i)‖ (P = Q): the mean matched
  Euclidean, not squared, distance. PointFlow solves the matching approximately (its CUDA
  `approxmatch`, then match_cost / P); here it is exact (Hungarian, scipy), so values are at or
  below PointFlow's by its approximation error. O(P³) per pair: fine for P of a few hundred.

Over generated clouds S and reference clouds R, with D[s, r] one of those distances (raw, no
square root, as PointFlow):

* `mmd` = (1/|R|) Σ_r min_s D[s, r]: each reference cloud's closest sample, averaged (PointFlow's
  lgan_mmd). Bootstrap stderr over S and R (200 replicates, fixed seed).
* `coverage` = |{argmin_r D[s, r] : s ∈ S}| / |R|: the fraction of reference clouds that are the
  nearest reference of some sample (lgan_cov). Bootstrap stderr over S.
* `one_nna`: leave-one-out 1-nearest-neighbour accuracy on S ∪ R labelled by origin, each cloud
  classified by its nearest other cloud; ties go to the lowest index in the order [S, R]. 0.5
  is ideal, 1.0 fully separable sets. Stderr √(a(1−a)/(|S|+|R|)), binomial, a rough guide only
  (leave-one-out predictions are not independent). When S and R are independent draws of one
  law, the n + m clouds are exchangeable, so a cloud's nearest other cloud is equally likely to be
  any of them and the expected accuracy is exactly [n(n−1) + m(m−1)] / [(n+m)(n+m−1)]
  (n = |S|, m = |R|; (n−1)/(2n−1), just under 1/2, when n = m): `extra["null_expectation"]`.
* `with_floor`: a metric next to the same metric between two halves of the reference data.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from heatbath.core.errors import UserError
from heatbath.core.estimate import Estimate
from heatbath.estimators._inputs import boot_count, finite_tensor

CHUNK_ELEMENTS = 1 << 22   # point-pair distances held at once (32 MiB in float64)
N_BOOT = 200


def _as_clouds(x, what: str, ndim: int) -> torch.Tensor:
    """One cloud (P, d) (or a batch of them) for ndim 2, a set of clouds (N, P, d) for 3."""
    if ndim == 2:
        return finite_tensor(x, what, tuple(range(2, 8)), "(P, d)")
    return finite_tensor(x, what, (3,), "(N, P, d)")


def _point_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # The direct form, not the matrix-product one: exact zeros for coinciding points.
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def chamfer(a, b) -> torch.Tensor:
    """Chamfer distance (squared, sum of both directional means) per cloud pair, shape (...)."""
    a, b = _as_clouds(a, "a", 2), _as_clouds(b, "b", 2)
    a, b = _broadcast(a, b)
    squared = _point_distances(a, b).pow(2)
    return squared.min(dim=-1).values.mean(-1) + squared.min(dim=-2).values.mean(-1)


def emd(a, b) -> torch.Tensor:
    """Exact EMD (mean matched Euclidean distance, Hungarian) per cloud pair, shape (...)."""
    a, b = _as_clouds(a, "a", 2), _as_clouds(b, "b", 2)
    if a.shape[-2] != b.shape[-2]:
        raise UserError(f"emd needs clouds of equal size, got {a.shape[-2]} and {b.shape[-2]} "
                        "points")
    a, b = _broadcast(a, b)
    cost = _point_distances(a, b)
    flat = cost.reshape(-1, *cost.shape[-2:]).numpy()
    means = [matrix[linear_sum_assignment(matrix)].mean() for matrix in flat]
    return torch.tensor(means, dtype=torch.float64).reshape(cost.shape[:-2])


def _broadcast(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape[-1] != b.shape[-1]:
        raise UserError(f"clouds differ in dimension: {a.shape[-1]} vs {b.shape[-1]}")
    try:
        batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except RuntimeError:
        raise UserError(f"batch shapes {tuple(a.shape[:-2])} and {tuple(b.shape[:-2])} do not "
                        "broadcast") from None
    return a.expand(*batch, *a.shape[-2:]), b.expand(*batch, *b.shape[-2:])


_DISTANCES = {"chamfer": chamfer, "emd": emd}


def pairwise_distances(S, R, distance: str = "chamfer",
                       chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """D (|S|, |R|), D[s, r] = distance(S[s], R[r]), computed a block of R at a time."""
    if distance not in _DISTANCES:
        raise UserError(f"unknown cloud distance '{distance}'; known: {', '.join(_DISTANCES)}")
    S, R = _as_clouds(S, "S", 3), _as_clouds(R, "R", 3)
    function = _DISTANCES[distance]
    block = max(1, chunk_elements // (S.shape[1] * R.shape[1]))
    out = torch.empty(S.shape[0], R.shape[0], dtype=torch.float64)
    for i, cloud in enumerate(S):
        for start in range(0, R.shape[0], block):
            out[i, start:start + block] = function(cloud, R[start:start + block])
    return out


def mmd(S, R, distance: str = "chamfer", *, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Minimum matching distance (1/|R|) Σ_r min_s D[s, r], bootstrap stderr over S and R."""
    boot_count(n_boot)
    D = pairwise_distances(S, R, distance).numpy()
    value = float(D.min(axis=0).mean())
    rng = np.random.default_rng(seed)
    replicates = [D[rng.integers(0, D.shape[0], D.shape[0])].min(axis=0)
                  [rng.integers(0, D.shape[1], D.shape[1])].mean() for _ in range(n_boot)]
    return Estimate(value, float(np.std(replicates, ddof=1)), D.shape[0],
                    extra={"metric": f"mmd_{distance}", "n_reference": D.shape[1]})


def coverage(S, R, distance: str = "chamfer", *, n_boot: int = N_BOOT,
             seed: int = 0) -> Estimate:
    """Fraction of R that is the nearest reference of some s ∈ S; bootstrap stderr over S."""
    boot_count(n_boot)
    D = pairwise_distances(S, R, distance).numpy()
    nearest = D.argmin(axis=1)
    value = np.unique(nearest).size / D.shape[1]
    rng = np.random.default_rng(seed)
    replicates = [np.unique(nearest[rng.integers(0, nearest.size, nearest.size)]).size
                  / D.shape[1] for _ in range(n_boot)]
    return Estimate(value, float(np.std(replicates, ddof=1)), D.shape[0],
                    extra={"metric": f"coverage_{distance}", "n_reference": D.shape[1]})


def one_nna(S, R, distance: str = "chamfer") -> Estimate:
    """Leave-one-out 1-NN accuracy over S ∪ R (0.5 ideal); extra: accuracy on each set."""
    S, R = _as_clouds(S, "S", 3), _as_clouds(R, "R", 3)
    n, m = S.shape[0], R.shape[0]
    if n + m < 3:
        raise UserError("one_nna needs at least 3 clouds in S and R together")
    union = torch.cat([S, R]) if S.shape[1:] == R.shape[1:] else None
    if union is not None:
        D = pairwise_distances(union, union, distance)
    else:   # clouds of different sizes (chamfer): assemble the blocks
        D = torch.cat([torch.cat([pairwise_distances(S, S, distance),
                                  pairwise_distances(S, R, distance)], 1),
                       torch.cat([pairwise_distances(R, S, distance),
                                  pairwise_distances(R, R, distance)], 1)])
    D.fill_diagonal_(float("inf"))
    label = torch.arange(n + m) >= n   # True for reference clouds
    correct = (label[D.argmin(dim=1)] == label).double()
    accuracy = float(correct.mean())
    stderr = (accuracy * (1 - accuracy) / (n + m)) ** 0.5
    interval = (max(0.0, accuracy - 1.96 * stderr), min(1.0, accuracy + 1.96 * stderr))
    return Estimate(accuracy, stderr, n + m, ci95=interval, extra={"metric": f"1nna_{distance}",
                                      "accuracy_S": float(correct[:n].mean()),
                                      "accuracy_R": float(correct[n:].mean()),
                                      "null_expectation": one_nna_null_expectation(n, m)})


def one_nna_null_expectation(n: int, m: int) -> float:
    """Expected 1-NNA of n and m clouds drawn independently from one law (module docstring)."""
    return (n * (n - 1) + m * (m - 1)) / ((n + m) * (n + m - 1))


_SET_METRICS = {"mmd": mmd, "coverage": coverage, "one_nna": one_nna}


def with_floor(metric: str | Callable, S, R, reference_split=None, *,
               distance: str = "chamfer", seed: int = 0) -> tuple[Estimate, Estimate]:
    """(metric(S', R_b), floor = metric(R_a, R_b)) at matched sizes |S'| = |R_a|.

    `reference_split` is (indices of R_a, indices of R_b), or None for two random halves of R
    (seeded by `seed`). S' is a random subset of S of |R_a| rows (R_a is cut to |S| if S is
    smaller), so the floor shows what a perfect model would score at the same sizes. `metric`
    is "mmd", "coverage", "one_nna" or a function (S, R) -> Estimate.
    """
    if callable(metric):
        function = metric
    elif metric in _SET_METRICS:
        function = lambda s, r: _SET_METRICS[metric](s, r, distance)  # noqa: E731
    else:
        raise UserError(f"unknown set metric '{metric}'; known: {', '.join(_SET_METRICS)}")
    S, R = _as_clouds(S, "S", 3), _as_clouds(R, "R", 3)
    generator = torch.Generator().manual_seed(int(seed))
    if reference_split is None:
        order = torch.randperm(R.shape[0], generator=generator)
        half = R.shape[0] // 2
        first, second = order[:half], order[half:2 * half]
    else:
        first, second = (torch.as_tensor(np.asarray(part), dtype=torch.long)
                         for part in reference_split)
    size = min(len(first), S.shape[0])
    if size < 1 or len(second) < 1:
        raise UserError(f"need at least 2 reference clouds for a floor, got {R.shape[0]}")
    chosen = S[torch.randperm(S.shape[0], generator=generator)[:size]]
    return function(chosen, R[second]), function(R[first[:size]], R[second])
