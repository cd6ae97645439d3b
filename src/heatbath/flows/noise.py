"""Where a flow's randomness comes from: the base draw and every stochastic layer's draws.

One `PathNoise` serves one pass through a flow; each call is one draw along the path, in path
order (base first, then each layer's draws as the layers run).

  sequential  `PathNoise(generator)`: fast draws for the whole batch from a torch.Generator
              (training).
  keyed       `PathNoise(seed=s, ids=i, first_stream=k)`: counter-based draws keyed by
              (seed, sample id, stream), the j-th draw of the path using stream k + j, so
              sample i is the same whatever n and the batching (`importance_sample`).
"""

from __future__ import annotations

import torch

from heatbath.core import rng


class PathNoise:
    """Standard normal and uniform draws for one pass, sequential or keyed per sample id."""

    def __init__(self, generator: torch.Generator | None = None, seed: int | None = None,
                 ids: torch.Tensor | None = None, first_stream: int = 0) -> None:
        if (generator is None) == (seed is None) or (seed is not None and ids is None):
            raise ValueError("give either a generator, or a seed with the sample ids")
        self.generator, self.seed, self.ids = generator, seed, ids
        self.next_stream = first_stream

    @classmethod
    def of(cls, noise: "torch.Generator | PathNoise") -> "PathNoise":
        """`noise` itself, or sequential draws from it if it is a generator."""
        return noise if isinstance(noise, PathNoise) else cls(generator=noise)

    def _stream(self) -> int:
        stream, self.next_stream = self.next_stream, self.next_stream + 1
        return stream

    def normal(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """N(0, 1) draws of `shape` (first axis: the samples), dtype and device of `like`."""
        stream = self._stream()
        if self.seed is None:
            z = torch.randn(shape, generator=self.generator, dtype=like.dtype,
                            device=self.generator.device)
        else:
            z = rng.normal(self.seed, self.ids, stream, shape[1:], like.dtype)
        return z.to(like.device)

    def uniform(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """n U(0, 1) draws, one per sample, dtype and device of `like`."""
        stream = self._stream()
        if self.seed is None:
            u = torch.rand(n, generator=self.generator, dtype=like.dtype,
                           device=self.generator.device)
        else:
            u = rng.uniform(self.seed, self.ids, stream, (), like.dtype)
        return u.to(like.device)
