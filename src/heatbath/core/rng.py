"""Counter-based random numbers: noise that belongs to a sample, not to a batch.

Sample i drawn with seed S must be the same whatever the number of samples asked for and however
they are batched. A sequential generator cannot give that, so each normal draw is a hash of
(seed, stream, sample index, element index): stream 0 is the starting noise, stream k ≥ 1 the
noise injected at sampler step k. The hash is Wellons' "lowbias32" applied in chains; all integer
arithmetic stays below 2⁶³ so int64 tensors never overflow.
"""

from __future__ import annotations

import math

import torch

_MASK = 0xFFFFFFFF


def _mul32(x: torch.Tensor, constant: int) -> torch.Tensor:
    """Low 32 bits of x·constant for x < 2³², without int64 overflow (split the constant)."""
    lo, hi = constant & 0xFFFF, constant >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK


def hash32(x: torch.Tensor) -> torch.Tensor:
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _uniform(seed: int, stream: int, ids: torch.Tensor, count: int, offset: int) -> torch.Tensor:
    """(B, count) uniforms in (0, 1) keyed by (seed, stream, sample id, element index + offset)."""
    elem = torch.arange(offset, offset + count, dtype=torch.int64)
    h = hash32((elem + 0x632BE5AB) & _MASK)[None, :]
    ids = ids.to(torch.int64)[:, None]
    for key in (ids & _MASK, ids >> 32, torch.tensor(stream & _MASK),
                torch.tensor(seed & _MASK), torch.tensor((seed >> 32) & _MASK)):
        h = hash32(h ^ key)
    return (h.to(torch.float64) + 0.5) / 2.0 ** 32


def uniform(seed: int, ids: torch.Tensor, stream: int, event_shape: tuple[int, ...],
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uniform draws in (0, 1) of shape (len(ids), *event_shape)."""
    count = math.prod(event_shape)
    return _uniform(seed, stream, ids, count, 0).reshape(len(ids), *event_shape).to(dtype)


def normal(seed: int, ids: torch.Tensor, stream: int, event_shape: tuple[int, ...],
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal draws of shape (len(ids), *event_shape) by Box–Muller on hashed uniforms."""
    count = math.prod(event_shape)
    u1 = _uniform(seed, stream, ids, count, 0)
    u2 = _uniform(seed, stream, ids, count, count)
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    return z.reshape(len(ids), *event_shape).to(dtype)


def chi_square(seed: int, ids: torch.Tensor, stream: int, dof: float) -> torch.Tensor:
    """One χ²_dof draw per sample id, each from its own generator seeded by (seed, stream, id)."""
    keys = hash32(hash32(ids.to(torch.int64) & _MASK) ^ (stream & _MASK)) ^ (seed & _MASK)
    out = torch.empty(len(ids), dtype=torch.float64)
    for i, key in enumerate(keys.tolist()):
        gen = torch.Generator().manual_seed(int(key))
        out[i] = 2.0 * torch._standard_gamma(torch.tensor([0.5 * dof], dtype=torch.float64),
                                             generator=gen)[0]
    return out
