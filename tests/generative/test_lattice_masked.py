"""The masked (absorbing-state) model of categorical lattices: exact log q of the fixed-order
sampler, the sampler's frequencies, the ELBO's minimiser, translation equivariance, exact
resume of its training, and the site orders (paths.masked.order_steps: raster, sublattice,
random) — each an exact autoregressive model, the sublattice order the one-by-one order in
disguise, which a spacing within the network's reach is not."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from heatbath.nets import build_net
from heatbath.paths import build_path
from heatbath.paths.masked import ORDERS, MaskedPath, order_steps, sublattice_steps

PATH = build_path("masked")


def random_net(shape, q, seed=0, depth=2):
    """An untrained periodic net with a random (not zero) head, in float64: its conditionals
    read every site within `depth + 1` (its reach)."""
    net = build_net("periodic", shape, num_states=q, features=8, depth=depth, seed=seed,
                    dtype=torch.float64)
    head = net.body[-1]
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=generator,
                                      dtype=torch.float64))
        head.bias.copy_(torch.randn(head.bias.shape, generator=generator, dtype=torch.float64))
    return net


def all_lattices(shape, q):
    states = itertools.product(range(q), repeat=math.prod(shape))
    return torch.tensor(list(states), dtype=torch.long).reshape(-1, *shape)


@pytest.mark.parametrize("shape, q", [((3, 3), 2), ((2, 2), 3)])
def test_exact_log_q_sums_to_one_over_every_lattice(shape, q):
    log_q = PATH.log_prob(random_net(shape, q), all_lattices(shape, q))
    assert log_q.std() > 0.5   # a far from uniform model
    assert abs(float(torch.logsumexp(log_q, 0))) < 1e-10


def test_sampler_frequencies_match_its_exact_log_q():
    shape, n = (3, 3), 8000
    net = random_net(shape, 2, seed=3)
    uniforms = torch.rand(n, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x, log_q = PATH.sample(net, uniforms, shape)
    # The returned log q is the probability of what was returned ...
    torch.testing.assert_close(log_q, PATH.log_prob(net, x), rtol=0, atol=1e-10)
    # ... and the draws follow it: chi-square over the 512 states (expected counts >= 5 pooled).
    lattices = all_lattices(shape, 2)
    expected = n * PATH.log_prob(net, lattices).exp().numpy()
    index = (x.flatten(1) * (2 ** torch.arange(8, -1, -1))).sum(1).numpy()
    observed = np.bincount(index, minlength=512).astype(float)
    big = expected >= 5
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    assert chisquare(obs, exp).pvalue > 1e-3


def test_fewer_steps_reveal_every_site_but_have_no_exact_log_q():
    net = random_net((3, 3), 2)
    uniforms = torch.rand(5, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x, log_q = PATH.sample(net, uniforms, (3, 3), nfe=3)
    assert log_q is None and x.shape == (5, 3, 3) and set(x.unique().tolist()) <= {0, 1}
    # One site per step (nfe = D) is the exact sampler, the same draws as nfe=None.
    assert torch.equal(PATH.sample(net, uniforms, (3, 3), nfe=9)[0],
                       PATH.sample(net, uniforms, (3, 3))[0])


class Oracle(torch.nn.Module):
    """Exact conditionals p(x_i | visible sites) of a tabulated distribution, tempered by T
    (T = 1: the true conditionals), as logits (B, q, L, M)."""

    def __init__(self, log_p, lattices, temperature=1.0):
        super().__init__()
        self.log_p, self.lattices, self.temperature = log_p, lattices, temperature

    def forward(self, x, masked):
        q = int(self.lattices.max()) + 1
        flat, hidden = x.flatten(1), masked.flatten(1)
        table = self.lattices.flatten(1)
        # agree[b, s]: lattice s matches x[b] on every visible site
        agree = ((table[None] == flat[:, None]) | hidden[:, None]).all(-1)
        weights = torch.where(agree, self.log_p[None], -math.inf)           # (B, S)
        out = torch.stack([torch.logsumexp(weights[:, :, None] + torch.where(
            table == s, 0.0, -math.inf)[None], 1) for s in range(q)], 1)       # (B, q, D)
        out = out.reshape(x.shape[0], q, *x.shape[1:])
        return out.log_softmax(1) / self.temperature


def exact_expected_loss(net, x):
    """E over k ~ U{1..D} and uniform k-subsets of (D/k)·Σ_masked −log p(x_i | rest), exactly,
    per lattice (in nats per lattice, not per site)."""
    batch, sites = x.shape[0], math.prod(x.shape[1:])
    total = torch.zeros(batch, dtype=torch.float64)
    for subset in itertools.product([False, True], repeat=sites):
        k = sum(subset)
        if k == 0:
            continue
        masked = torch.tensor(subset).reshape(x.shape[1:]).expand(x.shape)
        nll = -(PATH.site_log_probs(net, x, masked) * masked).flatten(1).sum(1)
        total += nll * (sites / k) / sites / math.comb(sites, k)
    return total


def test_the_elbo_is_minimised_by_the_true_conditionals_where_it_is_the_nll():
    shape, q = (2, 2), 2
    lattices = all_lattices(shape, q)
    log_p = torch.randn(len(lattices), generator=torch.Generator().manual_seed(5),
                        dtype=torch.float64).mul(1.5).log_softmax(0)
    oracle = Oracle(log_p, lattices)
    loss = exact_expected_loss(oracle, lattices)
    torch.testing.assert_close(loss, -log_p, rtol=0, atol=1e-10)   # the chain rule, any order
    entropy = float(-(log_p.exp() * log_p).sum())
    for temperature in (0.7, 1.4):   # wrong conditionals score worse on average
        worse = exact_expected_loss(Oracle(log_p, lattices, temperature), lattices)
        assert float((log_p.exp() * worse).sum()) > entropy + 1e-3
    # the stochastic training loss (per site) is an unbiased estimate of the same
    generator = torch.Generator().manual_seed(0)
    draws = lattices[torch.multinomial(log_p.exp(), 20000, replacement=True,
                                       generator=generator)]
    values = PATH.loss(oracle, draws, generator) * 4
    assert abs(float(values.mean()) - entropy) < 4 * float(values.std()) / math.sqrt(20000)


def test_the_network_commutes_with_lattice_translations():
    net = random_net((5, 6), 3)
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(3, (4, 5, 6), generator=generator)
    masked = torch.rand(4, 5, 6, generator=generator) < 0.5
    out = net(x, masked)
    for shift in ((1, 0), (0, 2), (3, 5)):
        moved = net(x.roll(shift, (1, 2)), masked.roll(shift, (1, 2)))
        torch.testing.assert_close(moved, out.roll(shift, (2, 3)), rtol=0, atol=1e-12)
    assert net(torch.zeros(2, 7, 3, dtype=torch.long), torch.ones(2, 7, 3, dtype=torch.bool)
               ).shape == (2, 3, 7, 3)


# scoring only: without gradients (ordered_log_prob checkpoints each pass while they are on)
score = torch.no_grad()(MaskedPath.ordered_log_prob)


def one_by_one(steps):
    """The same sites in the same sequence, one site per step."""
    return [site.view(1) for chunk in steps for site in chunk]


def uniforms(n, sites, seed=0):
    return torch.rand(n, sites, generator=torch.Generator().manual_seed(seed),
                      dtype=torch.float64)


# (shape, q, depth): the brief's tiny lattices, and a 2x6 where a depth-1 net (reach 2) lets
# the sublattice order reveal two sites per step (spacing 3 along the 6)
CASES = [((3, 3), 2, 2), ((2, 3), 3, 2), ((2, 6), 2, 1)]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("shape, q, depth", CASES)
def test_every_order_is_normalised_and_samples_the_log_q_it_scores(order, shape, q, depth):
    net = random_net(shape, q, depth=depth)
    steps, exact = order_steps(order, shape, reach=net.reach, seed=3)
    assert exact
    log_q = score(net, all_lattices(shape, q), steps)
    assert log_q.std() > 0.3   # far from uniform, so normalisation is not trivial
    assert abs(float(torch.logsumexp(log_q, 0))) < 1e-10
    x, drawn = MaskedPath().sample(net, uniforms(50, math.prod(shape)), shape, steps=steps)
    scored = score(net, x, steps)
    torch.testing.assert_close(drawn, scored, rtol=0, atol=1e-10)


def test_the_orders_are_different_models():
    shape, q = (2, 6), 2
    net = random_net(shape, q, depth=1)
    x = all_lattices(shape, q)
    scores = [score(net, x, order_steps(order, shape, reach=net.reach)[0])
              for order in ORDERS]
    for a, b in itertools.combinations(scores, 2):
        assert float((a - b).abs().max()) > 1e-3


def test_sublattice_steps_equal_revealing_their_sites_one_at_a_time():
    shape, q = (6, 6), 3
    net = random_net(shape, q, depth=1)   # reach 2: spacing 3, 9 steps of 4 sites
    steps = sublattice_steps(shape, net.reach)
    assert len(steps) == 9 and all(len(chunk) == 4 for chunk in steps)
    x = torch.randint(q, (20, *shape), generator=torch.Generator().manual_seed(1))
    together = score(net, x, steps)
    torch.testing.assert_close(together, score(net, x, one_by_one(steps)),
                               rtol=0, atol=1e-10)
    # the sampler too: the same uniforms give the same lattices and log q
    drawn = uniforms(20, 36, seed=2)
    x_together, log_q_together = MaskedPath().sample(net, drawn, shape, steps=steps)
    x_single, log_q_single = MaskedPath().sample(net, drawn, shape, steps=one_by_one(steps))
    assert torch.equal(x_together, x_single)
    torch.testing.assert_close(log_q_together, log_q_single, rtol=0, atol=1e-10)


def test_a_spacing_within_the_reach_is_not_the_one_by_one_order():
    shape, q = (6, 6), 3
    net = random_net(shape, q, depth=1)
    close = sublattice_steps(shape, net.reach - 1)   # spacing 2 <= reach 2: neighbours read
    assert len(close) == 4
    x = torch.randint(q, (20, *shape), generator=torch.Generator().manual_seed(1))
    together = score(net, x, close)
    alone = score(net, x, one_by_one(close))
    assert float((together - alone).abs().max()) > 1e-2


def test_the_random_order_is_one_permutation_per_seed():
    shape = (3, 4)
    first, exact = order_steps("random", shape, reach=5, seed=7)
    again, _ = order_steps("random", shape, reach=5, seed=7)
    other, _ = order_steps("random", shape, reach=5, seed=8)
    assert exact and all(len(chunk) == 1 for chunk in first)
    sequence = torch.cat(first)
    assert sorted(sequence.tolist()) == list(range(12))
    assert torch.equal(sequence, torch.cat(again)) and not torch.equal(sequence, torch.cat(other))
    net = random_net(shape, 2, depth=1)
    drawn = uniforms(30, 12)
    a = MaskedPath().sample(net, drawn, shape, steps=first)
    b = MaskedPath().sample(net, drawn, shape, steps=again)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_fewer_steps_than_sites_are_exact_only_for_the_sublattice_order():
    shape = (6, 6)
    for order in ("raster", "random"):
        steps, exact = order_steps(order, shape, reach=2, nfe=4)
        assert not exact and len(steps) == 4 and sorted(torch.cat(steps).tolist()) == list(
            range(36))
    steps, exact = order_steps("sublattice", shape, reach=2)
    assert exact and len(steps) == 9
    assert order_steps("sublattice", shape, reach=2, nfe=9)[0][3].tolist() == steps[3].tolist()
    with pytest.raises(ValueError, match="9 steps"):
        order_steps("sublattice", shape, reach=2, nfe=4)
    with pytest.raises(ValueError, match="order must be one of"):
        order_steps("spiral", shape, reach=2)
