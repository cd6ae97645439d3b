"""Lattice state spaces: one value per site of a periodic lattice (real fields or discrete
states: ±1 spins, Potts state indices)."""

from __future__ import annotations

from heatbath.spaces.base import FreeSpace


class LatticeSpace(FreeSpace):
    """A field on the sites of a lattice of `event_shape`; per-site quantities divide by `sites`.

    With `spins=True` the values are discrete, `values` per site (±1 unless told, e.g.
    "{0, ..., 2}" for 3-state Potts), and densities refer to the counting measure on
    values^sites (log Z of a spin model is a log of a sum), else to Lebesgue measure on R^sites.
    """

    def __init__(self, event_shape: tuple[int, ...], spins: bool = False,
                 values: str = "{-1, +1}") -> None:
        super().__init__(event_shape)
        self.sites = self.dim
        self.spins = bool(spins)
        self.values = values
        self.kind = "spin_lattice" if spins else "lattice"

    @property
    def measure(self) -> str:
        shape = "x".join(map(str, self.event_shape))
        if self.spins:
            return f"counting measure on {self.values}^{self.sites} ({shape} periodic lattice)"
        return f"Lebesgue measure on R^{self.sites} (one real value per site of a {shape} lattice)"
