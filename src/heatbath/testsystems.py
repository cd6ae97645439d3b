"""Systems with exact answers, for checking estimators and samplers (pymbar's `testsystems`).

Each one knows its normaliser, moments or mode masses in closed form or by float64 quadrature,
so a method's estimate can be judged by its z-score against the truth. The test suite takes
them from here; users can check their own methods the same way.

    CorrelatedGaussian  U = ½(x−μ)ᵀΣ⁻¹(x−μ) + c: log Z(β), exact samples at any β
    Bimodal1D           two separated 1-D Gaussian modes of known masses (normalised: ln Z = 0)
    GaussianMixture2D   weighted 2-D mixture with total mass exp(log_z), exact samples
    four_modes          such a mixture with modes at (±a, ±a)
    tilted_gaussian     a correlated 2-D Gaussian target (exact log Z, samples)
    randomise_heads     give a flow's zero-initialised spline heads random values: a
                        non-trivial bijection whose log q is still exact
    double_well_log_z   ln Z of examples/my_energy.py:double_well, U = 4(a² − 1)² + b²/2
    manywell_log_z      ln Z of FAB's ManyWell in `dim` dimensions
"""

from __future__ import annotations

import math

import torch

from heatbath.targets.base import EnergyTarget, ExactValues

F64 = torch.float64


