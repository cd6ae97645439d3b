"""Build energy targets from spec strings: `NAME[:key=value,...]` or `file.py:NAME[:key=value]`.

    build_target("ising2d:L=16,beta=0.44")
    build_target("gaussian:dim=4,std=2")
    build_target("examples/my_energy.py:double_well")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from heatbath.core.errors import UserError
from heatbath.core.spec import call_with_params, parse_spec
from heatbath.targets.aldp import AlanineDipeptide
from heatbath.targets.analytic import Gaussian, Harmonic
from heatbath.targets.base import EnergyTarget
from heatbath.targets.benchmarks import DW4, GMM40, ManyWell
from heatbath.targets.ising import Ising2D
from heatbath.targets.lattice import Phi4
from heatbath.targets.particles import HarmonicCluster, LennardJones
from heatbath.targets.potts import Potts2D
from heatbath.targets.plugin import load_plugin


@dataclass(frozen=True)
class TargetEntry:
    factory: Callable[..., EnergyTarget]   # its keyword arguments are the accepted parameters
    description: str


def lj13(pairs: str = "once") -> LennardJones:
    return LennardJones(n_particles=13, pairs=pairs)


def lj55(pairs: str = "once") -> LennardJones:
    return LennardJones(n_particles=55, pairs=pairs)


def lj13_doubled() -> LennardJones:
    return LennardJones(n_particles=13, pairs="doubled")


def lj55_doubled() -> LennardJones:
    return LennardJones(n_particles=55, pairs="doubled")


TARGETS: dict[str, TargetEntry] = {
    "gaussian": TargetEntry(Gaussian, "Gaussian N(mean, std^2 I) in any dimension; "
                                      "exact everything"),
    "harmonic": TargetEntry(Harmonic, "harmonic well 1/2 beta k |x|^2; exact everything"),
    "gmm40": TargetEntry(GMM40, "FAB 2-D mixture of 40 Gaussians; log Z = 0, exact samples"),
    "manywell32": TargetEntry(ManyWell, "FAB ManyWell (dim/2 double wells, 2^(dim/2) modes); "
                                        "exact log Z and samples"),
    "dw4": TargetEntry(DW4, "Koehler et al. 4-particle 2-D double-well pair potential"),
    "harmonic_cluster": TargetEntry(HarmonicCluster, "P particles in d-D on springs to their "
                                                     "centroid; exact log Z on the zero-CoM "
                                                     "subspace, exact samples"),
    "lj13": TargetEntry(lj13, "Lennard-Jones cluster of 13 particles in 3-D, pairs counted once "
                              "(bgflow); pairs=doubled for the other convention"),
    "lj13_doubled": TargetEntry(lj13_doubled, "LJ13 with the pair term doubled (iDEM / "
                                              "equivariant flow matching data sets)"),
    "lj55": TargetEntry(lj55, "Lennard-Jones cluster of 55 particles in 3-D, pairs counted once "
                              "(bgflow); pairs=doubled for the other convention"),
    "lj55_doubled": TargetEntry(lj55_doubled, "LJ55 with the pair term doubled (iDEM / "
                                              "equivariant flow matching data sets)"),
    "phi4": TargetEntry(Phi4, "phi^4 lattice field theory on a periodic LxL lattice; "
                              "exact for lam=0"),
    "ising2d": TargetEntry(Ising2D, "2-D Ising model on a periodic LxM lattice; exact ln Z, E, C "
                                    "(Kaufman) and exact samples for <= 20 spins"),
    "potts2d": TargetEntry(Potts2D, "2-D q-state Potts model on a periodic LxM lattice; exact "
                                    "ln Z, E, C by transfer matrix (q^min(L,M) <= 2187) or "
                                    "enumeration"),
    "aldp": TargetEntry(AlanineDipeptide, "alanine dipeptide (22 atoms) through OpenMM, "
                                          "vacuum or OBC2 implicit solvent; needs "
                                          "heatbath[molecules]"),
}

ALIASES = {"manywell": "manywell32", "ising": "ising2d", "potts": "potts2d",
           "normal": "gaussian", "alanine_dipeptide": "aldp"}


def _plugin_parts(spec: str) -> tuple[str, str, dict] | None:
    """'dir/f.py:NAME:k=v' -> ('dir/f.py', 'NAME', {'k': v}); None if spec names no .py file."""
    if spec.endswith(".py"):
        raise UserError(f"say which energy in '{spec}' to use: write {spec}:NAME")
    path, found, rest = spec.partition(".py:")
    if not found:
        head = spec.partition(":")[0]
        if "/" in head or "\\" in head or Path(head).suffix:   # a file, but not a .py one
            raise UserError(f"plug-in file must be a .py file, got '{head}'")
        return None
    name, params = parse_spec(rest)
    return path + ".py", name, params


def plugin_file(spec: str) -> Path | None:
    """The .py file a plug-in spec names (None for a built-in target)."""
    parts = _plugin_parts(spec.strip())
    return None if parts is None else Path(parts[0])


def build_target(spec: str, *, run_dir: Path | None = None, plugin=None) -> EnergyTarget:
    """A fresh target (counters at zero) from a built-in name or a plug-in file.

    With `plugin` (a `core.records.PluginCopy`) a plug-in is loaded from the copy kept in
    `run_dir`, after checking that copy's SHA-256 against the one recorded at fit time, so a run
    directory works from any working directory and never with an edited energy.
    """
    spec = spec.strip()
    if not spec:
        raise UserError(f"empty target spec; give one of {', '.join(TARGETS)} "
                        f"or path/to/file.py:NAME")
    parts = _plugin_parts(spec)
    if parts is not None:
        if plugin is not None:
            from heatbath.targets.plugin import verified_copy

            parts = (str(verified_copy(Path(run_dir), plugin)), *parts[1:])
        return load_plugin(*parts)
    name, params = parse_spec(spec)
    name = ALIASES.get(name.lower(), name.lower())
    if name not in TARGETS:
        raise UserError(f"unknown target '{name}'; known: {', '.join(TARGETS)} "
                        f"(or a plug-in: path/to/file.py:NAME)")
    return call_with_params(TARGETS[name].factory, params, f"target '{name}'")


def list_targets() -> list[dict]:
    """One entry per built-in target with its defaults (for `heatbath targets --json`)."""
    entries = []
    for name, entry in TARGETS.items():
        listing = entry.factory().describe()
        listing.update(name=name, description=entry.description)
        entries.append(listing)
    return entries
