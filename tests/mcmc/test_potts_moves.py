"""Potts moves: heat bath, Metropolis and Wolff leave exp(−βH) invariant (independent chains vs
brute-force enumeration, z-scores from the spread of chain means, so autocorrelation is in the
error bar), take one β per chain, and refuse what they cannot do exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from heatbath.mcmc.potts import (PottsModel, neighbour_counts, potts_energy, potts_updates,
                                 uniform_potts)

F64 = torch.float64


def enumerate_potts(L: int, M: int, q: int, beta: float, J: float = 1.0, h: float = 0.0) -> dict:
    """Exact ⟨H⟩, ⟨fraction in state 0⟩ and ⟨largest state fraction⟩ over all q^(LM) states,
    by plain numpy (independent of the library's enumeration)."""
    n = L * M
    codes = np.arange(q ** n)[:, None]
    states = ((codes // q ** np.arange(n)) % q).reshape(-1, L, M)
    bonds = (states == np.roll(states, -1, axis=1)).sum((1, 2)) \
        + (states == np.roll(states, -1, axis=2)).sum((1, 2))
    zeros = (states == 0).sum((1, 2))
    energy = -J * bonds - h * zeros
    log_w = -beta * energy
    p = np.exp(log_w - log_w.max())
    p /= p.sum()
    largest = np.stack([(states == k).sum((1, 2)) for k in range(q)]).max(0) / n
    return {"energy": float(p @ energy), "zero_fraction": float(p @ zeros / n),
            "largest_fraction": float(p @ largest)}


def chain_means(name: str, L: int, M: int, q: int, beta: float, h: float, n_chains: int,
                n_burn: int, n_measure: int, seed: int) -> torch.Tensor:
    """(chains, 3) per-chain averages of H, the state-0 fraction and the largest fraction."""
    sweep = potts_updates(q)[name]
    g = torch.Generator().manual_seed(seed)
    states = uniform_potts(n_chains, L, M, q, g)
    for _ in range(n_burn):
        states = sweep(states, beta, 1.0, h, g)
    sums = torch.zeros(n_chains, 3, dtype=F64)
    for _ in range(n_measure):
        states = sweep(states, beta, 1.0, h, g)
        counts = torch.nn.functional.one_hot(states.long().flatten(1), q).sum(1).to(F64)
        sums += torch.stack([potts_energy(states, 1.0, h), counts[:, 0] / (L * M),
                             counts.max(1).values / (L * M)], 1)
    return sums / n_measure


def z_scores(per_chain: torch.Tensor, exact: list[float]) -> torch.Tensor:
    stderr = per_chain.std(0) / len(per_chain) ** 0.5
    return (per_chain.mean(0) - torch.tensor(exact, dtype=F64)) / stderr


@pytest.mark.parametrize("name,L,M,beta", [("heatbath", 3, 3, 1.0), ("heatbath", 2, 4, 0.6),
                                           ("metropolis", 3, 3, 1.0), ("wolff", 3, 3, 1.0),
                                           ("wolff", 2, 4, 0.6)])
def test_potts_moves_match_enumeration(name, L, M, beta):
    exact = enumerate_potts(L, M, 3, beta)
    per_chain = chain_means(name, L, M, 3, beta, 0.0, n_chains=600, n_burn=30, n_measure=60,
                            seed=31)
    z = z_scores(per_chain, [exact["energy"], exact["zero_fraction"], exact["largest_fraction"]])
    assert z.abs().max() < 4, z


@pytest.mark.parametrize("name", ["heatbath", "metropolis"])
def test_local_potts_moves_in_a_field_match_enumeration(name):
    exact = enumerate_potts(3, 3, 3, 0.7, h=0.5)
    per_chain = chain_means(name, 3, 3, 3, 0.7, 0.5, n_chains=600, n_burn=30, n_measure=60,
                            seed=32)
    z = z_scores(per_chain, [exact["energy"], exact["zero_fraction"], exact["largest_fraction"]])
    assert z.abs().max() < 4, z


def test_moment_check_has_power_against_the_wrong_beta():
    """The same check rejects chains run at another β: the tolerances are not vacuous."""
    exact = enumerate_potts(3, 3, 3, 1.0)
    per_chain = chain_means("heatbath", 3, 3, 3, 0.8, 0.0, n_chains=600, n_burn=30,
                            n_measure=60, seed=33)
    assert abs(z_scores(per_chain, [exact["energy"], 0.0, 0.0])[0]) > 4


def test_potts_moves_take_one_beta_per_chain_and_keep_the_input():
    g = torch.Generator().manual_seed(0)
    states = uniform_potts(5, 4, 4, 4, g)
    before = states.clone()
    betas = torch.tensor([0.0, 0.5, 1.0, 2.0, 20.0], dtype=F64)
    for sweep in potts_updates(4).values():
        out = states
        for _ in range(30):
            out = sweep(out, betas, 1.0, 0.0, g)
        assert torch.equal(states, before)
        assert set(out.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    # each chain has its own β: at β = 20 the heat bath orders (at worst two straight domain
    # walls, H ≤ −24 of the ground state's −32), at β = 0 a quarter of the 32 bonds match
    ordered = states
    for _ in range(50):
        ordered = potts_updates(4)["heatbath"](ordered, betas, 1.0, 0.0, g)
    energy = potts_energy(ordered, 1.0)
    assert energy[-1] <= -24 and energy[0] > -20, energy


def test_energy_and_neighbour_counts_against_brute_force():
    g = torch.Generator().manual_seed(1)
    states = uniform_potts(3, 3, 4, 3, g)
    counts = neighbour_counts(states, 3)
    for b in range(3):
        brute = 0.0
        for i in range(3):
            for j in range(4):
                s = states[b, i, j]
                brute -= 1.2 * float(s == states[b, (i + 1) % 3, j])
                brute -= 1.2 * float(s == states[b, i, (j + 1) % 4])
                brute -= 0.4 * float(s == 0)
                near = [states[b, (i + 1) % 3, j], states[b, (i - 1) % 3, j],
                        states[b, i, (j + 1) % 4], states[b, i, (j - 1) % 4]]
                for k in range(3):
                    assert counts[b, i, j, k] == sum(float(v == k) for v in near)
        assert potts_energy(states[b:b + 1], 1.2, 0.4)[0] == pytest.approx(brute)
    model = PottsModel(J=1.2, h=0.4, q=3)
    assert torch.allclose(model(states), potts_energy(states, 1.2, 0.4))
    assert model.evaluations == 3 and model == PottsModel(J=1.2, h=0.4, q=3)


@pytest.mark.parametrize("J,h,fragment", [(1.0, 0.1, "h = 0"), (-1.0, 0.0, "J >= 0")])
def test_wolff_refuses_what_it_cannot_do_exactly(J, h, fragment):
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match=fragment):
        potts_updates(3)["wolff"](uniform_potts(2, 3, 3, 3, g), 0.5, J, h, g)
