"""Exact thermodynamics of the periodic 2-D Ising model: Kaufman's formula and enumeration.

Convention: L×M periodic lattice, U = βH = −K Σ⟨ij⟩ sᵢsⱼ − βh Σᵢ sᵢ with K = βJ; the bond sum
runs over each site's right and down neighbour (so 2LM bonds; on a side of length 2 the two
bonds between the same pair both count, as in the transfer-matrix derivation).

Kaufman (1949), for h = 0:
    Z = ½ (2 sinh 2K)^{LM/2} [Π_r 2cosh(M g_{2r+1}/2) + Π_r 2sinh(M g_{2r+1}/2)
                              + Π_r 2cosh(M g_{2r}/2)   + Π_r 2sinh(M g_{2r}/2)],   r = 0..L−1,
    cosh g_k = cosh 2K coth 2K − cos(πk/L) (k ≥ 1), and the signed g₀ = 2K + ln tanh K.
The four products overflow float64 beyond ~30×30, so ln Z is assembled from signs and
log-magnitudes (only the g₀ factor can be negative, below K_c). ⟨U⟩ and Var(U) come from
d/dK and d²/dK² of ln Z, taken by mpmath's high-precision numerical differentiation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import mpmath
import numpy as np
import torch

from heatbath.core.errors import UserError

K_CRITICAL = 0.5 * math.log1p(math.sqrt(2.0))   # 0.44068679350977...
MAX_ENUMERATED_SPINS = 20                        # 2^20 states: ~0.3 s, a few MB
_MP_DIGITS = 40


@dataclass(frozen=True)
class IsingThermo:
    """Exact results in kT units: ln Z, ⟨U⟩ and Var(U) (= heat capacity C/k_B), all totals."""

    log_z: float
    mean_energy: float
    energy_variance: float
    n_sites: int


def _log_2cosh(t: np.ndarray) -> np.ndarray:
    a = np.abs(t)
    return a + np.log1p(np.exp(-2.0 * a))


def _log_abs_2sinh(t: np.ndarray) -> np.ndarray:
    """log|2 sinh t|; −inf at t = 0 (that product then vanishes)."""
    a = np.abs(t)
    with np.errstate(divide="ignore"):
        return a + np.log(-np.expm1(-2.0 * a))


def _kaufman_gammas(L: int, K: float) -> np.ndarray:
    """g_k for k = 0..2L−1 in float64; g_0 signed."""
    k = np.arange(1, 2 * L)
    # cosh g = c − cos(πk/L) with c = cosh 2K coth 2K = s + 1/s, s = sinh 2K. Writing it as 1 + δ,
    # δ = (s − 1)²/s + 2 sin²(πk/2L) ≥ 0 is a sum of non-negative terms, and
    # acosh(1 + δ) = log1p(δ + sqrt(δ(δ + 2))) keeps full precision near K_c and small k on large
    # lattices, where acosh(c − cos) would lose digits to cancellation.
    s = math.sinh(2 * K)
    delta = (s - 1.0) ** 2 / s + 2.0 * np.sin(np.pi * k / (2 * L)) ** 2
    rest = np.log1p(delta + np.sqrt(delta * (delta + 2.0)))
    return np.concatenate([[2 * K + math.log(math.tanh(K))], rest])


def _signed_log_sum(signs: np.ndarray, logs: np.ndarray) -> float:
    """log Σ signᵢ exp(logᵢ) for a positive total, without overflow."""
    top = np.max(logs)
    total = float(np.sum(signs * np.exp(logs - top)))
    return top + math.log(total)


def kaufman_log_z(L: int, M: int, K: float) -> float:
    """ln Z of the h = 0 periodic L×M Ising model at K = βJ > 0, in float64."""
    g = _kaufman_gammas(L, K)
    odd, even = 0.5 * M * g[1::2], 0.5 * M * g[0::2]
    logs = np.array([_log_2cosh(odd).sum(), _log_abs_2sinh(odd).sum(),
                     _log_2cosh(even).sum(), _log_abs_2sinh(even).sum()])
    signs = np.array([1.0, 1.0, 1.0, np.sign(g[0]) if g[0] != 0 else 0.0])
    finite = np.isfinite(logs)
    bracket = _signed_log_sum(signs[finite], logs[finite])
    return float(-math.log(2.0) + 0.5 * L * M * math.log(2 * math.sinh(2 * K)) + bracket)


def _kaufman_log_z_mp(L: int, M: int, K):
    """Same formula in mpmath (no overflow there); used for the K-derivatives."""
    c = mpmath.cosh(2 * K) / mpmath.tanh(2 * K)
    g = [2 * K + mpmath.log(mpmath.tanh(K))]
    g += [mpmath.acosh(c - mpmath.cos(mpmath.pi * k / L)) for k in range(1, 2 * L)]
    odd, even = g[1::2], g[0::2]
    products = [mpmath.fprod(2 * f(M * x / 2) for x in xs)
                for xs in (odd, even) for f in (mpmath.cosh, mpmath.sinh)]
    return mpmath.log(mpmath.fsum(products) / 2) + L * M * mpmath.log(2 * mpmath.sinh(2 * K)) / 2


def _check_kaufman(L: int, M: int, K: float) -> float:
    """Kaufman needs K > 0; for K < 0 on even L, M the sublattice flip maps K to −K."""
    if K < 0 and L % 2 == 0 and M % 2 == 0:
        return -K
    if K <= 0:
        raise UserError(f"Kaufman's formula here needs K = beta*J > 0 (or K < 0 with L and M "
                        f"even), got K={K} on {L}x{M}; use enumeration for tiny lattices")
    return K


def kaufman_thermo(L: int, M: int, K: float) -> IsingThermo:
    """ln Z, ⟨U⟩ = −K d lnZ/dK and Var(U) = K² d² lnZ/dK² for h = 0 (K = 0: free spins)."""
    n_sites = L * M
    if K == 0:
        return IsingThermo(n_sites * math.log(2.0), 0.0, 0.0, n_sites)
    positive_k = _check_kaufman(L, M, K)
    with mpmath.workdps(_MP_DIGITS):
        k_mp = mpmath.mpf(positive_k)
        bond_mean = mpmath.diff(lambda k: _kaufman_log_z_mp(L, M, k), k_mp, 1)
        bond_var = mpmath.diff(lambda k: _kaufman_log_z_mp(L, M, k), k_mp, 2)
        mean_energy = float(-k_mp * bond_mean)
        variance = float(k_mp ** 2 * bond_var)
    return IsingThermo(kaufman_log_z(L, M, positive_k), mean_energy, variance, n_sites)


def _check_enumerable(L: int, M: int) -> None:
    if L * M > MAX_ENUMERATED_SPINS:
        raise UserError(f"enumeration is limited to {MAX_ENUMERATED_SPINS} spins (2^N states); "
                        f"{L}x{M} has {L * M}")


@lru_cache(maxsize=4)
def state_sums(L: int, M: int) -> tuple[np.ndarray, np.ndarray]:
    """Bond sum Σ⟨ij⟩sᵢsⱼ and magnetisation Σsᵢ of every state, index = Σₙ bitₙ 2ⁿ, sₙ = 1 − 2 bitₙ.

    Spin n sits at row n // M, column n % M. Computed in chunks of 2^16 states.
    """
    _check_enumerable(L, M)
    n_states, chunk = 2 ** (L * M), 2 ** 16
    bonds = np.empty(n_states, dtype=np.int16)
    mags = np.empty(n_states, dtype=np.int16)
    shifts = np.arange(L * M, dtype=np.int64)
    for start in range(0, n_states, chunk):
        index = np.arange(start, min(start + chunk, n_states), dtype=np.int64)
        spins = (1 - 2 * ((index[:, None] >> shifts) & 1)).astype(np.int8).reshape(-1, L, M)
        right = (spins * np.roll(spins, -1, axis=2)).sum(axis=(1, 2), dtype=np.int32)
        down = (spins * np.roll(spins, -1, axis=1)).sum(axis=(1, 2), dtype=np.int32)
        bonds[start:start + len(index)] = right + down
        mags[start:start + len(index)] = spins.sum(axis=(1, 2), dtype=np.int32)
    return bonds, mags


@lru_cache(maxsize=4)
def _density_of_states(L: int, M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (bond sum, magnetisation) pairs and how many states have each."""
    bonds, mags = state_sums(L, M)
    pairs, counts = np.unique(np.stack([bonds, mags], axis=1), axis=0, return_counts=True)
    return pairs[:, 0].astype(np.float64), pairs[:, 1].astype(np.float64), counts


