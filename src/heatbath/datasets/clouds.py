"""Procedural point clouds: a family of 3-D shapes whose parameters are continuous conditions.

`builtin:ellipsoids` draws n clouds of `points` points each. Cloud k has semi-axes
(a_k, b_k, c_k), each uniform on [0.5, 1.5]; its points are x = (a u₁, b u₂, c u₃) for
directions u uniform on the unit sphere (uniform in direction, not in surface area), then
centred and turned by a rotation drawn uniformly from SO(3), so that the family is invariant
under rotations and permutations, as the samples of an E(3)-equivariant model are. The axes
are the clouds' conditions `c` (N, 3): invariants, so a model can be asked for a given shape.
`builtin:tori` does the same for tori with radii R ∈ [0.8, 1.2] and r ∈ [0.2, 0.5] (angles
uniform). Both are `particles` data sets of shape (n, points, 3).
"""

from __future__ import annotations

import math

import torch

from heatbath.core import checks as check
from heatbath.datasets.dataset import DataSet

DEFAULT_CLOUDS, DEFAULT_POINTS = 2000, 256


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def random_rotations(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 3, 3) rotations uniform on SO(3): QR of a Gaussian matrix with R's diagonal made
    positive (Haar on O(3)), then one column flipped where the determinant is −1."""
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    flip = torch.ones(n, 3, dtype=torch.float64)
    flip[:, 2] = torch.linalg.det(q)
    return q * flip[:, None, :]


def _as_dataset(x: torch.Tensor, c: torch.Tensor, name: str,
                generator: torch.Generator) -> DataSet:
    centred = x - x.mean(dim=1, keepdim=True)
    centred = centred @ random_rotations(len(x), generator).transpose(1, 2)
    return DataSet(x=centred.float(), c=c.float(), cond_kind="continuous", name=name,
                   kind="particles")


def ellipsoids(n: int = DEFAULT_CLOUDS, points: int = DEFAULT_POINTS, seed: int = 0) -> DataSet:
    n = check.integer("n", n, "ellipsoids", minimum=2)
    points = check.integer("points", points, "ellipsoids", minimum=2)
    g = torch.Generator().manual_seed(int(seed))
    axes = torch.stack([_uniform(n, 0.5, 1.5, g) for _ in range(3)], dim=1)      # (n, 3)
    directions = torch.randn(n, points, 3, generator=g, dtype=torch.float64)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    return _as_dataset(directions * axes[:, None, :], axes, "ellipsoids", g)


def tori(n: int = DEFAULT_CLOUDS, points: int = DEFAULT_POINTS, seed: int = 0) -> DataSet:
    n = check.integer("n", n, "tori", minimum=2)
    points = check.integer("points", points, "tori", minimum=2)
    g = torch.Generator().manual_seed(int(seed))
    major, minor = _uniform(n, 0.8, 1.2, g)[:, None], _uniform(n, 0.2, 0.5, g)[:, None]
    theta = 2 * math.pi * torch.rand(n, points, generator=g, dtype=torch.float64)
    phi = 2 * math.pi * torch.rand(n, points, generator=g, dtype=torch.float64)
    ring = major + minor * torch.cos(phi)
    x = torch.stack([ring * torch.cos(theta), ring * torch.sin(theta), minor * torch.sin(phi)],
                    dim=-1)
    return _as_dataset(x, torch.cat([major, minor], dim=1), "tori", g)


# name -> (loader(n, points, seed), description)
CLOUDS = {
    "ellipsoids": (ellipsoids, "3-D point clouds on ellipsoids, semi-axes (a, b, c) in "
                               "[0.5, 1.5] as continuous conditions (n, points)"),
    "tori": (tori, "3-D point clouds on tori, radii R in [0.8, 1.2], r in [0.2, 0.5] as "
                   "continuous conditions (n, points)"),
}
