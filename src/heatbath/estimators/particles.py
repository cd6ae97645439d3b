"""Distances between sample sets of particle configurations (N, P, d), each with a standard error.

* `energy_w2(energies_a, energies_b)`: the exact 1-D Wasserstein-2 distance between the two
  empirical energy distributions, W2 = (∫_0^1 (F_a⁻¹(u) − F_b⁻¹(u))² du)^{1/2} (the sorted
  matching when the sizes agree). The value is W2, in energy units; W2² — what iDEM logs as
  POT's `emd2_1d` with its default squared cost — is `extra["w2_squared"]`. With
  `log_weights_a`, the first distribution is the reweighted one, Σ w_i δ(U_i) with
  self-normalised w (a Boltzmann generator's samples after reweighting): the same W2 between
  quantile functions, now of a weighted empirical CDF (`extra["kish_ess"]` is its Kish n_eff).
* `distance_w2(xa, xb)`: the same W2 between the pooled histograms of all interparticle
  distances ‖x_i − x_j‖, i < j, of every configuration (N·P(P−1)/2 values per set).
* `equivariant_emd(xa, xb)`: the exact earth mover's distance min_γ Σ_ij γ_ij C_ij over
  couplings γ of the uniform weights (1/N, 1/M), with C_ij = aligned_distance(xa_i, xb_j) from
  `heatbath.spaces.align` (per pair: Hungarian permutation, then Kabsch rotation, then the
  Euclidean norm over all P·d coordinates, as pinned in REFERENCES.md), solved by POT's
  `ot.emd2`. `extra["eq_w2"]` is the matching W2, (min_γ Σ γ_ij C_ij²)^{1/2} (iDEM's "Eq-W2").

Standard errors: the bootstrap standard deviation over configurations (both sets resampled
independently, `n_boot` replicates, a fixed generator seeded by `seed`); for the pooled
distances whole configurations are resampled, since the pairs within one configuration are
correlated. Resampling adds noise, so bootstrap W2s sit above the value: read the stderr as a
scale, not as a bias correction.

The alignment is `align`'s default search (the pinned Hungarian-then-Kabsch step, alternated
from several starts, never worse than one pass); pass `search=False` for the single pass.
"""

from __future__ import annotations

import numpy as np
import torch

from heatbath.core.errors import UserError
from heatbath.core.estimate import Estimate
from heatbath.estimators._inputs import boot_count, finite_tensor
from heatbath.estimators.distances import w2_squared_1d, weighted_w2_squared_1d
from heatbath.spaces.align import aligned_distance
from heatbath.spaces.particles import pair_distances

N_BOOT = 200
MAX_CONFIGURATIONS = 500   # equivariant_emd: N·M alignments, each several Hungarian solves
_BOOT_ELEMENTS = 1 << 22   # resampled values held at once (32 MiB in float64)


def _as_tensor(values, what: str, ndim: int) -> torch.Tensor:
    return finite_tensor(values, what, (ndim,), "(N,)" if ndim == 1 else "(N, P, d)",
                         min_rows=2)


def _w2_squared(values_a: torch.Tensor, values_b: torch.Tensor) -> torch.Tensor:
    """Exact W2² between the pooled rows: values (B, n·k) -> (B,)."""
    sorted_a = torch.sort(values_a, dim=-1).values.T
    sorted_b = torch.sort(values_b, dim=-1).values.T
    return w2_squared_1d(sorted_a, sorted_b).clamp_min(0.0)


