"""Built-in point-cloud families: the shape parameters are exact invariants of each cloud."""

import math

import pytest
import torch

from heatbath.datasets.clouds import random_rotations
from heatbath.datasets.sources import load_source


def test_ellipsoid_clouds_have_the_conditioned_axes_in_some_orientation():
    """Translation- and rotation-invariant checks (clouds are centred on their own mean and
    turned at random): every pair distance is at most the diameter 2·max(a, b, c), and the
    covariance eigenvalues are a_k² E[u_k²] = a_k²/3 (u uniform on the sphere)."""
    data = load_source("builtin:ellipsoids:n=3,points=4000")
    assert data.kind == "particles" and data.x.shape == (3, 4000, 3)
    assert data.cond_kind == "continuous" and data.c.shape == (3, 3)
    x, axes = data.x.double(), data.c.double()
    assert x.mean(dim=1).abs().max() < 1e-6
    diameter = torch.cdist(x, x).amax(dim=(1, 2))
    assert (diameter <= 2 * axes.max(dim=1).values + 1e-5).all()
    for cloud, a in zip(x, axes):
        eigenvalues = torch.linalg.eigvalsh(torch.cov(cloud.T))
        expected = (a.sort().values ** 2) / 3
        # Var(u_k^2) = 1/5 - 1/9 = 4/45 per point: relative standard error sqrt(0.8 / n).
        assert torch.allclose(eigenvalues, expected, rtol=4 * math.sqrt(0.8 / 4000))


def test_torus_clouds_fit_inside_their_outer_diameter():
    data = load_source("builtin:tori:n=5,points=500")
    x, (major, minor) = data.x.double(), data.c.double().T
    assert data.x.shape == (5, 500, 3)
    diameter = torch.cdist(x, x).amax(dim=(1, 2))
    assert (diameter <= 2 * (major + minor) + 1e-5).all()
    assert (diameter >= 2 * major).all()   # points near opposite ends of the ring (500 of them)


def test_random_rotations_are_proper_and_orthogonal():
    r = random_rotations(100, torch.Generator().manual_seed(0))
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3, dtype=r.dtype).expand(100, 3, 3),
                          atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(100, dtype=r.dtype), atol=1e-12)
    # Haar: E[trace R] = 0 for the uniform law on SO(3); standard error ~ 1/sqrt(100).
    assert abs(float(torch.diagonal(r, dim1=1, dim2=2).sum(-1).mean())) < 3 / math.sqrt(100)


def test_unknown_cloud_parameters_are_refused():
    from heatbath.core.errors import UserError

    with pytest.raises(UserError, match="accepted"):
        load_source("builtin:ellipsoids:sides=3")
