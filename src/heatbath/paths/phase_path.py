"""`PhaseSpacePath`: the path seam for phase-space processes (CLD, PSLD).

The state is u = (x, v), stacked along dimension 1: (B, 2C, H, W) for images, (B, 2D) for
vectors, so the usual networks see it as an event of twice the channels. Training follows
hybrid score matching: u_s = Φ·(x₀, 0) + L·ε with L the Cholesky factor of the kernel
covariance given x₀ (v₀ integrated out), and the network predicts ε. The score is
∇_u log p = −L⁻ᵀ·ε̂; only D·score enters the probability-flow ODE, so a process without noise
in x (CLD) needs ε̂ for the velocity half only, and only that half is trained.

Time: t ∈ [0, 1 − DATA_END] from noise to data, forward time s = 1 − t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from heatbath.paths.noise import GaussianNoise
from heatbath.paths.path import PathSample
from heatbath.paths.phase_space import DATA_END, PhaseProcess


@dataclass(frozen=True)
class PhaseCoefficients:
    """Per-sample 2×2 matrices at times t, float64: Φ (mean map of x₀), L (Cholesky of the
    kernel covariance), β(s), the marginal std of each component for data N(0, σ_data²)
    (the network's input scaling), and that Gaussian model's ε-map E: ε = E·u."""

    phi: torch.Tensor          # (B, 2, 2)
    chol: torch.Tensor         # (B, 2, 2) lower triangular
    beta: torch.Tensor         # (B,)
    std: torch.Tensor          # (B, 2)
    gaussian_eps: torch.Tensor  # (B, 2, 2): Lᵀ·C⁻¹, C the Gaussian model's marginal


def mix(matrix: torch.Tensor, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M₀₀x + M₀₁v, M₁₀x + M₁₁v) for per-sample 2×2 matrices M (B, 2, 2); the matrices
    (float64, on the CPU where the samplers build them) move to x's device and dtype."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    m = [[matrix[:, i, j].reshape(shape).to(device=x.device, dtype=x.dtype) for j in range(2)]
         for i in range(2)]
    return m[0][0] * x + m[0][1] * v, m[1][0] * x + m[1][1] * v


def split(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return u.chunk(2, dim=1)


def join(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, v], dim=1)


def state_shape(event_shape) -> tuple[int, ...]:
    """The event shape of u = (x, v): channels (or coordinates) doubled."""
    shape = tuple(int(n) for n in event_shape)
    return (2 * shape[0],) + shape[1:]


class PhaseSpacePath:
    """A `PhaseProcess` seen through the path seam (training samples, network input, the
    probability-flow velocity, the prior)."""

    is_phase_space = True

    def __init__(self, process: PhaseProcess, sigma_data: float = 1.0,
                 data_mean: torch.Tensor | None = None, data_end: float = DATA_END) -> None:
        self.process = process
        self.sigma_data = float(sigma_data)
        # x is modelled about the data mean (a shift: densities unchanged), so the Gaussian
        # model that the conjugate sampler linearises about and the prior are centred.
        self.data_mean = data_mean
        self.data_end = float(data_end)
        self.noise = GaussianNoise()      # of the data: the density's dimension is x's

    @property
    def time_range(self) -> tuple[float, float]:
        return 0.0, 1.0 - self.data_end

    # -- kernels ----------------------------------------------------------------------------
    def coefficients(self, t: torch.Tensor, like: torch.Tensor | None = None) -> PhaseCoefficients:
        s = 1.0 - torch.as_tensor(t, dtype=torch.float64).reshape(-1).cpu()
        # Samplers ask at one time for a whole batch: compute each distinct time once.
        times, index = torch.unique(s, return_inverse=True)
        phi, cov = self.process.kernel(times)
        data = torch.diag(torch.tensor([self.sigma_data ** 2, 0.0], dtype=torch.float64))
        marginal = cov + phi @ data @ phi.transpose(-1, -2)
        std = torch.sqrt(torch.diagonal(marginal, dim1=-2, dim2=-1))
        chol = torch.linalg.cholesky(cov)
        gaussian = chol.transpose(-1, -2) @ torch.linalg.inv(marginal)
        return PhaseCoefficients(phi[index], chol[index], self.process.beta(s), std[index],
                                 gaussian[index])

    def centred(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.data_mean is None else x - self.data_mean.to(x.device, x.dtype)

    def data_of(self, u: torch.Tensor) -> torch.Tensor:
        """The data point x of a state u = (x − mean, v)."""
        x = split(u)[0]
        return x if self.data_mean is None else x + self.data_mean.to(x.device, x.dtype)

    def draw_noise(self, shape, generator=None, dtype=torch.float32) -> torch.Tensor:
        return torch.randn((shape[0],) + state_shape(shape[1:]), generator=generator, dtype=dtype)

    def sample(self, x1: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> PathSample:
        """u_s = Φ·(x₁, 0) + L·ε: the hybrid-score-matching perturbation of data x₁."""
        c = self.coefficients(t)
        mean_x, mean_v = mix(c.phi, self.centred(x1), torch.zeros_like(x1))
        noise_x, noise_v = mix(c.chol, *split(z))
        return PathSample(t=t, x_t=join(mean_x + noise_x, mean_v + noise_v), x1=x1, z=z,
                          velocity=None)

    # -- the network's view -----------------------------------------------------------------
    def network_input(self, u: torch.Tensor, c: PhaseCoefficients) -> torch.Tensor:
        """Each component divided by its marginal std (unit-variance input at every t)."""
        x, v = split(u)
        shape = (-1,) + (1,) * (x.dim() - 1)
        std = c.std.to(device=u.device, dtype=u.dtype)
        return join(x / std[:, 0].reshape(shape), v / std[:, 1].reshape(shape))

    def regression_target(self, kind: str, ps: PathSample) -> torch.Tensor:
        """ε − E·u: the network learns what the data add to the Gaussian model's ε (CLD's
        mixed score), so far from the data the Gaussian model's restoring drift remains."""
        if kind != "eps":
            raise ValueError(f"phase-space paths train ε prediction, not '{kind}'")
        return ps.z - self.gaussian_eps(ps.x_t, self.coefficients(ps.t))

    def gaussian_eps(self, u: torch.Tensor, c: PhaseCoefficients) -> torch.Tensor:
        """E·u, the ε of the optimal model for data N(0, σ_data²)."""
        return join(*mix(c.gaussian_eps, *split(u)))

    def trained_part(self, tensor: torch.Tensor) -> torch.Tensor:
        """The halves of ε that reach the ODE: v alone for CLD (hybrid score matching)."""
        noisy_x, noisy_v = self.process.noisy
        if noisy_x and noisy_v:
            return tensor
        return split(tensor)[1 if noisy_v else 0]

    # -- dynamics ---------------------------------------------------------------------------
    def diffused_score(self, eps: torch.Tensor, c: PhaseCoefficients) -> tuple[torch.Tensor, torch.Tensor]:
        """D·∇_u log p = −D·L⁻ᵀ·ε̂, per component; a component without noise gives 0 (and
        its 1/L₁₁, singular at the data end for CLD, is never formed)."""
        eps_x, eps_v = split(eps)
        shape = (-1,) + (1,) * (eps_x.dim() - 1)
        l11, l21, l22 = (c.chol[:, i, j].reshape(shape).to(eps.device) for i, j in
                         ((0, 0), (1, 0), (1, 1)))
        d_x, d_v = self.process.diffusion
        score_v = -(eps_v / l22.to(eps.dtype))
        score_x = torch.zeros_like(eps_x)
        if d_x > 0:
            score_x = -((eps_x - (l21 / l22).to(eps.dtype) * eps_v) / l11.to(eps.dtype))
        return d_x * score_x, d_v * score_v

    def velocity(self, u: torch.Tensor, eps: torch.Tensor, c: PhaseCoefficients) -> torch.Tensor:
        """du/dt of the probability-flow ODE, t = 1 − s: −β(s)·(A·u − ½·D·∇ log p)."""
        drift = torch.as_tensor(self.process.drift, dtype=torch.float64).expand(len(c.beta), 2, 2)
        ax, av = mix(drift, *split(u))
        dsx, dsv = self.diffused_score(eps, c)
        shape = (-1,) + (1,) * (u.dim() - 1)
        beta = c.beta.reshape(shape).to(device=u.device, dtype=u.dtype)
        return -beta * join(ax - 0.5 * dsx, av - 0.5 * dsv)

    # -- the noise end ----------------------------------------------------------------------
    def prior_from_normal(self, normal: torch.Tensor) -> torch.Tensor:
        """A draw from the stationary law N(0, Σ∞) per coordinate, from standard normals."""
        chol = torch.linalg.cholesky(self.process.stationary)[None]
        return join(*mix(chol, *split(normal)))

    def prior_log_prob(self, u: torch.Tensor) -> torch.Tensor:
        """log N(u; 0, Σ∞), summed over coordinates (nats)."""
        sigma = self.process.stationary
        inverse = torch.linalg.inv(sigma)[None]
        x, v = split(u.to(torch.float64))
        qx, qv = mix(inverse, x, v)
        quad = (x * qx + v * qv).flatten(1).sum(1)
        pairs = x[0].numel()
        return -0.5 * (quad + pairs * (2 * math.log(2 * math.pi) + math.log(float(torch.det(sigma)))))

    def velocity_prior_log_prob(self, v: torch.Tensor) -> torch.Tensor:
        """log N(v₀; 0, γM): the data-end velocity law that the likelihood bound subtracts."""
        var = self.process.gamma * self.process.mass
        v = v.to(torch.float64).flatten(1)
        return -0.5 * ((v ** 2).sum(1) / var + v.shape[1] * math.log(2 * math.pi * var))

    def describe(self) -> dict:
        return {"process": self.process.describe(), "sigma_data": self.sigma_data,
                "data_end": self.data_end}
