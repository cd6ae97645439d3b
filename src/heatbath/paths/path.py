"""`Path`: how noise meets data, and the one place that converts between parametrisations.

A path is x_t = α(t)·x₁ + σ(t)·z with x₁ the data and z the noise. A network may predict
  eps       the noise z,
  x1        the data x₁ (a denoiser),
  v         α·z − σ·x₁ (Salimans & Ho),
  velocity  dx_t/dt = α'·x₁ + σ'·z (flow matching),
  edm       F of EDM's preconditioned denoiser x̂₁ = c_skip·y + c_out·F (y = x/α, λ = σ/α).
Each is a linear function of (x₁, z) given x, so converting is solving a 2×2 linear system; no
sampler ever needs to know which one the network predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from heatbath.paths.noise import GaussianNoise, StudentTNoise
from heatbath.paths.schedules import Schedule

PREDICTIONS = ("eps", "x1", "v", "velocity", "edm")


@dataclass(frozen=True)
class PathSample:
    """A point on the path with everything a loss needs."""

    t: torch.Tensor       # (B,)
    x_t: torch.Tensor     # (B, *event)
    x1: torch.Tensor
    z: torch.Tensor
    velocity: torch.Tensor  # conditional velocity α'x₁ + σ'z


@dataclass(frozen=True)
class Coefficients:
    """α, σ, α', σ' at per-sample times, shaped to broadcast against (B, *event)."""

    alpha: torch.Tensor
    sigma: torch.Tensor
    d_alpha: torch.Tensor
    d_sigma: torch.Tensor


class Path:
    """A schedule, a noise distribution, and the data's scale σ_data and mean.

    σ_data sets EDM preconditioning and the network's input scaling; the data mean centres the
    prior at the noise end (x_t ≈ α·mean + σ·z), which matters for likelihoods when σ_max is
    not much larger than |mean|·√D (an O(|mean|/σ_max) error per dimension otherwise).
    """

    is_phase_space = False   # see paths.phase_path.PhaseSpacePath

    def __init__(self, schedule: Schedule, noise=None, sigma_data: float = 1.0,
                 data_mean: torch.Tensor | None = None) -> None:
        self.schedule = schedule
        self.noise = noise or GaussianNoise()
        self.sigma_data = float(sigma_data)
        self.data_mean = data_mean

    # -- geometry ---------------------------------------------------------------------------
    def coefficients(self, t: torch.Tensor, like: torch.Tensor) -> Coefficients:
        shape = (-1,) + (1,) * (like.dim() - 1)
        t = t.to(device=like.device, dtype=like.dtype).reshape(-1)
        s = self.schedule
        return Coefficients(*(f(t).reshape(shape) for f in (s.alpha, s.sigma, s.d_alpha, s.d_sigma)))

    def sample(self, x1: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> PathSample:
        c = self.coefficients(t, x1)
        return PathSample(t=t, x_t=c.alpha * x1 + c.sigma * z, x1=x1, z=z,
                          velocity=c.d_alpha * x1 + c.d_sigma * z)

    def draw_noise(self, shape, generator=None, dtype=torch.float32) -> torch.Tensor:
        return self.noise.sample(shape, generator=generator, dtype=dtype)

    def network_input(self, x: torch.Tensor, c: Coefficients) -> torch.Tensor:
        return x * self.input_scale(c)

    @staticmethod
    def trained_part(tensor: torch.Tensor) -> torch.Tensor:
        """What of the network's output the loss compares (all of it; see PhaseSpacePath)."""
        return tensor

    def input_scale(self, c: Coefficients) -> torch.Tensor:
        """1/std(x_t) for data of scale σ_data: keeps the network's input near unit variance."""
        return 1.0 / torch.sqrt((c.alpha * self.sigma_data) ** 2 + c.sigma ** 2)

    # -- parametrisations -------------------------------------------------------------------
    def _edm_coefficients(self, c: Coefficients):
        level2 = (c.sigma / c.alpha) ** 2
        sd2 = self.sigma_data ** 2
        c_skip = sd2 / (level2 + sd2)
        c_out = torch.sqrt(level2) * self.sigma_data / torch.sqrt(level2 + sd2)
        return c_skip, c_out

    def regression_target(self, kind: str, ps: PathSample) -> torch.Tensor:
        """What a network of prediction type `kind` is trained to output at ps."""
        c = self.coefficients(ps.t, ps.x1)
        if kind == "eps":
            return ps.z
        if kind == "x1":
            return ps.x1
        if kind == "v":
            return c.alpha * ps.z - c.sigma * ps.x1
        if kind == "velocity":
            return ps.velocity
        if kind == "edm":
            c_skip, c_out = self._edm_coefficients(c)
            return (ps.x1 - c_skip * ps.x_t / c.alpha) / c_out
        raise ValueError(f"unknown prediction type '{kind}'; choose one of {', '.join(PREDICTIONS)}")

    def to_data_and_noise(self, kind: str, out: torch.Tensor, x: torch.Tensor,
                          c: Coefficients) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂₁, ẑ) from a network output of type `kind` at x with coefficients c."""
        if kind == "eps":
            return (x - c.sigma * out) / c.alpha, out
        if kind == "x1":
            return out, (x - c.alpha * out) / c.sigma
        if kind == "v":
            # [α σ; −σ α]·[x₁; z] = [x; v], determinant α² + σ² > 0 everywhere.
            det = c.alpha ** 2 + c.sigma ** 2
            return (c.alpha * x - c.sigma * out) / det, (c.sigma * x + c.alpha * out) / det
        if kind == "velocity":
            # [α σ; α' σ']·[x₁; z] = [x; u].
            det = c.alpha * c.d_sigma - c.sigma * c.d_alpha
            return ((c.d_sigma * x - c.sigma * out) / det,
                    (c.alpha * out - c.d_alpha * x) / det)
        if kind == "edm":
            c_skip, c_out = self._edm_coefficients(c)
            x1 = c_skip * x / c.alpha + c_out * out
            return x1, (x - c.alpha * x1) / c.sigma
        raise ValueError(f"unknown prediction type '{kind}'; choose one of {', '.join(PREDICTIONS)}")

    @staticmethod
    def velocity_from(x1: torch.Tensor, z: torch.Tensor, c: Coefficients) -> torch.Tensor:
        return c.d_alpha * x1 + c.d_sigma * z

    def describe(self) -> dict:
        return {"schedule": self.schedule.describe(), "noise": self.noise.describe(),
                "sigma_data": self.sigma_data}


def pfgm_sigma_from_radius(r, dof: float):
    """PFGM++ hyper-parameter transfer: r = σ·√D."""
    return r / dof ** 0.5


def build_path(schedule: str, *, noise: str = "gaussian", pfgm_dof: float = 2048.0,
               sigma_data: float = 1.0, data_mean: torch.Tensor | None = None,
               schedule_params: dict | None = None):
    """Path from a registered name (`paths.registry.PATHS`): its schedule and its noise
    ('pfgm' is the EDM schedule with PFGM++ Student-t noise); `noise` overrides the noise.
    Phase-space names (cld, psld) give a `PhaseSpacePath` of their process, whose
    parameters `schedule_params` then holds; a discrete name a `MaskedPath` (masked) or a
    `UniformPath` (uniform)."""
    from heatbath.paths.registry import PATHS
    from heatbath.paths.schedules import SCHEDULES

    if schedule not in PATHS:
        raise ValueError(f"unknown path '{schedule}'; choose one of {', '.join(PATHS)}")
    kind = PATHS[schedule]
    if kind.discrete:   # categorical lattices: the corruption names the path's class
        from heatbath.paths.masked import MaskedPath
        from heatbath.paths.uniform import UniformPath

        return MaskedPath() if kind.noise == "absorbing" else UniformPath()
    if kind.process is not None:
        from heatbath.paths.phase_path import PhaseSpacePath
        from heatbath.paths.phase_space import PROCESSES

        return PhaseSpacePath(PROCESSES[kind.process](**dict(schedule_params or {})), sigma_data,
                              data_mean)
    noise = kind.noise if noise == "gaussian" else noise
    sched = SCHEDULES[kind.schedule](**dict(schedule_params or {}))
    noise_obj = StudentTNoise(pfgm_dof) if noise == "pfgm" else GaussianNoise()
    return Path(sched, noise_obj, sigma_data, data_mean)
