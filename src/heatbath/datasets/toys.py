"""Two-dimensional toy distributions and n-D Gaussians, written from their formulas in torch.

Every sampler is `sampler(n, *, <params>, generator=None) -> FloatTensor (n, dim)` and is
deterministic given the generator (a fresh generator seeded with 0 when none is passed, so the
global RNG is never touched). Scales follow the FFJORD conventions, which put the 2-D toys
roughly inside [-4, 4]^2 with variances of order one.

Samplers whose distribution has a closed-form density also have `<name>_log_density(x, ...)`
taking the same parameters; `toy_log_density(name, params)` looks it up by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from heatbath.core.errors import UserError


def _generator(generator: torch.Generator | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0)


def _count(value, name: str) -> int:
    """A positive integer; '1e3' from a spec string arrives as 1000.0, which is accepted."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
            or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UserError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _non_negative(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise UserError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value!r}")
    return float(value)


# --- isotropic Gaussian mixtures (shared by 8gaussians, gmm and gaussian) -------------------

def _mixture_sample(n: int, means: torch.Tensor, std: float, generator) -> torch.Tensor:
    component = torch.randint(means.shape[0], (n,), generator=generator)
    noise = torch.randn(n, means.shape[1], generator=generator)
    return means[component] + std * noise


def _mixture_log_density(x: torch.Tensor, means: torch.Tensor, std: float) -> torch.Tensor:
    """log of (1/k) Σ_j N(x; μ_j, std² I), computed in float64 with logsumexp for stability."""
    x = x.reshape(x.shape[0], -1).double()
    means = means.double()
    dim = means.shape[1]
    sq = torch.cdist(x, means).pow(2)
    log_norm = -0.5 * dim * math.log(2 * math.pi * std * std)
    return torch.logsumexp(-0.5 * sq / std**2, dim=1) - math.log(means.shape[0]) + log_norm


def _eight_means(radius: float) -> torch.Tensor:
    angles = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
    return radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)


def gmm_means(dim: int = 2, k: int = 8, means_seed: int = 0) -> torch.Tensor:
    """The k mixture means, uniform in [-3, 3]^dim; fixed by `means_seed`, not the data seed,
    so every data seed samples the same mixture."""
    dim, k = _count(dim, "dim"), _count(k, "k")
    generator = torch.Generator().manual_seed(int(means_seed))
    return 6.0 * torch.rand(k, dim, generator=generator) - 3.0


# --- samplers --------------------------------------------------------------------------------

