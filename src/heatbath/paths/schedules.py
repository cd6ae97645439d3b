"""Noise schedules of Gaussian-affine paths x_t = α(t)·x₁ + σ(t)·z.

Time runs from noise (t = 0) to data (t = 1). Each schedule gives α, σ and their time derivatives
in closed form; everything else (the EDM noise level λ = σ/α, its inverse, grids) is derived from
these four functions in `Schedule`, so a new schedule is four short methods.
"""

from __future__ import annotations

import math

import torch

from heatbath.core.errors import UserError


class ScheduleError(UserError, ValueError):
    """Impossible schedule parameters: one line for the CLI, a ValueError for library callers."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ScheduleError(message)


class Schedule:
    """α(t), σ(t), α'(t), σ'(t) on t ∈ [0, 1]; λ(t) = σ/α decreases from noise to data."""

    name = "schedule"

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_sigma(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def noise_level(self, t: torch.Tensor) -> torch.Tensor:
        """λ(t) = σ/α: the standard deviation of the noise once x is rescaled to unit signal (EDM σ)."""
        return self.sigma(t) / self.alpha(t)

    def t_from_noise_level(self, level: torch.Tensor, iterations: int = 80) -> torch.Tensor:
        """Inverse of λ(t) by vectorised bisection (λ is monotone decreasing for every schedule).

        Bisection rather than per-schedule closed forms: one generic place, exact to float64
        resolution after ~60 halvings of [0, 1].
        """
        level = torch.as_tensor(level, dtype=torch.float64)
        lo = torch.zeros_like(level)
        hi = torch.ones_like(level)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            too_noisy = self.noise_level(mid) > level
            lo = torch.where(too_noisy, mid, lo)
            hi = torch.where(too_noisy, hi, mid)
        return 0.5 * (lo + hi)

    def describe(self) -> dict:
        return {"name": self.name}


class LinearSchedule(Schedule):
    """Conditional-OT / rectified flow: α = t, σ = 1 − t."""

    name = "linear"

    def alpha(self, t):
        return t

    def sigma(self, t):
        return 1 - t

    def d_alpha(self, t):
        return torch.ones_like(t)

    def d_sigma(self, t):
        return -torch.ones_like(t)


class TrigSchedule(Schedule):
    """Trigonometric (variance preserving, α² + σ² = 1): α = sin(πt/2), σ = cos(πt/2)."""

    name = "trig"

    # sin of (1 − t) rather than cos of t so that σ(1) and α(0) are exactly 0 in floating point.
    def alpha(self, t):
        return torch.sin(0.5 * math.pi * t)

    def sigma(self, t):
        return torch.sin(0.5 * math.pi * (1 - t))

    def d_alpha(self, t):
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def d_sigma(self, t):
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)


class VPLinearSchedule(Schedule):
    """DDPM's linear β schedule in continuous time (Song et al. 2021), diffusion time s = 1 − t.

    log α = −¼ s² (β_max − β_min) − ½ s β_min,  σ = √(1 − α²).
    """

    name = "vp"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0) -> None:
        _require(0 <= beta_min <= beta_max and beta_max > 0,
                 f"vp needs 0 <= beta_min <= beta_max, beta_max > 0; got {beta_min}, {beta_max}")
        self.beta_min, self.beta_max = beta_min, beta_max

    def _log_alpha(self, t):
        s = 1 - t
        return -0.25 * s * s * (self.beta_max - self.beta_min) - 0.5 * s * self.beta_min

    def _beta(self, t):
        return self.beta_min + (1 - t) * (self.beta_max - self.beta_min)

    def alpha(self, t):
        return torch.exp(self._log_alpha(t))

    def sigma(self, t):
        return torch.sqrt(-torch.expm1(2 * self._log_alpha(t)))

    def d_alpha(self, t):
        return 0.5 * self._beta(t) * self.alpha(t)

    def d_sigma(self, t):
        a = self.alpha(t)
        return -a * self.d_alpha(t) / self.sigma(t)

    def describe(self):
        return {"name": self.name, "beta_min": self.beta_min, "beta_max": self.beta_max}


class VPCosineSchedule(Schedule):
    """Nichol & Dhariwal's cosine schedule: α = cos(π/2·(1 − t + s)/(1 + s)) / cos(π/2·s/(1 + s))."""

    name = "cosine"

    def __init__(self, offset: float = 0.008) -> None:
        _require(0 <= offset < 1, f"cosine needs an offset in [0, 1), got {offset}")
        self.offset = offset
        self._norm = math.cos(0.5 * math.pi * offset / (1 + offset))

    def _angle(self, t):
        return 0.5 * math.pi * (1 - t + self.offset) / (1 + self.offset)

    def alpha(self, t):
        # cos(angle) written as sin(π/2 − angle) so that α(0) is exactly 0.
        return torch.sin(0.5 * math.pi * t / (1 + self.offset)) / self._norm

    def sigma(self, t):
        # √(1 − α²) with cos²a₀ − cos²a = sin(a − a₀)·sin(a + a₀): exactly 0 at t = 1.
        a, a0 = self._angle(t), 0.5 * math.pi * self.offset / (1 + self.offset)
        return torch.sqrt(torch.clamp(torch.sin(a - a0) * torch.sin(a + a0), min=0.0)) / self._norm

    def d_alpha(self, t):
        return torch.sin(self._angle(t)) * (0.5 * math.pi / (1 + self.offset)) / self._norm

    def d_sigma(self, t):
        return -self.alpha(t) * self.d_alpha(t) / self.sigma(t)

    def describe(self):
        return {"name": self.name, "offset": self.offset}


