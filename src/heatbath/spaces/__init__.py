"""State spaces (free, zero-centre-of-mass particles, periodic box, lattices): see `base`."""

from heatbath.spaces.base import FreeSpace
from heatbath.spaces.lattice import LatticeSpace
from heatbath.spaces.particles import (CentredParticles, PeriodicParticles, centring_basis,
                                       pair_distances)

__all__ = ["FreeSpace", "LatticeSpace", "CentredParticles", "PeriodicParticles",
           "centring_basis", "pair_distances"]
