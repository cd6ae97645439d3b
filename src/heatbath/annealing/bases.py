"""Tractable base distributions p0 to anneal from: exact samples and a normalised log density."""

from __future__ import annotations

import math

import torch

from heatbath.core import rng


class GaussianBase:
    """N(mean, scale²·I) over `event_shape`; the usual AIS/SMC starting point."""

    def __init__(self, event_shape: tuple[int, ...], scale: float = 1.0,
                 mean: torch.Tensor | float = 0.0, dtype: torch.dtype = torch.float64) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.event_shape = tuple(event_shape)
        self.scale = float(scale)
        self.mean = torch.as_tensor(mean, dtype=dtype).expand(self.event_shape)
        self.dtype = dtype
        self._dim = math.prod(self.event_shape)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn((n, *self.event_shape), generator=generator, dtype=self.dtype)
        return self.mean + self.scale * noise

    def sample_keyed(self, seed: int, ids: torch.Tensor) -> torch.Tensor:
        """One draw per sample id from counter-based noise (`core.rng`, stream 0): draw i is
        the same whatever else is drawn with it."""
        noise = rng.normal(seed, ids, 0, self.event_shape, self.dtype)
        return self.mean + self.scale * noise

    def grad_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """∇ log p0(x) = −(x − mean)/scale²."""
        return -(x - self.mean.to(x.dtype)) / self.scale ** 2

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean.to(x.dtype)) / self.scale
        return (-0.5 * z.reshape(x.shape[0], -1).pow(2).sum(dim=1)
                - self._dim * (math.log(self.scale) + 0.5 * math.log(2 * math.pi)))