class VESchedule(Schedule):
    """Variance exploding (Song et al. 2021): α = 1, σ = σ_min^t · σ_max^(1−t) (never exactly 0)."""

    name = "ve"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0) -> None:
        _require(0 < sigma_min < sigma_max,
                 f"ve needs 0 < sigma_min < sigma_max; got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self._log_ratio = math.log(sigma_min / sigma_max)

    def alpha(self, t):
        return torch.ones_like(t)

    def sigma(self, t):
        return self.sigma_max * torch.exp(t * self._log_ratio)

    def d_alpha(self, t):
        return torch.zeros_like(t)

    def d_sigma(self, t):
        return self.sigma(t) * self._log_ratio

    def describe(self):
        return {"name": self.name, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


class EDMSchedule(Schedule):
    """EDM (Karras et al. 2022): α = 1, σ = σ_max·(1 − t).

    σ is affine in t on purpose: Euler and Heun steps are invariant under affine changes of the
    time variable, so Heun in t on the Karras grid is exactly EDM's Algorithm 1 in σ.
    `sigma_min` is only where Karras grids stop before the final step to σ = 0.
    """

    name = "edm"

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0) -> None:
        _require(0 < sigma_min < sigma_max,
                 f"edm needs 0 < sigma_min < sigma_max; got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def alpha(self, t):
        return torch.ones_like(t)

    def sigma(self, t):
        return self.sigma_max * (1 - t)

    def d_alpha(self, t):
        return torch.zeros_like(t)

    def d_sigma(self, t):
        return torch.full_like(t, -self.sigma_max)

    def describe(self):
        return {"name": self.name, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


class InterpolantSchedule(Schedule):
    """Stochastic interpolant x_t = (1 − t)·x₀ + t·x₁ + γ(t)·z with Gaussian base x₀ and latent
    noise γ(t) = √(a·t(1 − t)) (Albergo, Boffi & Vanden-Eijnden). With a Gaussian base the two
    noises merge into one: σ(t) = √((1 − t)² + a·t(1 − t)), α = t.
    """

    name = "interpolant"

    def __init__(self, gamma_scale: float = 1.0) -> None:
        _require(gamma_scale >= 0, f"interpolant needs gamma_scale >= 0, got {gamma_scale}")
        self.gamma_scale = gamma_scale

    def alpha(self, t):
        return t

    def sigma(self, t):
        return torch.sqrt((1 - t) ** 2 + self.gamma_scale * t * (1 - t))

    def d_alpha(self, t):
        return torch.ones_like(t)

    def d_sigma(self, t):
        a = self.gamma_scale
        return (-2 * (1 - t) + a * (1 - 2 * t)) / (2 * self.sigma(t))

    def describe(self):
        return {"name": self.name, "gamma_scale": self.gamma_scale}


SCHEDULES = {cls.name: cls for cls in (LinearSchedule, TrigSchedule, VPLinearSchedule,
                                        VPCosineSchedule, VESchedule, EDMSchedule,
                                        InterpolantSchedule)}
