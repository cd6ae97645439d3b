"""`--method masked`: the data half's masked lattice network and sampler as a spin Boltzmann
generator — exact normalisation for two and three states, exact sampling, the sublattice order
and a checkpointed gradient equal to the plain one (training, transfer and the CLI:
test_spin_models, for both spin models)."""

import itertools

import pytest
import torch
from scipy.stats import chisquare

from heatbath.nets.masked_spins import MaskedLatticeSpins
from heatbath.paths.masked import MaskedPath, sublattice_steps

SMALL_NET = {"masked.channels": 8, "masked.depth": 2}
SMALL_CLI = [f"--set={key}={value}" for key, value in SMALL_NET.items()]
ISING, POTTS3 = (-1.0, 1.0), (0.0, 1.0, 2.0)


def all_states(values, L: int, M: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product(values, repeat=L * M)),
                        dtype=torch.float64).reshape(-1, L, M)


def random_model(values, seed: int = 1, scale: float = 0.5, depth: int = 2,
                 **options) -> MaskedLatticeSpins:
    """An untrained model with every weight perturbed (the initial one is the uniform law)."""
    generator = torch.Generator().manual_seed(seed)
    model = MaskedLatticeSpins(torch.tensor(values), channels=8, depth=depth,
                               generator=generator, **options).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model


CASES = [(ISING, 3, 3, {}), (ISING, 3, 3, {"conditioned": True, "symmetric": True}),
         (POTTS3, 2, 3, {"symmetric": True}), (POTTS3, 3, 2, {"conditioned": True}),
         (ISING, 3, 3, {"order": "random", "order_seed": 3})]


@pytest.mark.parametrize("values,L,M,options", CASES)
def test_q_sums_to_one_over_every_state(values, L, M, options):
    model, states = random_model(values, **options), all_states(values, L, M)
    betas = (0.2, 0.7) if options.get("conditioned") else (None,)
    laws = [model.log_prob(states, beta).detach() for beta in betas]
    for log_q in laws:
        assert torch.logsumexp(log_q, 0).item() == pytest.approx(0.0, abs=1e-10)
    if len(laws) == 2:      # the conditioning is used
        assert not torch.allclose(*laws)
    if options.get("symmetric"):   # relabelling every site leaves q_sym unchanged
        shifted = model.values[(torch.searchsorted(model.values, states) + 1) % len(values)]
        assert torch.allclose(model.log_prob(shifted, betas[0]).detach(), laws[0], atol=1e-12)


@pytest.mark.parametrize("values,L,M,options", CASES[1:3])
def test_sampled_log_q_is_the_scored_one_and_draws_do_not_depend_on_n(values, L, M, options):
    model = random_model(values, **options)
    beta = 0.4 if options.get("conditioned") else None
    spins, log_q = model.sample(40, L, M, beta, torch.Generator().manual_seed(2))
    assert torch.allclose(log_q, model.log_prob(spins, beta).detach(), atol=1e-12, rtol=0)
    fewer, _ = model.sample(7, L, M, beta, torch.Generator().manual_seed(2))
    assert torch.equal(fewer, spins[:7])


def one_per_step(steps):
    return [site.reshape(1) for chunk in steps for site in chunk]


@pytest.mark.parametrize("values", [ISING, POTTS3])
def test_sublattice_steps_are_the_one_site_per_step_model_in_that_order(values):
    """Revealing a sublattice at once = revealing its sites one after the other, because they
    lie beyond the net's reach (depth 1: reach 2; a 6×6 lattice is cut at spacing 3)."""
    model = random_model(values, depth=1)
    steps = model.steps(6, 6)
    assert len(steps) == 9 and all(len(chunk) == 4 for chunk in steps)
    spins, log_q = model.sample(20, 6, 6, None, torch.Generator().manual_seed(6))
    states = torch.searchsorted(model.values, spins)
    sequential = MaskedPath.ordered_log_prob(model.net, states, one_per_step(steps)).detach()
    assert torch.allclose(log_q, sequential, atol=1e-12, rtol=0)
    # the same grouping one step narrower than the reach is not exact
    close = sublattice_steps((6, 6), 1)          # spacing 2: neighbours within reach
    grouped = MaskedPath.ordered_log_prob(model.net, states, close).detach()
    ungrouped = MaskedPath.ordered_log_prob(model.net, states, one_per_step(close)).detach()
    assert (grouped - ungrouped).abs().max() > 1e-3


def test_sampled_frequencies_match_q_on_a_2x2_potts_lattice():
    model, states = random_model(POTTS3, scale=0.12), all_states(POTTS3, 2, 2)
    probability = model.log_prob(states).detach().exp()
    n = 20000
    assert n * probability.min() > 5 and probability.max() > 3 * probability.min()
    spins, _ = model.sample(n, 2, 2, None, torch.Generator().manual_seed(5))
    index = (torch.searchsorted(model.values, spins).flatten(1)
             * torch.tensor([27, 9, 3, 1])).sum(1)
    counts = torch.bincount(index, minlength=81).double()
    assert chisquare(counts.numpy(), (n * probability).numpy()).pvalue > 1e-3


def test_the_checkpointed_gradient_is_the_plain_one():
    """Recomputing each pass in the backward must see that pass's mask, not the last one."""
    model = random_model(ISING, conditioned=True)
    spins, _ = model.sample(6, 3, 3, 0.5, torch.Generator().manual_seed(3))
    states = torch.searchsorted(model.values, spins)
    weights = torch.linspace(-1, 1, 6, dtype=torch.float64)
    (weights * model.log_prob(spins, 0.5)).sum().backward()
    checkpointed = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    net = lambda x, m: model.net(x, m, torch.full((6,), 0.5))   # noqa: E731
    flat = torch.arange(9)
    plain = sum(MaskedPath.site_log_probs(net, states, (flat >= i).expand(6, 9).reshape(6, 3, 3))
                .flatten(1)[:, i] for i in range(9))
    (weights * plain).sum().backward()
    for a, p in zip(checkpointed, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-12)
    assert max(float(a.abs().max()) for a in checkpointed) > 1e-3
