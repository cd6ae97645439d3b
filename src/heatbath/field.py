"""`Field`: a trained network seen by samplers as (x̂₁, ẑ) predictions at (x, t).

Samplers never see the network's parametrisation, its input scaling, its condition or the
guidance weight; they ask a Field for the denoised data and noise estimates and for the
velocity. One place owns classifier-free guidance.
"""

from __future__ import annotations

import torch
from torch import nn

from heatbath.paths.path import Coefficients, Path


def _per_sample_time(t, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=x.dtype)
    return t.expand(x.shape[0]) if t.dim() == 0 else t.reshape(-1)


class Field:
    """A network `net(x_scaled, t, c, drop)` on `path`, predicting `prediction`.

    `cond` is one condition row per sample (or None); `guidance` w combines conditional and
    unconditional predictions as (1 + w)·cond − w·uncond (Ho & Salimans); w = 0 is plain
    conditional sampling. Linear in the prediction, so it applies to x̂₁ and ẑ alike.
    """

    def __init__(self, net: nn.Module, path: Path, prediction: str,
                 cond: torch.Tensor | None = None, guidance: float = 0.0) -> None:
        self.net, self.path, self.prediction = net, path, prediction
        self.cond, self.guidance = cond, float(guidance)

    def network_output(self, x: torch.Tensor, t: torch.Tensor, c: Coefficients) -> torch.Tensor:
        scaled = x * self.path.input_scale(c)
        if self.cond is None:
            return self.net(scaled, t)
        if self.guidance == 0.0:
            return self.net(scaled, t, self.cond)
        # Both branches in one batch: one network call per field evaluation.
        both = self.net(torch.cat([scaled, scaled]), torch.cat([t, t]),
                        torch.cat([self.cond, self.cond]),
                        torch.cat([torch.zeros(len(x), dtype=torch.bool),
                                   torch.ones(len(x), dtype=torch.bool)]))
        conditional, unconditional = both.chunk(2)
        return (1 + self.guidance) * conditional - self.guidance * unconditional

    def predict(self, x: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂₁, ẑ): the network's estimates of the data and of the noise at (x, t)."""
        t = _per_sample_time(t, x)
        c = self.path.coefficients(t, x)
        out = self.network_output(x, t, c).to(x.dtype)
        return self.path.to_data_and_noise(self.prediction, out, x, c)

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """dx/dt of the probability-flow ODE: α'·x̂₁ + σ'·ẑ."""
        t = _per_sample_time(t, x)
        c = self.path.coefficients(t, x)
        out = self.network_output(x, t, c).to(x.dtype)
        if self.prediction == "velocity":
            return out
        x1, z = self.path.to_data_and_noise(self.prediction, out, x, c)
        return Path.velocity_from(x1, z, c)

    def with_condition(self, cond: torch.Tensor | None) -> "Field":
        return Field(self.net, self.path, self.prediction, cond, self.guidance)
