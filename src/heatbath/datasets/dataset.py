"""`DataSet`: the samples a generative model learns from, plus their optional conditions."""

from __future__ import annotations

import math

from dataclasses import dataclass, replace
from typing import Callable

import torch

from heatbath.core.errors import UserError


@dataclass
class DataSet:
    """Samples x (N, *event_shape) float32 and an optional condition row per sample.

    `c` is a LongTensor (N,) of class labels when `cond_kind == "class"` (then `num_classes`
    is set), a float tensor (N, k) of continuous properties when `cond_kind == "continuous"`,
    and None when the data are unconditional.

    `levels` and `data_range` describe quantised data (e.g. 256 grey levels mapped onto
    [-1, 1]); the likelihood code needs them to report dequantised bits/dim. `log_density`
    is the exact log-density of the generating distribution when it is known (toys), so that
    estimates can be checked against the truth.
    """

    x: torch.Tensor
    c: torch.Tensor | None = None
    cond_kind: str | None = None
    num_classes: int | None = None
    name: str = "data"
    kind: str = "vector"
    levels: int | None = None
    data_range: tuple[float, float] | None = None
    log_density: Callable[[torch.Tensor], torch.Tensor] | None = None
    # paired data (path.base=paired): the source x0 of each target x, same shape
    x0: torch.Tensor | None = None
    # categorical lattices (kind "lattice"): x is int64 states 0..num_states-1
    num_states: int | None = None

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def dim(self) -> int:
        """Number of scalars per sample (product of the event shape)."""
        return math.prod(self.event_shape)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index) -> "DataSet":
        """The rows selected by `index` (LongTensor, slice or boolean mask); metadata is kept."""
        c = None if self.c is None else self.c[index]
        x0 = None if self.x0 is None else self.x0[index]
        return replace(self, x=self.x[index], c=c, x0=x0)


def split_holdout(ds: DataSet, fraction: float = 0.1, seed: int = 0) -> tuple[DataSet, DataSet]:
    """Split into (train, heldout) by a permutation fixed by `seed`.

    Each part gets at least one sample, so metrics on the held-out part always have data.
    """
    if not 0.0 < fraction < 1.0:
        raise UserError(f"holdout fraction must be strictly between 0 and 1, got {fraction}")
    n = len(ds)
    if n < 2:
        raise UserError(f"data set '{ds.name}' has {n} sample(s); need at least 2 to hold some out")
    n_held = min(max(1, round(fraction * n)), n - 1)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    return ds.subset(order[n_held:]), ds.subset(order[:n_held])
