"""Exact thermodynamics of the periodic 2-D q-state Potts model: transfer matrix and enumeration.

Convention: L×M periodic lattice, states 0..q−1, U = βH = −K Σ⟨ij⟩ δ(sᵢ, sⱼ) − βh Σᵢ δ(sᵢ, 0)
with K = βJ; the bond sum runs over each site's right and down neighbour (2LM bonds; on a side
of length 2 the two bonds between the same pair both count, as for the Ising model).

Transfer matrix (strips): with rows of M sites as the q^M states, Z = Tr T^L where
T_ab = exp(−E_ab), E_ab = ½u(a) + ½u(b) + w(a, b), u the in-row part of U (bonds and field) and
w = −K·#(positions where rows a and b agree). T is symmetric, so T = V diag(λ) Vᵀ and, with
Z(t) = Σ exp(−tU) at t = 1 (T' = −E∘T, T'' = E²∘T),
    Z = Σ λᵢ^L,    Z' = L Σᵢ λᵢ^{L−1} Pᵢᵢ,
    Z'' = L Σᵢ λᵢ^{L−1} Qᵢᵢ + L Σᵢⱼ Pᵢⱼ² Σ_{k=0}^{L−2} λᵢ^k λⱼ^{L−2−k},
P = Vᵀ T' V, Q = Vᵀ T'' V; then ⟨U⟩ = −Z'/Z and Var(U) = Z''/Z − (Z'/Z)². Eigenvalues are
divided by the largest |λ| so that no power overflows.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from heatbath.core.errors import UserError
from heatbath.targets.ising_exact import IsingThermo as LatticeThermo

MAX_ENUMERATED_STATES = 2 ** 21       # q^N configurations: ~1 s, tens of MB
MAX_TRANSFER_ROW_STATES = 2187        # q^(row length) = 3^7: one dense eigh, a few seconds


def critical_beta(q: int, J: float = 1.0) -> float:
    """β_c = ln(1 + √q)/J of the square-lattice Potts model (Baxter 1973; self-duality): the
    transition is continuous for q ≤ 4 and first order for q > 4. q = 2 gives 2·K_c of Ising,
    since Potts at J is Ising at J/2."""
    return math.log1p(math.sqrt(q)) / J


def _digits(count: int, length: int, q: int) -> np.ndarray:
    """The base-q digits (count, length) of 0..count−1, least significant first."""
    index = np.arange(count, dtype=np.int64)
    return ((index[:, None] // q ** np.arange(length, dtype=np.int64)) % q).astype(np.int8)


def _check_enumerable(L: int, M: int, q: int) -> None:
    if q ** (L * M) > MAX_ENUMERATED_STATES:
        raise UserError(f"Potts enumeration is limited to {MAX_ENUMERATED_STATES} states; "
                        f"{L}x{M} with q={q} has {q}^{L * M}")


@lru_cache(maxsize=4)
def potts_state_sums(L: int, M: int, q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matching bonds Σ⟨ij⟩δ(sᵢ,sⱼ), zero count Σᵢδ(sᵢ,0) and the largest count of one state,
    max_k Σᵢδ(sᵢ,k), of every state, index = Σₙ sₙ qⁿ.

    Site n sits at row n // M, column n % M. Computed in chunks of 2^16 states."""
    _check_enumerable(L, M, q)
    n_states, chunk = q ** (L * M), 2 ** 16
    matches, zeros, largest = (np.empty(n_states, dtype=np.int16) for _ in range(3))
    powers = q ** np.arange(L * M, dtype=np.int64)
    for start in range(0, n_states, chunk):
        index = np.arange(start, min(start + chunk, n_states), dtype=np.int64)
        states = ((index[:, None] // powers) % q).astype(np.int8).reshape(-1, L, M)
        right = (states == np.roll(states, -1, axis=2)).sum(axis=(1, 2), dtype=np.int32)
        down = (states == np.roll(states, -1, axis=1)).sum(axis=(1, 2), dtype=np.int32)
        counts = np.stack([(states == k).sum(axis=(1, 2)) for k in range(q)])
        done = slice(start, start + len(index))
        matches[done], zeros[done], largest[done] = right + down, counts[0], counts.max(0)
    return matches, zeros, largest


@lru_cache(maxsize=4)
def _density_of_states(L: int, M: int, q: int) -> tuple[np.ndarray, ...]:
    """Distinct (matching bonds, zero count, largest count) triples and how many states have
    each."""
    triples, counts = np.unique(np.stack(potts_state_sums(L, M, q), axis=1), axis=0,
                                return_counts=True)
    return (*triples.T.astype(np.float64), counts)


def potts_enumerate_thermo(L: int, M: int, q: int, K: float,
                           beta_h: float = 0.0) -> LatticeThermo:
    """Brute force over all q^(LM) states: exact ln Z, ⟨U⟩, Var(U), any K and βh."""
    matches, zeros, _, counts = _density_of_states(L, M, q)
    energy = -K * matches - beta_h * zeros
    log_weight = np.log(counts) - energy
    top = log_weight.max()
    weights = np.exp(log_weight - top)
    prob = weights / weights.sum()
    mean = float(np.sum(prob * energy))
    return LatticeThermo(float(top + math.log(weights.sum())), mean,
                         float(np.sum(prob * (energy - mean) ** 2)), L * M)


def potts_enumerate_profiles(L: int, M: int, q: int, K: float, beta_h: float = 0.0) -> dict:
    """Exact βF(v) = −ln P(v) of the order parameter m = (q·largest/N − 1)/(q − 1) and of U/N
    over their distinct values, by enumeration: {name: (values, beta_f)}."""
    matches, zeros, largest, counts = _density_of_states(L, M, q)
    sites = L * M
    energy = -K * matches - beta_h * zeros
    log_weight = np.log(counts) - energy
    log_z = float(np.logaddexp.reduce(log_weight))
    order = (q * largest / sites - 1) / (q - 1)
    out = {}
    for name, values in (("m", order), ("energy_per_site", energy / sites)):
        support, index = np.unique(np.round(values, 9) + 0.0, return_inverse=True)
        grouped = np.full(len(support), -np.inf)
        np.logaddexp.at(grouped, index, log_weight)
        out[name] = (support, log_z - grouped)
    return out


def potts_enumerate_sample(L: int, M: int, q: int, K: float, beta_h: float, n: int,
                           generator: torch.Generator) -> torch.Tensor:
    """n exact draws (n, L, M) of state indices (float64), by sampling the state index."""
    matches, zeros, _ = potts_state_sums(L, M, q)
    log_weight = torch.from_numpy(K * matches.astype(np.float64) + beta_h * zeros)
    index = torch.multinomial(torch.softmax(log_weight, dim=0), n, replacement=True,
                              generator=generator)
    powers = q ** torch.arange(L * M)
    return ((index[:, None] // powers) % q).double().reshape(n, L, M)


def transfer_row_length(L: int, M: int, q: int) -> int | None:
    """The side the transfer matrix runs along as its row (the shorter one), or None when its
    q^side row states exceed MAX_TRANSFER_ROW_STATES."""
    side = min(L, M)
    return side if q ** side <= MAX_TRANSFER_ROW_STATES else None


def _row_pair_energies(width: int, q: int, K: float, beta_h: float) -> np.ndarray:
    """E_ab (q^w, q^w): half of each row's own U plus the bonds between rows a and b."""
    digits = _digits(q ** width, width, q)
    in_row = -K * (digits == np.roll(digits, -1, axis=1)).sum(1) - beta_h * (digits == 0).sum(1)
    agree = np.zeros((len(digits), len(digits)))
    for column in digits.T:
        agree += column[:, None] == column[None, :]
    return 0.5 * in_row[:, None] + 0.5 * in_row[None, :] - K * agree


def potts_transfer_thermo(L: int, M: int, q: int, K: float,
                          beta_h: float = 0.0) -> LatticeThermo:
    """Exact ln Z, ⟨U⟩, Var(U) by the row transfer matrix (see the module doc), any K and βh."""
    width = transfer_row_length(L, M, q)
    if width is None:
        raise UserError(f"the Potts transfer matrix is limited to {MAX_TRANSFER_ROW_STATES} row "
                        f"states; {L}x{M} with q={q} needs {q}^{min(L, M)}")
    length = L * M // width                    # how many rows the trace runs over
    energy = _row_pair_energies(width, q, K, beta_h)
    shift = energy.min()                       # T = e^{−shift}·exp(−(E − shift)): no overflow
    transfer = np.exp(-(energy - shift))
    eigenvalues, vectors = np.linalg.eigh(transfer)
    top = np.abs(eigenvalues).max()
    lam = eigenvalues / top
    first = vectors.T @ (-energy * transfer) @ vectors
    second = vectors.T @ (energy ** 2 * transfer) @ vectors
    z = np.sum(lam ** length)
    z1 = length * np.sum(lam ** (length - 1) * np.diag(first)) / top
    pair_sums = sum(np.outer(lam ** k, lam ** (length - 2 - k)) for k in range(length - 1))
    z2 = length * (np.sum(lam ** (length - 1) * np.diag(second)) / top
                   + np.sum(first ** 2 * pair_sums) / top ** 2)
    log_z = length * (math.log(top) - shift) + math.log(z)
    mean = -z1 / z
    return LatticeThermo(float(log_z), float(mean), float(z2 / z - mean ** 2), L * M)
