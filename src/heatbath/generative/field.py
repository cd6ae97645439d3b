"""`Field`: a trained network seen by samplers as (x̂₁, ẑ) predictions at (x, t).

Samplers never see the network's parametrisation, its input scaling, its condition or the
guidance weight; they ask a Field for the denoised data and noise estimates and for the
velocity. One place owns classifier-free guidance.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from heatbath.paths.path import Coefficients, Path


def _per_sample_time(t, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.expand(x.shape[0]) if t.dim() == 0 else t.reshape(-1)


class Field:
    """A network `net(x_scaled, t, c, drop)` on `path`, predicting `prediction`.

    `cond` is one condition row per sample (or None); `guidance` w combines conditional and
    unconditional predictions as (1 + w)·cond − w·uncond (Ho & Salimans); w = 0 is plain
    conditional sampling. Linear in the prediction, so it applies to x̂₁ and ẑ alike.
    """

    def __init__(self, net: nn.Module, path: Path, prediction: str,
                 cond: torch.Tensor | None = None, guidance: float = 0.0,
                 clip: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        self.net, self.path, self.prediction = net, path, prediction
        self.cond, self.guidance = cond, float(guidance)
        self.clip = clip    # (low, high) bounds for x̂₁, event-shaped: diffusers' clip_sample

    def _call(self, scaled: torch.Tensor, t: torch.Tensor, cond=None, drop=None) -> torch.Tensor:
        """The network on a batch (a CoupledField adds its observation)."""
        return self.net(scaled, t, cond, drop)

    def network_output(self, x: torch.Tensor, t: torch.Tensor, c: Coefficients) -> torch.Tensor:
        scaled = self.path.network_input(x, c)
        if self.cond is None:
            return self._call(scaled, t)
        if self.guidance == 0.0:
            return self._call(scaled, t, self.cond)
        # Both branches in one batch: one network call per field evaluation.
        both = self._call(torch.cat([scaled, scaled]), torch.cat([t, t]),
                          torch.cat([self.cond, self.cond]),
                          torch.cat([torch.zeros(len(x), dtype=torch.bool, device=x.device),
                                     torch.ones(len(x), dtype=torch.bool, device=x.device)]))
        conditional, unconditional = both.chunk(2)
        return (1 + self.guidance) * conditional - self.guidance * unconditional

    def predict(self, x: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂₁, ẑ): the network's estimates of the data and of the noise at (x, t)."""
        t = _per_sample_time(t, x)
        c = self.path.coefficients(t, x)
        out = self.network_output(x, t, c).to(x.dtype)
        data, noise = self.path.to_data_and_noise(self.prediction, out, x, c)
        return self._clipped(x, data, noise, c)

    def _clipped(self, x, data, noise, c):
        """Clamp x̂₁ to the data's range and re-derive ẑ from x = α·x̂₁ + σ·ẑ (where σ > 0).

        ε-prediction at high noise amplifies network errors by σ/α into x̂₁; clamping stops a
        few tail samples from running off to |x| ≫ data range (diffusers' clip_sample).
        """
        if self.clip is None:
            return data, noise
        low, high = (b.to(x.dtype) for b in self.clip)
        clamped = torch.maximum(torch.minimum(data, high), low)
        safe_sigma = torch.where(c.sigma > 0, c.sigma, torch.ones_like(c.sigma))
        noise = torch.where(c.sigma > 0, (x - c.alpha * clamped) / safe_sigma, noise)
        return clamped, noise

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """dx/dt of the probability-flow ODE: α'·x̂₁ + σ'·ẑ."""
        t = _per_sample_time(t, x)
        c = self.path.coefficients(t, x)
        out = self.network_output(x, t, c).to(x.dtype)
        if self.prediction == "velocity" and self.clip is None:
            return out
        x1, z = self.path.to_data_and_noise(self.prediction, out, x, c)
        x1, z = self._clipped(x, x1, z, c)
        return Path.velocity_from(x1, z, c)


class PhaseField(Field):
    """A network on a phase-space path (`paths.phase_path`): it predicts the ε of u = (x, v),
    and samplers see the probability-flow velocity over u; there is no x̂₁ to predict or clip."""

    def __init__(self, net: nn.Module, path, prediction: str = "eps",
                 cond: torch.Tensor | None = None, guidance: float = 0.0, clip=None) -> None:
        if clip is not None:
            raise ValueError("clipping clamps a predicted x̂₁, which phase-space models do not "
                             "predict; drop --clip")
        super().__init__(net, path, prediction, cond, guidance)

    def eps(self, u: torch.Tensor, t):
        """(ε̂, coefficients) at (u, t): the Gaussian model's ε plus the network's residual."""
        t = _per_sample_time(t, u)
        c = self.path.coefficients(t)
        return self.path.gaussian_eps(u, c) + self.network_output(u, t, c).to(u.dtype), c

    def predict(self, x: torch.Tensor, t):
        raise ValueError("a phase-space model predicts ε of (x, v), not (x̂₁, ẑ): use one of "
                         "the samplers that support phase-space paths")

    def velocity(self, u: torch.Tensor, t) -> torch.Tensor:
        eps, c = self.eps(u, t)
        return self.path.velocity(u, eps, c)


class CoupledField(Field):
    """A data-dependent coupling's network (`generative.corruptions`) for a batch of
    observations: samplers see the residual y = x − b(c) on the path, with noise and
    velocity on the unknown subspace (the path's noise becomes the observation's projected
    Gaussian). Inputs are projected too, so the Jacobian of the velocity is P·J·P and every
    full-space trace or log-determinant is the one on the subspace."""

    def __init__(self, net: nn.Module, path: Path, prediction: str, observation,
                 context: torch.Tensor, cond: torch.Tensor | None = None,
                 guidance: float = 0.0) -> None:
        path = copy.copy(path)
        path.noise = observation.noise()
        super().__init__(net, path, prediction, cond, guidance)
        self.observation, self.context = observation, context

    def _call(self, scaled, t, cond=None, drop=None):
        repeats = len(scaled) // len(self.context)   # guidance doubles the batch
        context = self.context.repeat(repeats, *([1] * (self.context.dim() - 1)))
        return self.net(scaled, t, cond, drop, context=context.to(scaled))

    def predict(self, x: torch.Tensor, t):
        project = self.observation.project
        data, noise = super().predict(project(x), t)
        return project(data), project(noise)

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        project = self.observation.project
        return project(super().velocity(project(x), t))


def make_field(net: nn.Module, path, prediction: str, cond: torch.Tensor | None = None,
               guidance: float = 0.0, clip=None) -> Field:
    """The Field of a trained network on its path (phase-space paths get a `PhaseField`)."""
    kind = PhaseField if path.is_phase_space else Field
    return kind(net, path, prediction, cond, guidance, clip)
