"""Linear forward processes in phase space (position x, velocity v): CLD and PSLD.

Each coordinate of the data carries its own velocity, and (x, v) follows the linear SDE

    du = β(s)·A·u ds + √(β(s)·D) dW,   u = (x, v),   s ∈ [0, 1] forward (data at s = 0),

with a 2×2 drift matrix A and a diagonal diffusion D = diag(d_x, d_v) shared by every
coordinate. Because β only rescales time, everything depends on b = B(s) = ∫₀ˢ β:

    transition   Φ(b) = exp(b·A)                   (closed form, Cayley–Hamilton below)
    noise        Q(b) = ∫₀ᵇ Φ(r)·D·Φ(r)ᵀ dr         (Gauss–Legendre; no cancellation at small b)
    kernel       u_s | u₀ ~ N(Φ·u₀, Φ·Σ₀·Φᵀ + Q)

Hybrid score matching (Dockhorn et al. 2022) conditions on the data x₀ only: v₀ ~ N(0, γM)
is folded into Σ₀ = diag(0, γM). The stationary law N(0, Σ∞) solves A·Σ∞ + Σ∞·Aᵀ + D = 0.

    CLD   A = [[0, 1/M], [−1, −Γ/M]], D = diag(0, 2Γ), Γ² = 4M (critical damping)
    PSLD  A = ½·[[−Γ, 1/M], [−1, −ν]], D = diag(Γ, M·ν), 1/M = (Γ − ν)²/4 (Pandey & Mandt 2023)

Both have Σ∞ = diag(1, M). heatbath's time t runs from noise to data: s = 1 − t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from heatbath.core.errors import UserError

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
DATA_END = 1e-3     # training and sampling stop at s = 1e-3 (CLD's sampling ε)
# The samplers' default grid (`samplers.grids.quadratic_times`). PSLD digits model, 3000
# steps, FD² at 20 / 50 NFE: splitting 97.5 / 11.0 on equal t steps, 12.9 / 4.9 quadratic;
# conjugate 24.9 / 10.7 against 17.9 / 9.8 (`benchmarks/bench_fd_nfe.py`'s model).
SAMPLING_GRID = "quadratic"


def expm_2x2(matrix: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """exp(b·A) for one 2×2 A and a batch of b, (len(b), 2, 2) float64.

    With m = tr(A)/2 and q = m² − det(A), (A − m)² = q·I, so
    exp(bA) = e^{bm}·[c(b)·I + s(b)·(A − m)], c = cosh(b√q), s = sinh(b√q)/√q (cos/sin for
    q < 0); a series where b²q is small covers critical damping (q = 0) without 0/0.
    """
    a = matrix.to(torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(-1)
    m = 0.5 * (a[0, 0] + a[1, 1])
    q = float(m ** 2 - torch.linalg.det(a))
    x = b * b * q
    if abs(q) * _largest(b) ** 2 < 1e-3:
        c = 1 + x / 2 + x ** 2 / 24 + x ** 3 / 720 + x ** 4 / 40320
        s = b * (1 + x / 6 + x ** 2 / 120 + x ** 3 / 5040 + x ** 4 / 362880)
    elif q > 0:
        root = math.sqrt(q)
        c, s = torch.cosh(root * b), torch.sinh(root * b) / root
    else:
        root = math.sqrt(-q)
        c, s = torch.cos(root * b), torch.sin(root * b) / root
    eye = torch.eye(2, dtype=torch.float64)
    shifted = a - m * eye
    return torch.exp(m * b)[:, None, None] * (c[:, None, None] * eye + s[:, None, None] * shifted)


def _largest(b: torch.Tensor) -> float:
    return float(b.abs().max()) if b.numel() else 0.0


def stationary_covariance(drift: torch.Tensor, diffusion: torch.Tensor) -> torch.Tensor:
    """Σ∞ solving A·Σ + Σ·Aᵀ + D = 0 (three unknowns of a symmetric 2×2)."""
    a = drift.to(torch.float64)
    (a11, a12), (a21, a22) = a.tolist()
    lyapunov = torch.tensor([[2 * a11, 2 * a12, 0.0],
                             [a21, a11 + a22, a12],
                             [0.0, 2 * a21, 2 * a22]], dtype=torch.float64)
    d = diffusion.to(torch.float64)
    xx, xv, vv = torch.linalg.solve(lyapunov, -torch.stack([d[0], d[0] * 0, d[1]])).tolist()
    return torch.tensor([[xx, xv], [xv, vv]], dtype=torch.float64)


def noise_covariance(drift: torch.Tensor, diffusion: torch.Tensor, b: torch.Tensor,
                     panels: int | None = None) -> torch.Tensor:
    """Q(b) = ∫₀ᵇ exp(rA)·D·exp(rA)ᵀ dr, (len(b), 2, 2): composite 16-point Gauss–Legendre
    over unit-length panels, exact to float64 rounding for these smooth integrands."""
    b = torch.as_tensor(b, dtype=torch.float64).reshape(-1)
    panels = panels or max(1, math.ceil(_largest(b)))
    d = torch.diag(diffusion.to(torch.float64))
    nodes = torch.from_numpy(_NODES)
    weights = torch.from_numpy(_WEIGHTS)
    total = torch.zeros(len(b), 2, 2, dtype=torch.float64)
    for k in range(panels):
        lo, hi = b * k / panels, b * (k + 1) / panels
        r = (0.5 * (hi - lo)[:, None] * nodes + 0.5 * (hi + lo)[:, None])      # (B, n)
        phi = expm_2x2(drift, r.reshape(-1)).reshape(len(b), len(nodes), 2, 2)
        integrand = phi @ d @ phi.transpose(-1, -2)
        total = total + 0.5 * (hi - lo)[:, None, None] * (weights[None, :, None, None]
                                                          * integrand).sum(1)
    return total


@dataclass(frozen=True)
class PhaseProcess:
    """One linear phase-space SDE: drift A and diffusion D per unit β, β(s) linear from
    beta_min to beta_max, mass M (the stationary velocity variance) and v₀ ~ N(0, γ·M)."""

    name: str
    drift: tuple[tuple[float, float], tuple[float, float]]
    diffusion: tuple[float, float]
    mass: float
    gamma: float
    beta_min: float
    beta_max: float

    @property
    def a(self) -> torch.Tensor:
        return torch.tensor(self.drift, dtype=torch.float64)

    @property
    def d(self) -> torch.Tensor:
        return torch.tensor(self.diffusion, dtype=torch.float64)

    def beta(self, s: torch.Tensor) -> torch.Tensor:
        return self.beta_min + s * (self.beta_max - self.beta_min)

    def integrated_beta(self, s: torch.Tensor) -> torch.Tensor:
        return self.beta_min * s + 0.5 * s * s * (self.beta_max - self.beta_min)

    def beta_between(self, s_from: float, s_to: float) -> float:
        """∫ β over forward times [s_to, s_from]: the time-changed length of a reverse step."""
        ends = self.integrated_beta(torch.tensor([s_from, s_to], dtype=torch.float64))
        return float(ends[0] - ends[1])

    @property
    def stationary(self) -> torch.Tensor:
        return stationary_covariance(self.a, self.d)

    @property
    def initial(self) -> torch.Tensor:
        """Σ₀ of hybrid score matching: x₀ given, v₀ ~ N(0, γM)."""
        return torch.diag(torch.tensor([0.0, self.gamma * self.mass], dtype=torch.float64))

    @property
    def noisy(self) -> tuple[bool, bool]:
        """Which components receive noise (and so need a score): (x, v)."""
        return self.diffusion[0] > 0, self.diffusion[1] > 0

    def kernel(self, s: torch.Tensor, initial: torch.Tensor | None = None):
        """(Φ, Σ) of u_s | u₀ for a batch of forward times s; Σ₀ = `initial` (HSM default)."""
        b = self.integrated_beta(torch.as_tensor(s, dtype=torch.float64).reshape(-1))
        phi = expm_2x2(self.a, b)
        sigma0 = self.initial if initial is None else initial
        return phi, phi @ sigma0 @ phi.transpose(-1, -2) + noise_covariance(self.a, self.d, b)

    def describe(self) -> dict:
        return {"name": self.name, "drift": [list(r) for r in self.drift],
                "diffusion": list(self.diffusion), "mass": self.mass, "gamma": self.gamma,
                "beta_min": self.beta_min, "beta_max": self.beta_max}


def cld(mass: float = 0.25, gamma: float = 0.04, beta: float = 4.0,
        beta_max: float | None = None) -> PhaseProcess:
    """Critically-damped Langevin (Dockhorn, Vahdat & Kreis 2022): Γ = 2√M, β = 4."""
    _positive(mass=mass, gamma=gamma, beta=beta)
    friction = 2.0 * math.sqrt(mass)
    return PhaseProcess("cld", ((0.0, 1.0 / mass), (-1.0, -friction / mass)),
                        (0.0, 2.0 * friction), mass, gamma, beta,
                        beta if beta_max is None else beta_max)


def psld(friction: float = 0.01, nu: float = 4.01, gamma: float = 0.04, beta: float = 8.0,
         beta_max: float | None = None) -> PhaseProcess:
    """Phase-space Langevin (Pandey & Mandt 2023): noise in x (Γ) and v (ν), 1/M = (Γ − ν)²/4."""
    _positive(nu=nu, gamma=gamma, beta=beta)
    if friction < 0 or friction == nu:
        raise UserError(f"psld needs path.psld_friction >= 0 and != path.psld_nu "
                        f"(1/M = (Γ − ν)²/4 > 0), got Γ = {friction}, ν = {nu}")
    inv_mass = (friction - nu) ** 2 / 4
    mass = 1.0 / inv_mass
    return PhaseProcess("psld", ((-0.5 * friction, 0.5 * inv_mass), (-0.5, -0.5 * nu)),
                        (friction, mass * nu), mass, gamma, beta,
                        beta if beta_max is None else beta_max)


def _positive(**values: float) -> None:
    for key, value in values.items():
        if not 0 < value < math.inf:
            raise UserError(f"phase-space path: {key} must be a positive number, got {value}")


PROCESSES = {"cld": cld, "psld": psld}