class CorrelatedGaussian(EnergyTarget):
    """U(x) = ½(x−μ)ᵀΣ⁻¹(x−μ) + c: log Z(β) = (d/2) ln(2π/β) + ½ ln det Σ − βc."""

    name = "test-correlated-gaussian"

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor, offset: float = 0.0) -> None:
        super().__init__((mean.shape[0],))
        self.mean, self.cov, self.offset = mean.to(F64), cov.to(F64), float(offset)
        self.precision = torch.linalg.inv(self.cov)
        self.chol = torch.linalg.cholesky(self.cov)

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        d = x - self.mean.to(x)
        return 0.5 * torch.einsum("ni,ij,nj->n", d, self.precision.to(x), d) + self.offset

    def log_z(self, beta: float = 1.0) -> float:
        """log ∫ exp(−βU): the covariance shrinks to Σ/β."""
        d = self.mean.shape[0]
        return (0.5 * d * math.log(2 * math.pi / beta) + 0.5 * float(torch.logdet(self.cov))
                - beta * self.offset)

    @property
    def exact(self) -> ExactValues:
        return ExactValues(log_z=self.log_z(), energy_mean=0.5 * self.mean.shape[0] + self.offset)

    def sample_at(self, beta: float, n: int, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(n, self.mean.shape[0], generator=generator, dtype=F64)
        return self.mean + noise @ self.chol.T / math.sqrt(beta)

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.sample_at(1.0, n, generator)


def correlated_gaussian(dim: int, offset: float = 0.0) -> CorrelatedGaussian:
    """Mean 0.5·(0, 1, …); covariance A Aᵀ/d + 0.3 I with A ~ N(0, 1) (seed 11), eigenvalues
    ≈ 0.33 … 3.4; in 2-D mean (1, −2) and covariance [[1, 0.8], [0.8, 2]]."""
    if dim == 2:
        cov = torch.tensor([[1.0, 0.8], [0.8, 2.0]], dtype=F64)
        return CorrelatedGaussian(torch.tensor([1.0, -2.0], dtype=F64), cov, offset)
    g = torch.Generator().manual_seed(11)
    a = torch.randn(dim, dim, generator=g, dtype=F64)
    cov = a @ a.T / dim + 0.3 * torch.eye(dim, dtype=F64)
    return CorrelatedGaussian(0.5 * torch.arange(dim, dtype=F64), cov, offset)


class Bimodal1D(EnergyTarget):
    """U = −log[w₁N(x; −a, σ²) + w₂N(x; a, σ²)] in 1-D: normalised (ln Z = 0), modes far apart."""

    name = "test-bimodal"

    def __init__(self, a: float = 3.0, sigma: float = 0.5, w_right: float = 0.7) -> None:
        super().__init__((1,))
        self.a, self.sigma, self.w_right = a, sigma, w_right

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        y = x[:, 0]
        log_norm = -0.5 * math.log(2 * math.pi * self.sigma ** 2)
        left = math.log(1 - self.w_right) + log_norm - (y + self.a) ** 2 / (2 * self.sigma ** 2)
        right = math.log(self.w_right) + log_norm - (y - self.a) ** 2 / (2 * self.sigma ** 2)
        return -torch.logaddexp(left, right)

    @property
    def exact(self) -> ExactValues:
        return ExactValues(log_z=0.0)

    def exact_p_right(self) -> float:
        """P(x > 0), using Φ(t) = ½ erfc(−t/√2)."""
        phi = (lambda t: 0.5 * math.erfc(-t / math.sqrt(2)))
        t = self.a / self.sigma
        return (1 - self.w_right) * phi(-t) + self.w_right * phi(t)


class GaussianMixture2D(EnergyTarget):
    """Weighted Gaussian mixture with total mass exp(log_z): exact log Z and exact samples."""

    name = "test-mixture2d"

    def __init__(self, means, std: float, weights, log_z: float) -> None:
        super().__init__((2,))
        self.means = torch.tensor(means, dtype=F64)
        self.std, self.log_z = std, log_z
        weights = torch.tensor(weights, dtype=F64)
        self.log_mass = (weights / weights.sum()).log() + log_z

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        diff = x[:, None, :] - self.means.to(x)
        log_normal = (-0.5 * diff.pow(2).sum(-1) / self.std ** 2
                      - math.log(2 * math.pi * self.std ** 2))
        return -torch.logsumexp(log_normal + self.log_mass.to(x), dim=1)

    @property
    def exact(self) -> ExactValues:
        return ExactValues(log_z=self.log_z)

    def sample_exact(self, n: int, generator: torch.Generator) -> torch.Tensor:
        component = torch.multinomial(self.log_mass.exp(), n, replacement=True,
                                      generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=F64)
        return (self.means[component] + self.std * noise).to(torch.get_default_dtype())


def four_modes(a: float, std: float) -> GaussianMixture2D:
    """Modes at (±a, ±a) with masses 0.1, 0.2, 0.3, 0.4 of Z = e^1.5."""
    corners = [[a, a], [-a, a], [-a, -a], [a, -a]]
    return GaussianMixture2D(corners, std, [0.1, 0.2, 0.3, 0.4], log_z=1.5)


def log_integral(weight) -> float:
    """ln ∫ weight(a) da over the real line, by quadrature on each half-line (float64)."""
    from scipy.integrate import quad

    left = quad(weight, -math.inf, 0.0, epsabs=0.0, epsrel=1e-12)[0]
    return math.log(left + quad(weight, 0.0, math.inf, epsabs=0.0, epsrel=1e-12)[0])


def double_well_log_z() -> float:
    """examples/my_energy.py:double_well, U = 4(a² − 1)² + b²/2: the b-integral is √(2π)."""
    return log_integral(lambda a: math.exp(-4.0 * (a * a - 1.0) ** 2)) + 0.5 * math.log(2 * math.pi)


def manywell_log_z(dim: int = 32) -> float:
    """ManyWell: dim/2 independent pairs U = a⁴ − 6a² − 0.5a + b²/2."""
    one_well = log_integral(lambda a: math.exp(-(a ** 4 - 6.0 * a * a - 0.5 * a)))
    return dim // 2 * (one_well + 0.5 * math.log(2 * math.pi))


def tilted_gaussian():
    """N((1, −1), [[2, 0.8], [0.8, 1]]) as an energy target (exact log Z and samples)."""
    from heatbath.targets.analytic import Gaussian

    return Gaussian(dim=2, mean=[1.0, -1.0], cov=[[2.0, 0.8], [0.8, 1.0]])


def randomise_heads(model: torch.nn.Module, seed: int, std: float = 0.5) -> None:
    """Give the zero-initialised spline heads random values: a non-trivial bijection."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "net"):
                head = module.net[-1]
                for p in (head.weight, head.bias):
                    p.copy_(std * torch.randn(p.shape, generator=generator, dtype=F64))


class GaussianAnnealing:
    """The annealed path from N(0, s0²I) to U = |x − μ|²/(2 s1²) in d dimensions, in closed form.

    π_β ∝ p0^{1−β} e^{−βU} is N(m_β, v_β I) with 1/v_β = (1 − β)/s0² + β/s1², m_β = v_β β μ/s1²,
    and log Z_β = (d/2) ln(2π v_β) − β|μ|²/(2 s1²) + |m_β|²/(2 v_β) − (1 − β)(d/2) ln(2π s0²).
    Along β(t) = curve(t) (default β = t), the drift b(x, t) = β'(t)[dm/dβ + (dv/dβ)/(2v)(x − m)]
    carries π_t to π_{t+dt} exactly (the velocity of the affine map between the Gaussians), so
    the Jarzynski weights of the continuous-time dynamics are constant, and ∂_tF_t = −d ln Z_t/dt
    is the PINN's optimal rate.
    """

    def __init__(self, dim: int, base_scale: float, mean: float, scale: float,
                 curve=None) -> None:
        self.dim, self.s0, self.s1 = dim, float(base_scale), float(scale)
        self.mu = torch.full((dim,), float(mean), dtype=F64)
        self.curve = curve or (lambda t: (t, torch.ones_like(t)))

    def target(self) -> CorrelatedGaussian:
        return CorrelatedGaussian(self.mu, self.s1 ** 2 * torch.eye(self.dim, dtype=F64))

    def moments(self, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(m_β (N, d), v_β (N,)) for β of shape (N,)."""
        v = 1.0 / ((1.0 - beta) / self.s0 ** 2 + beta / self.s1 ** 2)
        return (v * beta / self.s1 ** 2)[:, None] * self.mu, v

    def log_z(self, beta: float) -> float:
        b = torch.tensor([float(beta)], dtype=F64)
        m, v = self.moments(b)
        d = self.dim
        base_norm = 0.5 * d * math.log(2 * math.pi * self.s0 ** 2)
        value = (0.5 * d * torch.log(2 * math.pi * v) - b * self.mu.pow(2).sum() / (2 * self.s1 ** 2)
                 + m.pow(2).sum(1) / (2 * v) - (1 - b) * base_norm)
        return float(value[0])

    def drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """b(x, t), (N, d)."""
        beta, rate = self.curve(t.to(F64))
        m, v = self.moments(beta)
        dv = -v ** 2 * (1.0 / self.s1 ** 2 - 1.0 / self.s0 ** 2)
        dm = (dv * beta / self.s1 ** 2 + v / self.s1 ** 2)[:, None] * self.mu
        return (rate[:, None] * (dm + (dv / (2 * v))[:, None] * (x.to(F64) - m))).to(x.dtype)

    def free_energy_rate(self, t: torch.Tensor) -> torch.Tensor:
        """∂_t F_t = −d ln Z_t/dt = β'(t)·E_{π_t}[U + ln p0] under N(m_t, v_t I), exactly."""
        beta, rate = self.curve(t.to(F64))
        m, v = self.moments(beta)
        d = self.dim
        mean_u = (d * v + (m - self.mu).pow(2).sum(1)) / (2 * self.s1 ** 2)
        mean_log_p0 = (-(d * v + m.pow(2).sum(1)) / (2 * self.s0 ** 2)
                       - 0.5 * d * math.log(2 * math.pi * self.s0 ** 2))
        return (rate * (mean_u + mean_log_p0)).to(t.dtype)
