"""Exact MCMC moves for the periodic 2-D Ising model, batched over independent chains.

Convention (same as `targets/ising.py`): spins are float tensors (B, L, M) of ±1 and

    H(s) = −J Σ⟨ij⟩ sᵢsⱼ − h Σᵢ sᵢ,    π_β(s) ∝ exp(−β H(s)),

with the bonds to the right and down neighbour of every site (2LM bonds, periodic). Every move
takes (spins, beta, J, h, generator) and returns new spins (the input is not modified); beta is a
number or one value per chain (B,), so parallel tempering and annealing over β can use them.

Sweeps update all sites of one colour at once, which is exact because same-colour sites never
neighbour each other: `lattice_colouring` gives the checkerboard's 2 colours when L and M are
even and 3 colours otherwise (on an odd periodic axis the checkerboard puts two neighbours, the
first and the last row, in one colour), so every L×M ≥ 2×2 works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import torch

Beta = Union[float, torch.Tensor]
Sweep = Callable[[torch.Tensor, Beta, float, float, torch.Generator], torch.Tensor]


class CountedLatticeEnergy:
    """H without β of a lattice model, callable as the energy (B,), that counts its cost.

    `evaluations` counts configurations whose energy was computed, and `SpinMove` adds one per
    configuration per sweep (a sweep touches every site's local energy once), so a method's
    cost is counted where it is spent. Subclasses are frozen dataclasses with a `counter`
    field (compare=False: equality ignores the count) and define `_energy`.
    """

    counter: list

    @property
    def evaluations(self) -> int:
        return self.counter[0]

    def count(self, configurations: int) -> None:
        self.counter[0] += configurations

    def energy(self, states: torch.Tensor) -> torch.Tensor:
        self.count(states.shape[0])
        return self._energy(states)

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        return self.energy(states)


@dataclass(frozen=True)
class IsingModel(CountedLatticeEnergy):
    """H(s) = −J Σ⟨ij⟩ sᵢsⱼ − h Σᵢ sᵢ on a periodic lattice (see `CountedLatticeEnergy`)."""

    J: float = 1.0
    h: float = 0.0
    counter: list = field(default_factory=lambda: [0], compare=False, repr=False)

    def _energy(self, spins: torch.Tensor) -> torch.Tensor:
        return ising_energy(spins, self.J, self.h)


def ising_energy(spins: torch.Tensor, J: float = 1.0, h: float = 0.0) -> torch.Tensor:
    """H(s) for a batch (B, L, M) -> (B,); not multiplied by β."""
    bonds = spins * (spins.roll(-1, dims=1) + spins.roll(-1, dims=2))
    return -J * bonds.sum(dim=(1, 2)) - h * spins.sum(dim=(1, 2))


def magnetisation(spins: torch.Tensor) -> torch.Tensor:
    """Magnetisation per site m = Σ s / (L·M), (B,); any event shape (flat rows too)."""
    return spins.flatten(1).mean(dim=1)


def uniform_spins(n: int, L: int, M: int, generator: torch.Generator,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Exact draws at β = 0 (independent fair ±1 spins); log Z(β=0) = L·M·ln 2."""
    bits = torch.randint(0, 2, (n, L, M), generator=generator)
    return (2 * bits - 1).to(dtype)


def _check_lattice(spins: torch.Tensor) -> None:
    if spins.ndim != 3:
        raise ValueError(f"spins must be (chains, L, M), got shape {tuple(spins.shape)}")
    L, M = spins.shape[1:]
    if L < 2 or M < 2:
        raise ValueError(f"lattice must be at least 2×2, got {L}×{M}")


def _cycle_colouring(n: int) -> torch.Tensor:
    """A proper colouring of the n-cycle: 0, 1, 0, 1, … and colour 2 for the last site when n
    is odd (where 0, 1, …, 0 would make the last and first sites, neighbours, equal)."""
    colours = torch.arange(n) % 2
    if n % 2:
        colours[-1] = 2
    return colours


def lattice_colouring(L: int, M: int, device=None) -> list[torch.Tensor]:
    """Boolean masks (L, M), one per colour, with no two periodic neighbours in one colour.

    colour(i, j) = (a(i) + b(j)) mod k with a, b proper colourings of the two cycles: a step
    along one axis changes a or b by ±1 or ±2, never by a multiple of k (k = 3 when an axis is
    odd, where a, b take 3 values; k = 2, the checkerboard, when both are even).
    """
    a, b = _cycle_colouring(L), _cycle_colouring(M)
    k = 2 if L % 2 == 0 and M % 2 == 0 else 3
    colour = (a[:, None] + b[None, :]) % k
    return [(colour == c).to(device) for c in range(k)]


def _per_chain(beta: Beta, spins: torch.Tensor) -> Beta:
    if isinstance(beta, torch.Tensor) and beta.ndim > 0:
        if beta.shape != spins.shape[:1]:
            raise ValueError(f"beta must be a number or shape ({spins.shape[0]},), got "
                             f"{tuple(beta.shape)}")
        return beta.to(spins.dtype).reshape(-1, 1, 1)
    return float(beta)


def neighbour_sum(spins: torch.Tensor) -> torch.Tensor:
    """Σ of the four periodic neighbours of every site, (B, L, M)."""
    return (spins.roll(1, dims=1) + spins.roll(-1, dims=1)
            + spins.roll(1, dims=2) + spins.roll(-1, dims=2))


def metropolis_sweep(spins: torch.Tensor, beta: Beta, J: float, h: float,
                     generator: torch.Generator) -> torch.Tensor:
    """One Metropolis sweep, colour by colour: every site proposes a flip, kept w.p.
    min(1, e^{−βΔH})."""
    _check_lattice(spins)
    b = _per_chain(beta, spins)
    for colour in lattice_colouring(*spins.shape[1:], spins.device):
        delta_h = 2 * spins * (J * neighbour_sum(spins) + h)     # H(flipped) − H(s)
        u = torch.rand(spins.shape, generator=generator, dtype=spins.dtype, device=spins.device)
        flip = colour & (u < torch.exp(-b * delta_h))
        spins = torch.where(flip, -spins, spins)
    return spins


def heat_bath_sweep(spins: torch.Tensor, beta: Beta, J: float, h: float,
                    generator: torch.Generator) -> torch.Tensor:
    """One heat-bath (Gibbs) sweep, colour by colour: sᵢ = +1 w.p. σ(2β(J Σ neighbours + h))."""
    _check_lattice(spins)
    b = _per_chain(beta, spins)
    for colour in lattice_colouring(*spins.shape[1:], spins.device):
        p_up = torch.sigmoid(2 * b * (J * neighbour_sum(spins) + h))
        u = torch.rand(spins.shape, generator=generator, dtype=spins.dtype, device=spins.device)
        fresh = torch.where(u < p_up, 1.0, -1.0).to(spins.dtype)
        spins = torch.where(colour, fresh, spins)
    return spins


# Each direction is (shift, dim) for torch.roll: rolled[i] = original[i − shift], so a frontier
# rolled by (shift, dim) marks the sites whose neighbour in that direction is on the frontier.
_DIRECTIONS = ((1, 1), (-1, 1), (1, 2), (-1, 2))


def wolff_update(spins: torch.Tensor, beta: Beta, J: float, h: float,
                 generator: torch.Generator) -> torch.Tensor:
    """One Wolff single-cluster flip per chain (h = 0 only), all chains grown in parallel.

    From a uniformly chosen seed the cluster grows by breadth-first search over a boolean
    frontier: every bond from a new cluster site to a site outside the cluster is tried exactly
    once and joins it when satisfied (J sᵢsⱼ > 0) with probability 1 − exp(−2β|J|). This is the
    seed's Fortuin–Kasteleyn cluster, so flipping it satisfies detailed balance for π_β. On a
    2-wide axis the two bonds to the same neighbour are distinct bonds (both counted in H), and
    they are tried separately.
    """
    if h != 0:
        raise ValueError(f"the Wolff move is exact only for h = 0, got h = {h}")
    _check_lattice(spins)
    B, L, M = spins.shape
    b = _per_chain(beta, spins)
    p_add = -torch.expm1(-2 * torch.as_tensor(b, dtype=spins.dtype).abs() * abs(J))
    seed = torch.randint(0, L * M, (B,), generator=generator, device=spins.device)
    cluster = torch.zeros(B, L * M, dtype=torch.bool, device=spins.device)
    cluster[torch.arange(B, device=spins.device), seed] = True
    cluster = cluster.reshape(B, L, M)
    frontier = cluster
    while bool(frontier.any()):
        grown = torch.zeros_like(cluster)
        for shift, dim in _DIRECTIONS:
            satisfied = J * spins * spins.roll(shift, dims=dim) > 0
            u = torch.rand(spins.shape, generator=generator, dtype=spins.dtype,
                           device=spins.device)
            grown |= frontier.roll(shift, dims=dim) & satisfied & (u < p_add)
        frontier = grown & ~cluster
        cluster = cluster | frontier
    return torch.where(cluster, -spins, spins)


# `method.kernel` names of the Ising updates (sweep(spins, beta, J, h, generator) -> spins);
# other lattices declare their own (`SpinLattice.updates`) under the same names.
SPIN_UPDATES = {"metropolis": metropolis_sweep, "heatbath": heat_bath_sweep, "wolff": wolff_update}