def enumerate_thermo(L: int, M: int, K: float, beta_h: float = 0.0) -> IsingThermo:
    """Brute force over all 2^(LM) states (LM ≤ 20): exact ln Z, ⟨U⟩, Var(U), any K and βh."""
    bonds, mags, counts = _density_of_states(L, M)
    energy = -K * bonds - beta_h * mags
    log_weight = np.log(counts) - energy
    top = log_weight.max()
    weights = np.exp(log_weight - top)
    log_z = float(top + math.log(weights.sum()))
    prob = weights / weights.sum()
    mean = float(np.sum(prob * energy))
    return IsingThermo(log_z, mean, float(np.sum(prob * (energy - mean) ** 2)), L * M)


def enumerate_profiles(L: int, M: int, K: float, beta_h: float = 0.0) -> dict:
    """Exact βF(v) = −ln P(v) of the mean spin m and of U/N (U = −K·bonds − βh·Σs, in kT)
    over their distinct values, by enumeration: {name: (values, beta_f)}."""
    bonds, mags, counts = _density_of_states(L, M)
    sites = L * M
    energy = -K * bonds - beta_h * mags
    log_weight = np.log(counts) - energy
    log_z = float(np.logaddexp.reduce(log_weight))
    out = {}
    for name, values in (("m", mags / sites), ("energy_per_site", energy / sites)):
        support, index = np.unique(np.round(values, 9) + 0.0, return_inverse=True)
        grouped = np.full(len(support), -np.inf)
        np.logaddexp.at(grouped, index, log_weight)
        out[name] = (support, log_z - grouped)
    return out


def enumerate_sample(L: int, M: int, K: float, beta_h: float, n: int,
                     generator: torch.Generator) -> torch.Tensor:
    """n exact draws (n, L, M) of ±1 spins (float64), by sampling the state index."""
    bonds, mags = state_sums(L, M)
    log_weight = torch.from_numpy(K * bonds.astype(np.float64) + beta_h * mags)
    prob = torch.softmax(log_weight, dim=0)
    index = torch.multinomial(prob, n, replacement=True, generator=generator)
    bits = (index[:, None] >> torch.arange(L * M)) & 1
    return (1.0 - 2.0 * bits.double()).reshape(n, L, M)
