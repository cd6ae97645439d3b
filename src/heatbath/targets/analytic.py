"""Gaussian targets: everything about them is known exactly, so they calibrate the estimators.

U(x) = ½ (x−μ)ᵀ Σ⁻¹ (x−μ) in kT, so p = N(μ, Σ) and
    log Z = ½ log det(2πΣ),  ⟨U⟩ = d/2,  Var(U) = d/2   (U is ½·χ²_d).
"""

from __future__ import annotations

import math

import torch

from heatbath.core.errors import UserError
from heatbath.core import checks as check
from heatbath.targets.base import EnergyTarget, ExactValues


def _mean_vector(mean, dim: int) -> torch.Tensor:
    """A scalar mean is broadcast to every coordinate; a list must have `dim` entries."""
    if isinstance(mean, (int, float)) and not isinstance(mean, bool):
        return torch.full((dim,), check.real("mean", mean, "gaussian"), dtype=torch.float64)
    try:
        vector = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"gaussian: mean must be a number or a list of {dim} numbers") from None
    if vector.numel() != dim or not torch.isfinite(vector).all():
        raise UserError(f"gaussian: mean must have {dim} finite entries, got {vector.numel()}")
    return vector


def _covariance_cholesky(cov, dim: int) -> torch.Tensor:
    """Lower Cholesky factor of a user covariance; refuses non-symmetric or indefinite ones."""
    try:
        matrix = torch.as_tensor(cov, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"gaussian: cov must be a {dim}x{dim} matrix of numbers") from None
    if matrix.shape != (dim, dim):
        raise UserError(f"gaussian: cov must have shape ({dim}, {dim}), got {tuple(matrix.shape)}")
    if not torch.allclose(matrix, matrix.T, rtol=1e-10, atol=1e-12):
        raise UserError("gaussian: cov must be symmetric")
    factor, info = torch.linalg.cholesky_ex(matrix)
    if info != 0:
        raise UserError("gaussian: cov must be positive definite "
                        "(its Cholesky factorisation failed)")
    return factor


class Gaussian(EnergyTarget):
    """N(mean, Σ) with Σ = std²·I, or a full covariance `cov` (Python API only)."""

    name = "gaussian"
    convention = ("U(x) = 1/2 (x-mu)^T Sigma^-1 (x-mu) in kT; Sigma = std^2 I unless a full cov "
                  "is given; log Z = 1/2 log det(2 pi Sigma); exact samples")

    def __init__(self, dim: int = 2, mean=0.0, std: float | None = None, cov=None) -> None:
        dim = check.integer("dim", dim, self.name, minimum=1)
        if std is not None and cov is not None:
            raise UserError(f"{self.name}: give either std or cov, not both")
        self.mean = _mean_vector(mean, dim)
        self.isotropic = cov is None
        if self.isotropic:
            std = 1.0 if std is None else check.positive("std", std, self.name)
            self.scale_tril = std * torch.eye(dim, dtype=torch.float64)
        else:
            self.scale_tril = _covariance_cholesky(cov, dim)
        mean_param = float(mean) if isinstance(mean, (int, float)) else self.mean.tolist()
        params = {"dim": dim, "mean": mean_param}
        params.update({"std": std} if self.isotropic else {"cov": "full matrix"})
        super().__init__((dim,), params)

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        diff = x.reshape(x.shape[0], -1) - self.mean.to(x)
        if self.isotropic:
            whitened = diff / self.scale_tril[0, 0].to(x)
        else:
            # Solve L z = diff instead of forming Σ⁻¹: better conditioned, same cost.
            whitened = torch.linalg.solve_triangular(self.scale_tril.to(x), diff.T, upper=False).T
        return 0.5 * whitened.pow(2).sum(dim=1)

    @property
    def exact(self) -> ExactValues:
        half_log_det = torch.log(torch.diagonal(self.scale_tril)).sum().item()
        log_z = 0.5 * self.dim * math.log(2 * math.pi) + half_log_det
        return ExactValues(log_z=log_z, energy_mean=self.dim / 2, heat_capacity=self.dim / 2)

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """x = μ + L ξ, drawn in float64 and returned in torch's default dtype."""
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        samples = self.mean + noise @ self.scale_tril.T
        return samples.to(torch.get_default_dtype())


class Harmonic(Gaussian):
    """A harmonic well U = ½ β k ‖x‖², i.e. N(0, I/(βk)); give beta or T = 1/beta."""

    name = "harmonic"
    convention = ("U(x) = 1/2 beta k |x|^2 in kT (a spring at temperature T = 1/beta); "
                  "log Z = d/2 log(2 pi / (beta k)); exact samples")

    def __init__(self, dim: int = 1, k: float = 1.0, beta: float | None = None,
                 T: float | None = None) -> None:
        k = check.positive("k (spring constant)", k, "harmonic")
        beta = check.inverse_temperature(beta, T, 1.0, "harmonic")
        super().__init__(dim=dim, mean=0.0, std=1.0 / math.sqrt(beta * k))
        self.params = {"dim": self.dim, "k": k, "beta": beta}
