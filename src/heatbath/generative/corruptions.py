"""Data-dependent couplings: interpolants whose base is built from the data itself.

Albergo et al. (2023, "Stochastic interpolants with data-dependent couplings") start the path
not from pure noise but from a corrupted copy of each data point. heatbath writes the base as

    x₀ = b(c) + z,   z ~ N(0, P),

with b(c) the observation's best guess of x (the masked image with its hole filled by the data
mean; the low-resolution image up-sampled; a paired source) and P the orthogonal projection
onto what the observation leaves unknown. The model learns the residual y = x − b(c) on an
ordinary path of the registry (y_t = α·y + σ·z), with the observation as extra input channels;
every sampler, likelihood and sampler density then applies to y unchanged, and
x = b(c) + y. Because z and the learned velocity stay in P's range, what was observed is kept
exactly (the known pixels; the f×f block means of a super-resolved image), and densities
log q(x | c) live on the unknown subspace — the only place they are defined.

    inpaint    missing pixels (path.mask: center, half, random): P zeroes the known pixels
    superres   f×f block means observed (path.factor): P removes block means
    paired     any c → x from a file (npz keys x and x0, same shape): P = I
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from heatbath.core.errors import UserError
from heatbath.paths.noise import ProjectedGaussianNoise

MASKS = ("center", "half", "random")


@dataclass(frozen=True)
class Observation:
    """What is known of a batch of points: the base mean b(c) (B, *event), the 0/1 map of
    unknown coordinates `missing` (B, *event), and the super-resolution factor f (1: none)."""

    base: torch.Tensor
    missing: torch.Tensor
    factor: int = 1

    def __len__(self) -> int:
        return len(self.base)

    def rows(self, index) -> "Observation":
        return Observation(self.base[index], self.missing[index], self.factor)

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """P z: zero where observed; for super-resolution, minus each f×f block's mean."""
        z = z * self.missing.to(device=z.device, dtype=z.dtype)
        if self.factor > 1:
            z = z - upsample(downsample(z, self.factor), self.factor)
        return z

    def dims(self) -> torch.Tensor:
        """Per-sample dimension of P's range: the unknown coordinates."""
        unknown = self.missing.flatten(1).sum(1)
        if self.factor == 1:
            return unknown
        return unknown * (1.0 - 1.0 / self.factor ** 2)   # minus one block mean per block

    def noise(self) -> ProjectedGaussianNoise:
        return ProjectedGaussianNoise(self.project, self.dims())

    def context(self, low: float, high: float) -> torch.Tensor:
        """The network's extra input: b(c) mapped from the data's range [low, high] to
        [−1, 1], and the missing map, stacked on the channel (feature) axis."""
        width = max(high - low, 1e-12)
        scaled = (2.0 * self.base - (high + low)) / width
        return torch.cat([scaled, self.missing.to(scaled.dtype)], dim=1)

    def to(self, where) -> "Observation":
        """On another device or in another dtype (`where` as for Tensor.to)."""
        return Observation(self.base.to(where), self.missing.to(where), self.factor)


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """f×f block means of images (B, C, H, W)."""
    return F.avg_pool2d(x, factor)


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Each pixel repeated over an f×f block (the adjoint of block averaging, up to f²)."""
    return F.interpolate(x, scale_factor=factor, mode="nearest")


class Inpainting:
    """A hole of missing pixels (images: rows × columns, all channels; vectors: coordinates),
    filled in the base by the data's mean.

    center  the middle half of each side (a quarter of the image)
    half    the bottom half (images) or the second half of the coordinates (vectors)
    random  a rectangle per sample with sides uniform in [1/4, 1/2] of the image's, placed
            uniformly (vectors: an interval); a file's observations must then give `missing`
    """

    name = "inpaint"

    def __init__(self, mask: str, fill: torch.Tensor) -> None:
        if mask not in MASKS:
            raise UserError(f"unknown path.mask '{mask}'; choose one of {', '.join(MASKS)}")
        self.mask, self.fill = mask, fill

    def missing_map(self, batch: int, shape, generator: torch.Generator | None,
                    dtype) -> torch.Tensor:
        """(B, *shape) 1 in the hole."""
        sides = shape[1:] if len(shape) == 3 else shape
        hole = torch.zeros(batch, *sides, dtype=dtype)
        if self.mask != "random":   # one fixed hole for every sample
            hole[(slice(None), *self._box(sides, generator))] = 1.0
        for b in range(batch if self.mask == "random" else 0):
            hole[(b, *self._box(sides, generator))] = 1.0
        return hole[:, None].expand(batch, *shape).clone() if len(shape) == 3 else hole

    def _box(self, sides, generator) -> tuple[slice, ...]:
        if self.mask == "center":
            return tuple(slice(n // 4, n // 4 + max(1, n // 2)) for n in sides)
        if self.mask == "half":
            return (slice(sides[0] // 2, sides[0]),) + tuple(slice(0, n) for n in sides[1:])
        box = []
        for n in sides:
            size = int(torch.randint(max(1, n // 4), max(1, n // 2) + 1, (1,),
                                     generator=generator))
            start = int(torch.randint(0, n - size + 1, (1,), generator=generator))
            box.append(slice(start, start + size))
        return tuple(box)

    def observe(self, x: torch.Tensor, generator: torch.Generator | None,
                source: torch.Tensor | None = None) -> Observation:
        missing = self.missing_map(len(x), x.shape[1:], generator, x.dtype).to(x.device)
        return self.observed(x, missing)

    def observed(self, observed: torch.Tensor, missing: torch.Tensor) -> Observation:
        fill = self.fill.to(device=observed.device, dtype=observed.dtype)
        base = observed * (1 - missing) + fill * missing
        return Observation(base, missing)

    def from_file(self, arrays: dict, shape) -> Observation:
        c = observed_array(arrays, "c", shape)
        if "missing" in arrays:
            missing = observed_array(arrays, "missing", shape, dtype=c.dtype)
            if not torch.all((missing == 0) | (missing == 1)):
                raise UserError("'missing' must hold 0 (observed) or 1 (missing) per pixel")
        elif self.mask == "random":
            raise UserError("this model was trained on random holes: give each observation's "
                            "hole as an array 'missing' (1 = missing) beside 'c'")
        else:
            missing = self.missing_map(len(c), shape, None, c.dtype)
        return self.observed(c, missing)


class SuperResolution:
    """The f×f block means of an image are observed; the base is them up-sampled."""

    name = "superres"

    def __init__(self, factor: int) -> None:
        self.factor = int(factor)

    def observe(self, x: torch.Tensor, generator: torch.Generator | None,
                source: torch.Tensor | None = None) -> Observation:
        return self.from_low(downsample(x, self.factor))

    def from_low(self, low: torch.Tensor) -> Observation:
        base = upsample(low, self.factor)
        return Observation(base, torch.ones_like(base), self.factor)

    def from_file(self, arrays: dict, shape) -> Observation:
        low_shape = (shape[0], *(n // self.factor for n in shape[1:]))
        return self.from_low(observed_array(arrays, "c", low_shape))


class Paired:
    """Any c → x: the base is the paired source x₀ itself (P = I)."""

    name = "paired"

    def observe(self, x: torch.Tensor, generator: torch.Generator | None,
                source: torch.Tensor | None = None) -> Observation:
        if source is None:
            raise UserError("path.base=paired needs paired data: a .npz with arrays x "
                            "(targets) and x0 (sources of the same shape)")
        return Observation(source.to(x), torch.ones_like(x))

    def from_file(self, arrays: dict, shape) -> Observation:
        c = observed_array(arrays, "c", shape)
        return Observation(c, torch.ones_like(c))


def observed_array(arrays: dict, key: str, shape, dtype=torch.float32) -> torch.Tensor:
    """arrays[key] as (N, *shape) floats, or a one-line UserError naming what is wrong."""
    if key not in arrays:
        raise UserError(f"the observations file has no array '{key}' (it has: "
                        f"{', '.join(arrays) or 'none'})")
    value = torch.as_tensor(arrays[key])
    if value.dim() == len(shape) and len(shape) == 3 and shape[0] == 1:
        value = value[:, None]   # (N, H, W) grey images
    if tuple(value.shape[1:]) != tuple(shape):
        raise UserError(f"'{key}' has shape {tuple(value.shape)}; this model needs "
                        f"(N, {', '.join(map(str, shape))})")
    if not torch.isfinite(value.double()).all():
        raise UserError(f"'{key}' has NaN or inf values; remove or fix them")
    return value.to(dtype)


BASES = {"noise": "pure noise (ordinary diffusion / flow matching)",
         "inpaint": "masked image, hole filled by the data mean (path.mask)",
         "superres": "f×f block means up-sampled (path.factor)",
         "paired": "a paired source x0 from the data file"}


def check_base(name: str, event_shape, kind: str, factor: int, has_sources: bool) -> None:
    """Refuse, before anything is written, a base the data cannot have."""
    if name not in BASES:
        raise UserError(f"unknown path.base '{name}'; choose one of {', '.join(BASES)}")
    if name != "noise" and kind == "particles":
        raise UserError(f"path.base={name} needs images or vectors; particles have no "
                        f"fixed pixel grid to observe")
    if name == "superres":
        if kind != "image":
            raise UserError("path.base=superres down-samples images; use data.kind=image")
        if factor < 2 or any(n % factor for n in event_shape[1:]):
            raise UserError(f"path.factor={factor} must be >= 2 and divide the image's sides "
                            f"{tuple(event_shape[1:])}")
    if name == "paired" and not has_sources:
        raise UserError("path.base=paired needs paired data: a .npz with arrays x (targets) "
                        "and x0 (sources of the same shape)")
    if name != "paired" and has_sources:
        raise UserError("the data have sources x0: set path.base=paired to learn x0 → x "
                        "(or drop x0 from the file)")


def make_corruption(name: str, mask: str, factor: int, fill: torch.Tensor):
    """The corruption of path.base (None for pure noise)."""
    if name == "inpaint":
        return Inpainting(mask, fill)
    if name == "superres":
        return SuperResolution(factor)
    if name == "paired":
        return Paired()
    return None


def psnr(restored: torch.Tensor, truth: torch.Tensor, data_range: float) -> torch.Tensor:
    """Per image: 10·log10(range² / MSE) in dB, MSE over every pixel of the image."""
    mse = (restored - truth).double().flatten(1).pow(2).mean(1)
    return 10.0 * torch.log10(data_range ** 2 / mse.clamp_min(1e-30))


def residual_scale(corruption, x: torch.Tensor, sources: torch.Tensor | None,
                   seed: int) -> float:
    """RMS of the residual x − b(c) per unknown coordinate over the training set: the σ_data
    of the residual's path (its EDM preconditioning and input scaling)."""
    generator = torch.Generator().manual_seed(seed)
    obs = corruption.observe(x, generator, sources)
    residual = obs.project(x - obs.base)
    total = float(obs.dims().sum())
    return math.sqrt(float(residual.double().pow(2).sum()) / total) if total > 0 else 1.0
