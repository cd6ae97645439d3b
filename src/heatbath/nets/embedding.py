"""Time and condition embeddings shared by every network.

Each network turns (t, c, drop) into one vector per sample that modulates all of its blocks:

    emb = time_mlp(sinusoid(1000 * t)) + condition(c, drop)

The condition part supports classifier-free guidance: a sample whose `drop` flag is True (or every
sample, when `c` is None) gets a *learned null embedding* instead of its condition, so one network
learns both the conditional and the unconditional model.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# Path time lives in [0, 1]; the sinusoid frequencies (periods 1 .. 10_000) were designed for the
# integer steps 0..1000 of DDPM, so stretching t by 1000 lets the fastest ones resolve small time
# differences while the slowest still vary smoothly over the whole path.
TIME_SCALE = 1000.0
MAX_PERIOD = 10_000.0


def sinusoidal_embedding(t: Tensor, dim: int) -> Tensor:
    """(B,) times -> (B, dim) features [cos(1000 t w_k), sin(1000 t w_k)], zero-padded if dim is odd."""
    half = dim // 2
    exponents = torch.arange(half, dtype=t.dtype, device=t.device) / max(half, 1)
    frequencies = torch.exp(-math.log(MAX_PERIOD) * exponents)
    angles = (TIME_SCALE * t)[:, None] * frequencies[None, :]
    features = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    if dim % 2:
        features = torch.cat([features, torch.zeros_like(features[:, :1])], dim=-1)
    return features


def broadcast_times(t: Tensor | float, batch: int, like: Tensor) -> Tensor:
    """Accept a float, a 0-d / (1,) tensor or a (B,) tensor and return (B,) in `like`'s dtype."""
    if not isinstance(t, Tensor):
        t = torch.tensor(float(t))
    t = t.to(dtype=like.dtype, device=like.device)
    if t.dim() == 0 or t.shape == (1,):
        return t.reshape(()).expand(batch)
    if t.shape == (batch,):
        return t
    raise ValueError(f"t must be a scalar or have shape ({batch},), got {tuple(t.shape)}")


def _check_drop(drop: Tensor | None, batch: int, device: torch.device) -> Tensor:
    """Return a (B,) bool mask; None means 'drop nothing'."""
    if drop is None:
        return torch.zeros(batch, dtype=torch.bool, device=device)
    if drop.dtype != torch.bool or drop.shape != (batch,):
        raise ValueError(
            f"drop must be a bool tensor of shape ({batch},), got {drop.dtype} {tuple(drop.shape)}"
        )
    return drop.to(device)


class ConditionEmbedding(nn.Module):
    """Class labels or continuous properties -> (B, emb_dim), with a learned null embedding.

    Built with neither `num_classes` nor `cond_dim` it is unconditional: `forward` returns None and
    refuses a condition, so a typo'd call cannot silently train an unconditional model.
    """

    def __init__(self, emb_dim: int, num_classes: int | None = None, cond_dim: int | None = None):
        super().__init__()
        if num_classes is not None and cond_dim is not None:
            raise ValueError("set at most one of num_classes and cond_dim")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if cond_dim is not None and cond_dim < 1:
            raise ValueError(f"cond_dim must be >= 1, got {cond_dim}")
        self.num_classes = num_classes
        self.cond_dim = cond_dim
        if num_classes is not None:
            # The extra row `num_classes` is the null ("no label") embedding.
            self.classes = nn.Embedding(num_classes + 1, emb_dim)
        if cond_dim is not None:
            self.project = nn.Sequential(
                nn.Linear(cond_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
            )
            # Zero start: the unconditional branch begins as the pure time embedding.
            self.null = nn.Parameter(torch.zeros(emb_dim))

    @property
    def is_conditional(self) -> bool:
        return self.num_classes is not None or self.cond_dim is not None

    def forward(self, c: Tensor | None, drop: Tensor | None, batch: int, like: Tensor) -> Tensor | None:
        if not self.is_conditional:
            if c is not None:
                raise ValueError("this network was built without conditioning but c was given")
            return None
        keep = ~_check_drop(drop, batch, like.device)
        if self.num_classes is not None:
            return self._embed_classes(c, keep, batch)
        return self._embed_properties(c, keep, batch, like)

    def _embed_classes(self, c: Tensor | None, keep: Tensor, batch: int) -> Tensor:
        null_labels = torch.full((batch,), self.num_classes, dtype=torch.long, device=keep.device)
        if c is None:
            return self.classes(null_labels)
        if c.shape != (batch,) or c.is_floating_point() or c.dtype == torch.bool:
            raise ValueError(
                f"class labels must be an integer tensor of shape ({batch},), got {c.dtype} {tuple(c.shape)}"
            )
        c = c.to(device=keep.device, dtype=torch.long)
        kept = c[keep]
        if kept.numel() and (kept.min() < 0 or kept.max() >= self.num_classes):
            raise ValueError(
                f"class labels must lie in [0, {self.num_classes}), got {int(kept.min())}..{int(kept.max())}"
            )
        return self.classes(torch.where(keep, c, null_labels))

    def _embed_properties(self, c: Tensor | None, keep: Tensor, batch: int, like: Tensor) -> Tensor:
        null = self.null.to(like.dtype).expand(batch, -1)
        if c is None:
            return null
        if self.cond_dim == 1 and c.shape == (batch,):
            c = c[:, None]
        if c.shape != (batch, self.cond_dim):
            raise ValueError(f"c must have shape ({batch}, {self.cond_dim}), got {tuple(c.shape)}")
        # Zero the dropped rows before projecting: callers may fill them with NaN placeholders,
        # and NaN * 0 in the weight gradient would poison training even though the row is unused.
        zero = torch.zeros((), dtype=like.dtype, device=like.device)
        c = torch.where(keep[:, None], c.to(like.dtype), zero)
        return torch.where(keep[:, None], self.project(c), null)


class TimeConditionEmbedding(nn.Module):
    """(t, c, drop) -> (B, emb_dim): sinusoid of t through a small MLP, plus the condition embedding."""

    def __init__(self, time_dim: int, emb_dim: int, num_classes: int | None, cond_dim: int | None):
        super().__init__()
        if time_dim < 2:
            raise ValueError(f"time_dim must be >= 2, got {time_dim}")
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.condition = ConditionEmbedding(emb_dim, num_classes, cond_dim)

    def forward(self, t: Tensor | float, c: Tensor | None, drop: Tensor | None, like: Tensor) -> Tensor:
        batch = like.shape[0]
        times = broadcast_times(t, batch, like)
        emb = self.time_mlp(sinusoidal_embedding(times, self.time_dim))
        cond = self.condition(c, drop, batch, like)
        return emb if cond is None else emb + cond
