"""Exact MCMC moves for the periodic 2-D q-state Potts model, batched over independent chains.

Convention (same as `targets/potts.py`): states are float tensors (B, L, M) holding the state
index 0..q−1 of every site, and

    H(s) = −J Σ⟨ij⟩ δ(sᵢ, sⱼ) − h Σᵢ δ(sᵢ, 0),    π_β(s) ∝ exp(−β H(s)),

with the bonds to the right and down neighbour of every site (2LM bonds, periodic): J > 0 favours
equal neighbours, h > 0 favours state 0. Every move has the signature of the Ising moves,
(states, beta, J, h, generator) -> states, once `potts_updates(q)` has bound q; beta is a number
or one value per chain (B,). Sweeps update one colour of `lattice_colouring` at a time, which is
exact because same-colour sites never neighbour each other.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch

from heatbath.mcmc.spins import (_DIRECTIONS, Beta, CountedLatticeEnergy, Sweep,
                                 _check_lattice, _per_chain, lattice_colouring)


@dataclass(frozen=True)
class PottsModel(CountedLatticeEnergy):
    """H(s) without β of the q-state Potts model (see `CountedLatticeEnergy`)."""

    J: float = 1.0
    h: float = 0.0
    q: int = 3
    counter: list = field(default_factory=lambda: [0], compare=False, repr=False)

    def _energy(self, states: torch.Tensor) -> torch.Tensor:
        return potts_energy(states, self.J, self.h)


def potts_energy(states: torch.Tensor, J: float = 1.0, h: float = 0.0) -> torch.Tensor:
    """H(s) for a batch (B, L, M) of state indices -> (B,); not multiplied by β."""
    matches = (states == states.roll(-1, dims=1)).sum(dim=(1, 2)) \
        + (states == states.roll(-1, dims=2)).sum(dim=(1, 2))
    zeros = (states == 0).sum(dim=(1, 2))
    return -J * matches.to(states.dtype) - h * zeros.to(states.dtype)


def uniform_potts(n: int, L: int, M: int, q: int, generator: torch.Generator,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Exact draws at β = 0 (independent uniform states); log Z(β=0) = L·M·ln q."""
    return torch.randint(0, q, (n, L, M), generator=generator).to(dtype)


def neighbour_counts(states: torch.Tensor, q: int) -> torch.Tensor:
    """How many of the four periodic neighbours of every site are in each state, (B, L, M, q).

    On a 2-wide axis both bonds to the same neighbour count, as they do in H."""
    onehot = torch.nn.functional.one_hot(states.long(), q).to(states.dtype)
    return sum(onehot.roll(shift, dims=dim) for shift, dim in _DIRECTIONS)


def _local_log_weights(states: torch.Tensor, beta: Beta, J: float, h: float,
                       q: int) -> torch.Tensor:
    """−β × (the part of H that depends on site i's state), for every candidate state (B,L,M,q)."""
    field_on_zero = torch.zeros(q, dtype=states.dtype, device=states.device)
    field_on_zero[0] = h
    b = beta.unsqueeze(-1) if isinstance(beta, torch.Tensor) else beta
    return b * (J * neighbour_counts(states, q) + field_on_zero)


def _uniforms(states: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(states.shape, generator=generator, dtype=states.dtype,
                      device=states.device)


def potts_heat_bath_sweep(states: torch.Tensor, beta: Beta, J: float, h: float,
                          generator: torch.Generator, q: int) -> torch.Tensor:
    """One heat-bath (Gibbs) sweep, colour by colour: each site of the colour is drawn from its
    exact conditional over the q states, P(k) ∝ exp(β(J·#neighbours in k + h·δ(k, 0)))."""
    _check_lattice(states)
    b = _per_chain(beta, states)
    for colour in lattice_colouring(*states.shape[1:], states.device):
        prob = torch.softmax(_local_log_weights(states, b, J, h, q), dim=-1)
        # Inverse CDF: the drawn state is how many cumulative probabilities lie below u.
        below = (prob.cumsum(-1) < _uniforms(states, generator).unsqueeze(-1)).sum(-1)
        fresh = below.clamp(max=q - 1).to(states.dtype)
        states = torch.where(colour, fresh, states)
    return states


def potts_metropolis_sweep(states: torch.Tensor, beta: Beta, J: float, h: float,
                           generator: torch.Generator, q: int) -> torch.Tensor:
    """One Metropolis sweep, colour by colour: every site proposes a uniformly drawn other state
    (a symmetric proposal), kept w.p. min(1, e^{−βΔH})."""
    _check_lattice(states)
    b = _per_chain(beta, states)
    for colour in lattice_colouring(*states.shape[1:], states.device):
        shift = torch.randint(1, q, states.shape, generator=generator, device=states.device)
        proposal = (states.long() + shift) % q
        log_weights = _local_log_weights(states, b, J, h, q)
        gain = (log_weights.gather(-1, proposal.unsqueeze(-1))
                - log_weights.gather(-1, states.long().unsqueeze(-1))).squeeze(-1)   # −βΔH
        accept = colour & (_uniforms(states, generator) < torch.exp(gain))
        states = torch.where(accept, proposal.to(states.dtype), states)
    return states


def potts_wolff_update(states: torch.Tensor, beta: Beta, J: float, h: float,
                       generator: torch.Generator, q: int) -> torch.Tensor:
    """One Wolff single-cluster move per chain (h = 0, J ≥ 0 only), all chains grown in parallel.

    From a uniformly chosen seed the cluster grows by breadth-first search: every bond from a new
    cluster site to an outside neighbour in the same state joins it with probability
    1 − exp(−βJ) (the Fortuin–Kasteleyn bond probability of the δ coupling), each bond tried
    once. The whole cluster then moves to one uniformly drawn other state, the same for all its
    sites; this satisfies detailed balance for π_β.
    """
    if h != 0:
        raise ValueError(f"the Potts Wolff move is exact only for h = 0, got h = {h}")
    if J < 0:
        raise ValueError(f"the Potts Wolff move needs J >= 0 (no FK clusters for J < 0), "
                         f"got J = {J}")
    _check_lattice(states)
    B, L, M = states.shape
    b = _per_chain(beta, states)
    p_add = -torch.expm1(-torch.as_tensor(b, dtype=states.dtype) * J)
    seed = torch.randint(0, L * M, (B,), generator=generator, device=states.device)
    cluster = torch.zeros(B, L * M, dtype=torch.bool, device=states.device)
    cluster[torch.arange(B, device=states.device), seed] = True
    cluster = cluster.reshape(B, L, M)
    frontier = cluster
    while bool(frontier.any()):
        grown = torch.zeros_like(cluster)
        for shift, dim in _DIRECTIONS:
            equal = states == states.roll(shift, dims=dim)
            grown |= (frontier.roll(shift, dims=dim) & equal
                      & (_uniforms(states, generator) < p_add))
        frontier = grown & ~cluster
        cluster = cluster | frontier
    shift = torch.randint(1, q, (B, 1, 1), generator=generator, device=states.device)
    moved = ((states.long() + shift) % q).to(states.dtype)
    return torch.where(cluster, moved, states)


def potts_updates(q: int) -> dict[str, Sweep]:
    """The `method.kernel` names of the spin updates, for q-state Potts states."""
    moves = {"metropolis": potts_metropolis_sweep, "heatbath": potts_heat_bath_sweep,
             "wolff": potts_wolff_update}
    return {name: functools.partial(move, q=q) for name, move in moves.items()}