def moons(n: int, *, noise: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Two interleaving half circles (scikit-learn's make_moons), centred and scaled by 2.

    `noise` is the std of the Gaussian jitter before scaling, as in make_moons.
    """
    n, noise = _count(n, "n"), _non_negative(noise, "noise")
    g = _generator(generator)
    n_outer = n - n // 2
    t = math.pi * torch.rand(n, generator=g)
    outer = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    inner = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
    is_outer = (torch.arange(n) < n_outer)[torch.randperm(n, generator=g)]
    points = torch.where(is_outer[:, None], outer, inner)
    points = points + noise * torch.randn(n, 2, generator=g)
    return 2.0 * (points - torch.tensor([0.5, 0.25]))


def eight_gaussians(n: int, *, radius: float = 2 * math.sqrt(2), std: float = 0.5 / math.sqrt(2),
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Equal mixture of 8 Gaussians evenly spaced on a circle (FFJORD scale by default)."""
    n = _count(n, "n")
    radius, std = _positive(radius, "radius"), _positive(std, "std")
    return _mixture_sample(n, _eight_means(radius), std, _generator(generator))


def eight_gaussians_log_density(x: torch.Tensor, *, radius: float = 2 * math.sqrt(2),
                                std: float = 0.5 / math.sqrt(2)) -> torch.Tensor:
    return _mixture_log_density(x, _eight_means(radius), std)


def checkerboard(n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform on the 8 dark squares of a 4x4 checkerboard covering [-4, 4]^2."""
    n = _count(n, "n")
    g = _generator(generator)
    x1 = 4 * torch.rand(n, generator=g) - 2
    x2 = torch.rand(n, generator=g) - 2 * torch.randint(2, (n,), generator=g)
    x2 = x2 + torch.floor(x1) % 2
    return 2.0 * torch.stack([x1, x2], dim=1)


def checkerboard_log_density(x: torch.Tensor) -> torch.Tensor:
    """log(1/32) on the dark squares (8 squares of area 4), -inf elsewhere."""
    x = x.reshape(x.shape[0], -1).double()
    cell = torch.floor(x / 2)
    inside = (x.abs() <= 4).all(dim=1)
    dark = (cell[:, 0] + cell[:, 1]) % 2 == 0
    density = torch.full((x.shape[0],), -math.inf, dtype=torch.float64)
    return density.masked_fill(inside & dark, -math.log(32.0))


def checkerboard_entropy_per_dim() -> float:
    """The checkerboard's differential entropy per dimension, in nats: ln 32 / 2 ≈ 1.7329.

    Derivation from `checkerboard`: before the final scaling, x1 ~ U(-2, 2) picks one of the
    4 unit columns c = floor(x1) with probability 1/4, and x2 = u - 2b + (c mod 2) with
    u ~ U(0, 1) and a fair bit b puts x2 uniformly in one of that column's 2 unit cells
    ([c mod 2, c mod 2 + 1] or 2 lower), each with probability 1/2. So (x1, x2) is uniform on
    8 unit squares: density 1/4 · 1/2 = 1/8 on area 8. Scaling by 2 multiplies the area by 4,
    giving density 1/32 on area 32, and a uniform density's entropy is the log of its support's
    area: H = ln 32 nats for the pair, ln 32 / 2 per dimension. This is the lowest held-out
    NLL/dim any model can reach in expectation (the cross-entropy is at least the entropy).
    """
    return math.log(32.0) / 2


def swissroll(n: int, *, noise: float = 1.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """The 2-D swiss roll (make_swiss_roll's (x, z) plane) divided by 5.

    `noise` is the jitter std before the division, as in make_swiss_roll (so 1.0 -> 0.2).
    """
    n, noise = _count(n, "n"), _non_negative(noise, "noise")
    g = _generator(generator)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g))
    points = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
    return (points + noise * torch.randn(n, 2, generator=g)) / 5.0


def gmm(n: int, *, dim: int = 2, k: int = 8, std: float = 0.4, means_seed: int = 0,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Equal mixture of k isotropic Gaussians in `dim` dimensions; means from `gmm_means`."""
    n, std = _count(n, "n"), _positive(std, "std")
    return _mixture_sample(n, gmm_means(dim, k, means_seed), std, _generator(generator))


def gmm_log_density(x: torch.Tensor, *, dim: int = 2, k: int = 8, std: float = 0.4,
                    means_seed: int = 0) -> torch.Tensor:
    return _mixture_log_density(x, gmm_means(dim, k, means_seed), _positive(std, "std"))


def gaussian(n: int, *, dim: int = 2, mean: float = 0.0, std: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """N(mean·1, std² I) in `dim` dimensions."""
    n, dim = _count(n, "n"), _count(dim, "dim")
    mean, std = _real(mean, "mean"), _positive(std, "std")
    return mean + std * torch.randn(n, dim, generator=_generator(generator))


def gaussian_log_density(x: torch.Tensor, *, dim: int = 2, mean: float = 0.0,
                         std: float = 1.0) -> torch.Tensor:
    dim, std = _count(dim, "dim"), _positive(std, "std")
    z = (x.reshape(x.shape[0], -1).double() - _real(mean, "mean")) / std
    return -0.5 * z.pow(2).sum(dim=1) - dim * (math.log(std) + 0.5 * math.log(2 * math.pi))


# --- registry --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Toy:
    sampler: Callable[..., torch.Tensor]
    log_density: Callable[..., torch.Tensor] | None
    description: str


TOYS: dict[str, Toy] = {
    "moons": Toy(moons, None, "two interleaving half circles, 2-D (noise=0.1)"),
    "8gaussians": Toy(eight_gaussians, eight_gaussians_log_density,
                      "8 Gaussians on a circle, 2-D (radius=2.83, std=0.354); exact density"),
    "checkerboard": Toy(checkerboard, checkerboard_log_density,
                        "uniform on a 4x4 checkerboard's dark squares in [-4, 4]^2; exact density"),
    "swissroll": Toy(swissroll, None, "2-D swiss roll (noise=1.0 before /5 scaling)"),
    "gmm": Toy(gmm, gmm_log_density,
               "mixture of k Gaussians (dim=2, k=8, std=0.4, means_seed=0); exact density"),
    "gaussian": Toy(gaussian, gaussian_log_density,
                    "isotropic Gaussian N(mean, std^2 I) (dim=2, mean=0, std=1); exact density"),
}


def toy_log_density(name: str, params: dict) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The exact log-density x -> (N,) of toy `name` with sampler params, or None if unknown.

    `params` may contain the sampler-only key `n`, which is ignored.
    """
    toy = TOYS.get(name)
    if toy is None or toy.log_density is None:
        return None
    density_params = {key: value for key, value in params.items() if key != "n"}
    return lambda x: toy.log_density(x, **density_params)
