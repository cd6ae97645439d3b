"""Neural networks for vector fields / scores / denoisers, plus weight averaging.

Every network is a plain `nn.Module` with `forward(x, t, c=None, drop=None) -> tensor shaped like x`
(see `MLP` for the meaning of c and drop). `build_net` picks one from an event shape. A
`HollowMLP` is an MLP alternative whose exact divergence costs one backward pass instead of D;
an `EGNN` is E(n)-equivariant on particle configurations (P, d) and returns CoM-free output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from heatbath.core.errors import UserError
from heatbath.nets.conditioner import Conditioner
from heatbath.nets.context import WithContext
from heatbath.nets.egnn import EGNN
from heatbath.nets.ema import EMA
from heatbath.nets.flat import Flattened
from heatbath.nets.hollow import HollowMLP
from heatbath.nets.masked_lattice import MaskedLatticeNet
from heatbath.nets.mlp import MLP
from heatbath.nets.time_lattice import TimeLatticeNet
from heatbath.nets.unet import UNet

__all__ = ["MLP", "HollowMLP", "MaskedLatticeNet", "TimeLatticeNet", "UNet", "EGNN", "EMA",
           "Conditioner", "NETS", "NetKind", "build_net",
           "fits", "fitting", "resolved_net", "space_modality",
           "count_parameters",
           "NetConfigError"]


@dataclass(frozen=True)
class NetKind:
    """A `model.net` choice: the options it takes and the samples it needs: "any" event shape
    (flattened to a vector), "image" (C, H, W) or "particles" (P, d)."""

    name: str
    options: tuple[str, ...]
    modality: str
    summary: str


NETS: dict[str, NetKind] = {k.name: k for k in (
    NetKind("mlp", ("hidden", "depth", "fourier", "fourier_scale"), "any",
            "residual MLP (images are flattened), optional Fourier features of x"),
    NetKind("hollow", ("hidden", "depth", "features"), "any",
            "hollow MLP: exact divergence in one backward pass"),
    NetKind("unet", ("base", "mults", "num_res", "attention"), "image", "small U-Net for images"),
    NetKind("egnn", ("hidden", "depth"), "particles",
            "E(n)-equivariant graph network for particles (P, d); CoM-free output"),
    NetKind("periodic", ("features", "depth"), "lattice",
            "periodic conv net: q logits per site of a categorical lattice (L, M), masked "
            "(path masked) or at time t (path uniform); translation-equivariant, any L×M"),
)}
def fits(net: str, modality: str) -> bool:
    """Whether network `net` can learn samples of `modality` (vector | image | particles |
    lattice).

    "any" networks flatten images, but not particles: their output is not translation
    invariant, so a flow built on it would drift off the zero-centre-of-mass subspace that
    particle models live on (and its subspace divergence would be wrong).
    """
    needs = NETS[net].modality
    # Lattices are categorical states, not numbers: only a logits network reads them.
    return needs == modality or (needs == "any" and modality not in ("particles", "lattice"))


def fitting(modality: str) -> list[str]:
    return [name for name in NETS if fits(name, modality)]


DEFAULT_NETS = {"image": "unet", "particles": "egnn", "lattice": "periodic"}   # every other modality: "mlp"


def space_modality(space) -> str:
    """What a network sees of an energy target's state space: particle configurations, or the
    flat vectors of its chart (every other space)."""
    return "particles" if space.kind == "centred_particles" else "vector"


def resolved_net(kind: str, modality: str) -> str:
    """`kind`, or for "auto" the modality's default network: a U-Net for images, the
    E(n)-equivariant EGNN for particles, an MLP otherwise."""
    return DEFAULT_NETS.get(modality, "mlp") if kind == "auto" else kind


# Networks whose output at a coordinate may depend on every input: they can read a context
# beside x (a hollow net's one-pass divergence, an EGNN's equivariance would not survive it).
CONTEXT_NETS = ("mlp", "unet")

ALL_OPTIONS = tuple(dict.fromkeys(name for k in NETS.values() for name in k.options))
NET_KINDS = tuple(NETS)


class NetConfigError(UserError, ValueError):
    """A bad network choice: a UserError for the CLI, and a ValueError for library callers."""


def _check_kind_options(kind: str, options: dict[str, object]) -> None:
    """Refuse options that belong to another kind, rather than silently ignoring them."""
    given = [name for name in ALL_OPTIONS
             if name not in NETS[kind].options and options[name] is not None]
    if given:
        raise NetConfigError(f"option(s) {', '.join(given)} do not apply to a {kind!r} network")


def build_net(
    kind: str,
    event_shape: Sequence[int],
    *,
    hidden: int | None = None,
    depth: int | None = None,
    base: int | None = None,
    mults: Sequence[int] | None = None,
    num_res: int | None = None,
    attention: bool | None = None,
    features: int | None = None,
    fourier: int | None = None,
    fourier_scale: float | None = None,
    time_dim: int | None = None,
    num_classes: int | None = None,
    cond_dim: int | None = None,
    context_channels: int | None = None,
    num_states: int | None = None,
    time_conditioned: bool = False,
    seed: int | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """Build an `MLP` or `HollowMLP` (any event shape; others are flattened to vectors), a
    `UNet` (event_shape (C, H, W)) or an `EGNN` (event_shape (P, d)).

    Options left as None take the network's own defaults; giving an option of the other kind
    (e.g. `hidden` for a U-Net) is an error. With `seed`, initialisation uses that seed without
    touching the global RNG; otherwise it draws from the global RNG as usual.
    `context_channels` k > 0 wraps the network in `WithContext`: it then also reads a context
    of k channels (images) or k features (vectors) beside x (data-dependent couplings).
    `num_states` q: the states per site of a "periodic" lattice network (its output);
    `time_conditioned`: it also reads t (`TimeLatticeNet`, the uniform path) instead of a mask.
    """
    if kind not in NET_KINDS:
        raise NetConfigError(f"unknown network kind {kind!r}; choose one of {', '.join(NET_KINDS)}")
    shape = tuple(int(n) for n in event_shape)
    if context_channels:
        if kind not in CONTEXT_NETS:
            raise NetConfigError(f"a {kind!r} network cannot read an observation beside x; use "
                                 f"model.net={' or '.join(CONTEXT_NETS)}")
        inner = build_net(kind, (shape[0] + context_channels, *shape[1:]), hidden=hidden,
                          depth=depth, base=base, mults=mults, num_res=num_res,
                          attention=attention, features=features, fourier=fourier,
                          fourier_scale=fourier_scale, time_dim=time_dim,
                          num_classes=num_classes, cond_dim=cond_dim, seed=seed, dtype=dtype)
        return WithContext(inner, shape[0], context_channels)
    _check_kind_options(kind, dict(hidden=hidden, depth=depth, base=base, mults=mults,
                                   num_res=num_res, attention=attention, features=features,
                                   fourier=fourier, fourier_scale=fourier_scale))
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        try:
            if kind in ("mlp", "hollow"):
                net = _build_vector_net(kind, shape, hidden, depth, features, time_dim,
                                        num_classes, cond_dim,
                                        _given(fourier=fourier, fourier_scale=fourier_scale))
            elif kind == "egnn":
                net = _build_egnn(shape, hidden, depth, time_dim, num_classes, cond_dim)
            elif kind == "periodic":
                net = _build_periodic(shape, features, depth, num_states, num_classes,
                                      cond_dim, seed, time_conditioned)
            else:
                net = _build_unet(shape, base, mults, num_res, attention, time_dim, num_classes,
                                  cond_dim)
        except NetConfigError:
            raise
        except (ValueError, TypeError) as exc:   # the constructors check their own sizes
            raise NetConfigError(f"bad {kind!r} network settings: {exc}") from None
    return net if dtype is None else net.to(dtype)


def _given(**options: object) -> dict[str, object]:
    """Keep only the options the caller set, so the constructor defaults apply to the rest."""
    return {name: value for name, value in options.items() if value is not None}


def _build_vector_net(kind, shape, hidden, depth, features, time_dim, num_classes,
                      cond_dim, fourier_options: dict) -> nn.Module:
    dim = math.prod(shape)
    options = _given(hidden=hidden, depth=depth, time_dim=time_dim)
    if kind == "hollow":
        net = HollowMLP(dim, num_classes=num_classes, cond_dim=cond_dim,
                        **options, **_given(features=features))
    else:
        net = MLP(dim, num_classes=num_classes, cond_dim=cond_dim, **options, **fourier_options)
    return net if len(shape) == 1 else Flattened(net, shape)


def _build_egnn(shape, hidden, depth, time_dim, num_classes, cond_dim) -> EGNN:
    if len(shape) != 2:
        raise NetConfigError(f"an 'egnn' needs a particle event shape (P, d), got {shape}")
    return EGNN(shape[0], shape[1], num_classes=num_classes, cond_dim=cond_dim,
                **_given(hidden=hidden, depth=depth, time_dim=time_dim))


def _build_periodic(shape, features, depth, num_states, num_classes, cond_dim,
                    seed, time_conditioned=False) -> nn.Module:
    if len(shape) != 2 or num_states is None:
        raise NetConfigError(f"a 'periodic' net needs a lattice event shape (L, M) and "
                             f"num_states, got {shape} and {num_states}")
    if num_classes is not None or cond_dim is not None:
        raise NetConfigError("a 'periodic' lattice net takes no condition")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    cls = TimeLatticeNet if time_conditioned else MaskedLatticeNet
    return cls(num_states, **_given(channels=features, depth=depth), generator=generator)


def _build_unet(shape, base, mults, num_res, attention, time_dim, num_classes, cond_dim) -> UNet:
    if len(shape) != 3:
        raise NetConfigError(f"a 'unet' needs an image event shape (C, H, W), got {shape}")
    channels, height, width = shape
    return UNet(channels, (height, width), num_classes=num_classes, cond_dim=cond_dim,
                **_given(base=base, mults=None if mults is None else tuple(mults), num_res=num_res,
                         attention=attention, time_dim=time_dim))


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters (only those with requires_grad unless trainable_only=False)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
