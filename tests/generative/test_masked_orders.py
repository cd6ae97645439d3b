"""The masked sampler's site orders (paths.masked.order_steps): raster, sublattice, random.
Each must be an exact autoregressive model — log q sums to one over every lattice and the
sampler returns the log q it is scored at — and the sublattice order must be the one-by-one
order in disguise, which a spacing within the network's reach is not."""

import itertools
import math

import pytest
import torch

from heatbath.nets import build_net
from heatbath.paths.masked import ORDERS, MaskedPath, order_steps, sublattice_steps


def random_net(shape, q, depth, seed=0):
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
    net = random_net(shape, q, depth)
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
