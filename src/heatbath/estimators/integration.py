"""Thermodynamic integration over inverse temperature: ln Z(β_end) − ln Z(β_start) = −∫⟨H⟩_β dβ.

Since d ln Z / dβ = −⟨H⟩_β, measured mean energies on a grid of β give a log-partition-function
difference by quadrature. The rule is composite Simpson on a possibly non-uniform grid: each pair
of intervals [x₀, x₁, x₂] is integrated by the parabola through its three points (error O(h⁴)
per pair on smooth integrands, exact for quadratics on any grid and for cubics on uniform ones).
With an odd number of intervals the last one is integrated by the parabola through the last
three points, restricted to that interval (the same correction scipy.integrate.simpson uses).
Two points fall back to the trapezoid rule.

The rule is linear, Σᵢ cᵢ ⟨H⟩ᵢ, so the standard error is sqrt(Σᵢ cᵢ² σᵢ²) for independent
measurements at each β. On very uneven grids (one interval more than twice its neighbour) some
cᵢ are negative; the rule stays exact for quadratics but inflates that error.
"""

from __future__ import annotations

import math

import numpy as np

from heatbath.core.errors import UserError
from heatbath.core.estimate import Estimate
from heatbath.estimators._inputs import vector

__all__ = ["thermodynamic_integration", "simpson_weights"]


def thermodynamic_integration(betas, mean_energies, stderrs) -> Estimate:
    """ln Z(betas[-1]) − ln Z(betas[0]) for Z(β) = ∫ exp(−β H(x)) dx, from ⟨H⟩_β at each β.

    `betas` must be strictly monotone (increasing or decreasing; H in units of 1/β);
    `stderrs` are the standard errors of the mean energies, taken as independent. The
    quadrature coefficients are `simpson_weights(betas)`.
    """
    beta = vector(betas, "betas", min_length=2)
    energy = vector(mean_energies, "mean_energies", min_length=2)
    sigma = vector(stderrs, "stderrs", min_length=2)
    if not (energy.size == sigma.size == beta.size):
        raise UserError(f"betas, mean_energies and stderrs need equal lengths, got {beta.size}, "
                        f"{energy.size} and {sigma.size}")
    if np.any(sigma < 0.0):
        raise UserError("stderrs must be >= 0")
    weights = simpson_weights(beta)
    value = -float(weights @ energy)
    stderr = math.sqrt(float(np.sum((weights * sigma) ** 2)))
    return Estimate(value, stderr, beta.size)


def simpson_weights(x) -> np.ndarray:
    """Coefficients cᵢ with Σᵢ cᵢ yᵢ ≈ ∫ y dx over the grid x (composite non-uniform Simpson)."""
    grid = vector(x, "grid", min_length=2)
    steps = np.diff(grid)
    if not (np.all(steps > 0.0) or np.all(steps < 0.0)):
        raise UserError("the integration grid must be strictly increasing or strictly decreasing")
    weights = np.zeros(grid.size)
    if grid.size == 2:
        weights[:] = 0.5 * steps[0]
        return weights
    n_pairs = steps.size // 2
    for pair in range(n_pairs):
        weights[2 * pair:2 * pair + 3] += _pair_weights(steps[2 * pair], steps[2 * pair + 1])
    if steps.size % 2 == 1:
        weights[-3:] += _last_interval_weights(steps[-2], steps[-1])
    return weights


def _pair_weights(h0: float, h1: float) -> np.ndarray:
    """∫ over [x₀, x₂] of the parabola through (x₀, x₁, x₂) with x₁ − x₀ = h0, x₂ − x₁ = h1."""
    total = h0 + h1
    return (total / 6.0) * np.array([2.0 - h1 / h0, total**2 / (h0 * h1), 2.0 - h0 / h1])


def _last_interval_weights(h0: float, h1: float) -> np.ndarray:
    """∫ over the last interval [x₁, x₂] only, of the parabola through the last three points."""
    return np.array([-h1**3 / (6.0 * h0 * (h0 + h1)),
                     (h1**2 + 3.0 * h0 * h1) / (6.0 * h0),
                     (2.0 * h1**2 + 3.0 * h0 * h1) / (6.0 * (h0 + h1))])
