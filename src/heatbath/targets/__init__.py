"""Energy targets: Boltzmann densities exp(−U)/Z with U in kT, built-in or your own.

`build_target("NAME[:k=v]")` / `build_target("file.py:NAME")` makes one from a spec; subclass
`EnergyTarget` (implement `_energy`, set `event_shape`) to bring your own in Python.
"""

from heatbath.targets.base import EnergyTarget, ExactValues
from heatbath.targets.spin_lattice import SpinLattice


def build_target(spec: str, **options):
    """A fresh target from a spec (see `heatbath targets`); imports the registry lazily."""
    from heatbath.targets.registry import build_target as build

    return build(spec, **options)


__all__ = ["EnergyTarget", "ExactValues", "SpinLattice", "build_target"]
