"""Draws of categorical states shared by the discrete paths (`paths.masked`, `paths.uniform`).

Every random choice of a discrete sampler is an inverse-CDF draw from a uniform that the caller
drew up front, one per sample, site and step: a sample then depends only on its own row of
uniforms, not on how the rows are batched, and two paths that draw the same way share this
one function.
"""

from __future__ import annotations

import torch


def inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """States (n, S) drawn from per-site probabilities `probs` (n, q, S) by the inverse CDF of
    `uniforms` (n, S) in [0, 1). The probabilities need not sum exactly to one (the total is
    rescaled), so round-off cannot push a draw past the last state."""
    cdf = probs.cumsum(1)
    u = uniforms.to(cdf.dtype).unsqueeze(1) * cdf[:, -1:]
    return (cdf < u).sum(1).clamp(max=probs.shape[1] - 1)


def uniform_states(uniforms: torch.Tensor, num_states: int) -> torch.Tensor:
    """Uniform states 0..q−1 from uniforms in [0, 1): ⌊u·q⌋ (the inverse CDF of the uniform law)."""
    return (uniforms * num_states).long().clamp(max=num_states - 1)
