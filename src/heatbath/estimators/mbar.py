"""MBAR: free energies of K states from samples of all of them (Shirts & Chodera, JCP 129, 2008).

Input is pymbar's u_kn layout: u_kn[k, n] is the reduced potential of sample n evaluated in state
k (samples of all states concatenated, in any order), and N_k[k] is how many samples came from
state k (zero allowed: such states are reweighted, not sampled).

The free energies f_k = −ln Z_k solve the self-consistent equations

    f_i = −ln Σ_n exp(−u_in) / Σ_k N_k exp(f_k − u_kn),

which are the stationarity conditions of the convex function
F(f) = Σ_n ln Σ_k N_k exp(f_k − u_kn) − Σ_k N_k f_k. We minimise F by damped Newton (exact
Hessian, f of the first sampled state pinned since F is flat along f + c) and then polish with a
few fixed-point sweeps, which also give the free energies of unsampled states.

Uncertainties: the asymptotic covariance Θ of Shirts & Chodera (Appendix D, Eq. D4), computed
from the thin SVD of the weight matrix W = U S Vᵀ as Θ = V S (I − S Vᵀ diag(N) V S)⁺ S Vᵀ —
the same formula and pseudo-inverse cutoff (1e-10) as pymbar's default "svd-ew".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from heatbath.core.errors import UserError
from heatbath.core.estimate import Estimate
from heatbath.estimators._inputs import to_float64

_MAX_NEWTON_STEPS = 200
_GRADIENT_TOLERANCE = 1e-12    # on max_k |∂F/∂f_k| / N_k
_MAX_POLISH_SWEEPS = 20
_POLISH_TOLERANCE = 1e-14
_PINV_RCOND = 1e-10            # pymbar's cutoff for the pseudo-inverse
_NEGATIVE_VARIANCE_CUTOFF = 1e-10


@dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class MBARResult:
    """MBAR free energies in units of kT.

    free_energies[k]: f_k − f_0 with its standard error. delta_f[i, j] = f_j − f_i and
    d_delta_f[i, j] its standard error (pymbar's `Delta_f`, `dDelta_f`). covariance: Θ, the
    asymptotic covariance matrix of the f_k.
    """

    free_energies: tuple[Estimate, ...]
    delta_f: np.ndarray
    d_delta_f: np.ndarray
    covariance: np.ndarray
    newton_steps: int

    def difference(self, i: int, j: int) -> Estimate:
        """f_j − f_i with its standard error."""
        n = self.free_energies[0].n
        return Estimate(float(self.delta_f[i, j]), float(self.d_delta_f[i, j]), n)


def mbar(u_kn, N_k) -> MBARResult:
    """Solve MBAR for the reduced potentials `u_kn` (K, N) and sample counts `N_k` (K,)."""
    u, counts = _check_inputs(u_kn, N_k)
    f, steps = _solve(u, counts)
    log_denominator = _log_denominator(u, counts, f)
    weights = np.exp(f[:, None] - u - log_denominator).T            # W[n, k]; columns sum to 1
    theta = _asymptotic_covariance(weights, counts)
    delta_f = f[None, :] - f[:, None]
    d_delta_f = _stderr_of_differences(theta)
    n_total = u.shape[1]
    free = tuple(Estimate(float(delta_f[0, k]), float(d_delta_f[0, k]), n_total)
                 for k in range(f.size))
    return MBARResult(free, delta_f, d_delta_f, theta, steps)


def _check_inputs(u_kn, N_k) -> tuple[np.ndarray, np.ndarray]:
    u = to_float64(u_kn, "u_kn")
    counts = to_float64(N_k, "N_k")
    if u.ndim != 2:
        raise UserError(f"u_kn must be 2-D (states, samples), got shape {u.shape}")
    if counts.shape != (u.shape[0],):
        raise UserError(f"N_k must have one count per state ({u.shape[0]}), got {counts.shape}")
    if np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise UserError("N_k must hold non-negative integers (samples drawn from each state)")
    if counts.sum() != u.shape[1]:
        raise UserError(f"N_k sums to {int(counts.sum())} but u_kn has {u.shape[1]} samples")
    if np.isnan(u).any() or np.isneginf(u).any():
        raise UserError("u_kn contains NaN or −inf; reduced potentials must be finite or +inf")
    return u, counts


def _log_denominator(u: np.ndarray, counts: np.ndarray, f: np.ndarray) -> np.ndarray:
    """ln Σ_k N_k exp(f_k − u_kn) for each sample n (unsampled states contribute nothing)."""
    sampled = counts > 0
    return logsumexp(f[sampled, None] - u[sampled], b=counts[sampled, None], axis=0)


def _fixed_point(u: np.ndarray, counts: np.ndarray, f: np.ndarray) -> np.ndarray:
    """One sweep of the self-consistent equations, for every state; pinned so f[0] = 0."""
    new = -logsumexp(-u - _log_denominator(u, counts, f), axis=1)
    return new - new[0]


def _solve(u: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Free energies of all states (f[0] = 0) and the number of Newton steps taken."""
    sampled = np.flatnonzero(counts > 0)
    f = _fixed_point(u, counts, np.zeros(counts.size))  # a cheap start, already O(1)-accurate
    f_sampled, steps = _newton(u[sampled], counts[sampled], f[sampled])
    f[sampled] = f_sampled
    for _ in range(_MAX_POLISH_SWEEPS):
        new = _fixed_point(u, counts, f)
        change = np.max(np.abs(new - f))
        f = new
        if change <= _POLISH_TOLERANCE * max(1.0, np.max(np.abs(f))):
            break
    return f, steps


def _objective(u: np.ndarray, counts: np.ndarray, f: np.ndarray) -> float:
    return float(np.sum(_log_denominator(u, counts, f)) - counts @ f)


def _newton(u: np.ndarray, counts: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, int]:
    """Minimise the MBAR objective over the sampled states (all N_k > 0), f[0] held fixed."""
    for step in range(_MAX_NEWTON_STEPS):
        p = np.exp(f[:, None] - u - _log_denominator(u, counts, f)) * counts[:, None]
        occupancy = p.sum(axis=1)                    # Σ_n P_kn; equals N_k at the solution
        gradient = occupancy - counts
        if np.max(np.abs(gradient) / counts) < _GRADIENT_TOLERANCE:
            return f, step
        hessian = np.diag(occupancy) - p @ p.T
        direction = np.zeros_like(f)
        direction[1:] = np.linalg.solve(hessian[1:, 1:], -gradient[1:])
        previous = f
        f, moved = _line_search(u, counts, f, direction, gradient)
        settled = np.max(np.abs(f - previous)) <= 1e-15 * max(1.0, np.max(np.abs(f)))
        if not moved or settled:  # no further progress is resolvable in float64: converged
            return f, step + 1
    raise UserError("MBAR did not converge: the states barely overlap. Add intermediate states "
                    "or more samples so that neighbouring states share configurations")


def _line_search(u, counts, f, direction, gradient) -> tuple[np.ndarray, bool]:
    """Backtracking (Armijo) along the Newton direction; full steps near the solution."""
    current = _objective(u, counts, f)
    slope = float(gradient @ direction)              # < 0 for a descent direction
    step = 1.0
    for _ in range(60):
        trial = f + step * direction
        value = _objective(u, counts, trial)
        if value <= current + 1e-4 * step * slope:
            return trial, True
        step *= 0.5
    # Only rounding remains: accept the full Newton step if it is tiny, else stop here.
    if np.max(np.abs(direction)) < 1e-10:
        return f + direction, False
    return f, False


def _asymptotic_covariance(weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Θ = V S (I − S Vᵀ diag(N) V S)⁺ S Vᵀ from the thin SVD of W (N × K)."""
    _, s, vt = np.linalg.svd(weights, full_matrices=False)
    v = vt.T
    vs = v * s                                       # V S
    inner = np.eye(s.size) - vs.T @ (counts[:, None] * vs)
    return vs @ np.linalg.pinv(inner, rcond=_PINV_RCOND) @ vs.T


def _stderr_of_differences(theta: np.ndarray) -> np.ndarray:
    """sqrt(Θ_ii + Θ_jj − 2Θ_ij); tiny negative variances from rounding are set to 0."""
    diagonal = np.diag(theta)
    variance = diagonal[:, None] + diagonal[None, :] - 2.0 * theta
    variance[(variance < 0.0) & (variance > -_NEGATIVE_VARIANCE_CUTOFF)] = 0.0
    np.fill_diagonal(variance, 0.0)                  # f_i − f_i is exactly 0
    with np.errstate(invalid="ignore"):              # larger negatives stay NaN, as in pymbar
        return np.sqrt(variance)