def _pooled_w2(rows_a: torch.Tensor, rows_b: torch.Tensor, n_boot: int, seed: int,
               metric: str) -> Estimate:
    """W2 between the pooled values of rows_a (N, k) and rows_b (M, k), bootstrap over rows."""
    w2_sq = float(_w2_squared(rows_a.reshape(1, -1), rows_b.reshape(1, -1))[0])
    generator = torch.Generator().manual_seed(int(seed))
    n, m = rows_a.shape[0], rows_b.shape[0]
    batch = max(1, _BOOT_ELEMENTS // (rows_a.numel() + rows_b.numel()))
    replicates = []
    for start in range(0, n_boot, batch):
        size = min(batch, n_boot - start)
        index_a = torch.randint(n, (size, n), generator=generator)
        index_b = torch.randint(m, (size, m), generator=generator)
        replicates.append(_w2_squared(rows_a[index_a].reshape(size, -1),
                                      rows_b[index_b].reshape(size, -1)))
    replicates = torch.cat(replicates)
    return Estimate(w2_sq ** 0.5, float(replicates.sqrt().std()), n,
                    extra={"metric": metric, "w2_squared": w2_sq,
                           "w2_squared_stderr": float(replicates.std()), "n_reference": m})


def energy_w2(energies_a, energies_b, *, log_weights_a=None, n_boot: int = N_BOOT,
              seed: int = 0) -> Estimate:
    """Exact 1-D W2 between two energy samples; W2² in extra["w2_squared"] (module docstring).
    With `log_weights_a`, sample a is the self-normalised weighted distribution Σ w_i δ(U_i)."""
    boot_count(n_boot)
    a = _as_tensor(energies_a, "energies_a", ndim=1)
    b = _as_tensor(energies_b, "energies_b", ndim=1)
    if log_weights_a is None:
        return _pooled_w2(a[:, None], b[:, None], n_boot, seed, "energy_w2")
    return _weighted_w2(a, _normalised_weights(log_weights_a, len(a)), b, n_boot, seed)


def _normalised_weights(log_weights, n: int) -> torch.Tensor:
    lw = torch.as_tensor(log_weights, dtype=torch.float64)
    if (lw.shape != (n,) or torch.isnan(lw).any() or torch.isposinf(lw).any()
            or not torch.isfinite(lw).any()):
        raise UserError(f"log_weights_a must be {n} numbers below +inf, not NaN, at least one "
                        f"finite")
    return torch.softmax(lw, 0)


def _weighted_w2(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor, n_boot: int,
                 seed: int) -> Estimate:
    """Reweighted energy W2, bootstrap over (value, weight) pairs of a and over b."""
    ones_b = torch.ones_like(b, dtype=torch.float64)
    w2_sq = float(weighted_w2_squared_1d(a, w, b, ones_b))
    generator = torch.Generator().manual_seed(int(seed))
    replicates = []
    for _ in range(n_boot):
        ia = torch.randint(len(a), (len(a),), generator=generator)
        ib = torch.randint(len(b), (len(b),), generator=generator)
        replicates.append(weighted_w2_squared_1d(a[ia], w[ia], b[ib], ones_b))
    replicates = torch.stack(replicates).clamp_min(0.0)
    ess = float(1.0 / w.pow(2).sum())
    return Estimate(w2_sq ** 0.5, float(replicates.sqrt().std()), len(a),
                    extra={"metric": "energy_w2_reweighted", "w2_squared": w2_sq,
                           "w2_squared_stderr": float(replicates.std()), "n_reference": len(b),
                           "kish_ess": ess})


def _check_configurations(xa, xb) -> tuple[torch.Tensor, torch.Tensor]:
    xa = _as_tensor(xa, "first configuration set", ndim=3)
    xb = _as_tensor(xb, "second configuration set", ndim=3)
    if xa.shape[1:] != xb.shape[1:]:
        raise UserError(f"configurations differ in (particles, dimensions): {tuple(xa.shape[1:])}"
                        f" vs {tuple(xb.shape[1:])}")
    if xa.shape[1] < 2:
        raise UserError("configurations need at least 2 particles")
    return xa, xb


def distance_w2(xa, xb, *, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Exact W2 between the pooled interparticle-distance histograms (module docstring)."""
    boot_count(n_boot)
    xa, xb = _check_configurations(xa, xb)
    return _pooled_w2(pair_distances(xa), pair_distances(xb), n_boot, seed, "distance_w2")


def aligned_cost_matrix(xa, xb, **align_options) -> torch.Tensor:
    """C (N, M): C_ij = aligned_distance(xa_i, xb_j), one row of alignments at a time."""
    xa, xb = _check_configurations(xa, xb)
    return torch.stack([aligned_distance(row, xb, **align_options) for row in xa])


def _emd(cost: np.ndarray, weights_a: np.ndarray, weights_b: np.ndarray) -> float:
    import ot
    return float(ot.emd2(weights_a, weights_b, cost, numItermax=10_000_000))


def equivariant_emd(xa, xb, *, n_boot: int = N_BOOT, seed: int = 0,
                    max_configurations: int = MAX_CONFIGURATIONS, **align_options) -> Estimate:
    """Exact EMD between sample sets under the aligned-distance cost (module docstring).

    Costs N·M alignments (each a few Hungarian solves and SVDs; ~0.5 ms for 13 particles, so
    ~2 minutes at 500 x 500 on one core), so sets are limited to `max_configurations` (500 by
    default) each; subsample larger ones. `align_options` go to `aligned_distance`. The
    bootstrap reweights the same cost matrix (multinomial counts / N): no new alignments.
    """
    try:
        import ot  # noqa: F401
    except ImportError:
        raise UserError("equivariant_emd needs POT: pip install 'heatbath[ot]'") from None
    boot_count(n_boot)
    xa, xb = _check_configurations(xa, xb)
    n, m = xa.shape[0], xb.shape[0]
    if max(n, m) > max_configurations:
        raise UserError(f"equivariant_emd aligns all N·M pairs: at most max_configurations="
                        f"{max_configurations} per set, got {n} and {m}; subsample first")
    cost = aligned_cost_matrix(xa, xb, **align_options).numpy()
    uniform_a, uniform_b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    value = _emd(cost, uniform_a, uniform_b)
    rng = np.random.default_rng(seed)
    replicates = [_emd(cost, rng.multinomial(n, uniform_a) / n, rng.multinomial(m, uniform_b) / m)
                  for _ in range(n_boot)]
    eq_w2 = _emd(cost**2, uniform_a, uniform_b) ** 0.5
    return Estimate(value, float(np.std(replicates, ddof=1)), n,
                    extra={"metric": "equivariant_emd", "eq_w2": eq_w2, "n_reference": m})
