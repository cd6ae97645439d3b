"""Discrete flow matching on the uniform-source mixture path (path.name=uniform): the path's
marginals, the exact posterior as the loss's minimiser (by enumeration of a 2x2 binary
lattice), the CTMC sampler's convergence with the exact posterior plugged in, translation
equivariance of the time-conditioned net, and a CLI round trip with one-line refusals. The
ELBO (path.loss=elbo, estimate's nll_bound_per_dim) is tested in test_uniform_elbo*.py."""

import itertools
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from heatbath.cli import main
from heatbath.nets import build_net
from heatbath.paths import build_path

PATH = build_path("uniform")
SHAPE, Q = (2, 2), 2
STATES = torch.tensor(list(itertools.product(range(Q), repeat=4))).reshape(-1, *SHAPE)


def data_law(seed=0):
    """A fixed, far from uniform distribution over the 16 lattices."""
    return torch.softmax(1.5 * torch.randn(16, generator=torch.Generator().manual_seed(seed),
                                           dtype=torch.float64), 0)


def path_likelihood(xt, t):
    """p_t(x_t | x₁) for every x₁ of STATES: (B, 16), factorised over the sites."""
    match = (xt.flatten(1)[:, None, :] == STATES.flatten(1)[None]).double()   # (B, 16, D)
    kappa = t.double().view(-1, 1, 1)
    return (kappa * match + (1 - kappa) / Q).prod(-1)


class ExactPosterior(nn.Module):
    """The "network" that returns log p(x₁ᵢ | x_t) exactly, by enumerating the 16 lattices
    (tempered by `power`, or shifted by `noise`, to give wrong posteriors)."""

    def __init__(self, law, power=1.0, noise=0.0):
        super().__init__()
        self.num_states, self.law, self.power, self.noise = Q, law, power, noise

    def forward(self, x, t):
        t = torch.as_tensor(t, dtype=torch.float64).expand(x.shape[0])
        joint = self.law[None] * path_likelihood(x, t)                    # (B, 16)
        onehot = nn.functional.one_hot(STATES.flatten(1), Q).double()      # (16, D, q)
        post = torch.einsum("bs,sdq->bqd", joint / joint.sum(1, keepdim=True), onehot)
        logits = self.power * post.log() + self.noise * torch.cos(3.0 * post + t.view(-1, 1, 1))
        return logits.reshape(x.shape[0], Q, *SHAPE)


def expected_loss(net, law, t):
    """E[Σᵢ −log p_net(x₁ᵢ | x_t)] / D at time t, exactly: sum over all x₁ and x_t."""
    weights = law[:, None] * path_likelihood(STATES, torch.full((16,), t)).T   # (x₁, x_t)
    log_p = net(STATES, torch.full((16,), t)).log_softmax(1).flatten(2)       # (x_t, q, D)
    # nll[x_t, x₁] = Σᵢ −log p(x₁ᵢ | x_t)
    nll = -log_p[:, STATES.flatten(1), torch.arange(4)].sum(-1)                # (x_t, x₁)
    return float((weights * nll.T).sum()) / 4


def test_marginals_match_kappa():
    """P(x_tᵢ = x₁ᵢ) = κ(t) + (1 − κ)/q, z-scores below 4 at several t; the mismatches are
    spread uniformly over the other states."""
    q, n = 3, 4000
    x1 = torch.randint(q, (n, 4, 4), generator=torch.Generator().manual_seed(0))
    for t in (0.0, 0.25, 0.6, 0.9, 1.0):
        xt = PATH.corrupt(x1, torch.full((n,), t, dtype=torch.float64), q,
                          torch.Generator().manual_seed(1))
        p = PATH.marginal_match(t, q)
        hits = (xt == x1).double()
        z = (hits.mean() - p) / math.sqrt(max(p * (1 - p), 1e-12) / hits.numel())
        assert abs(float(z)) < 4 or (p == 1 and bool(hits.all())), (t, float(z))
        if t < 1:   # x_t − x₁ mod q over the mismatches: each of the q − 1 shifts equally
            shift = ((xt - x1) % q)[xt != x1]
            counts = torch.bincount(shift, minlength=q)[1:].double()
            sd = math.sqrt(len(shift) * (1 / (q - 1)) * (1 - 1 / (q - 1)))
            assert ((counts - len(shift) / (q - 1)).abs() < 4 * sd).all()


def test_exact_posterior_minimises_the_loss():
    law = data_law()
    exact = ExactPosterior(law)
    nodes, weights = np.polynomial.legendre.leggauss(16)
    times = (nodes + 1) / 2
    total = lambda net: sum(w / 2 * expected_loss(net, law, t)                 # noqa: E731
                            for w, t in zip(weights, times))
    best = total(exact)
    for wrong in (ExactPosterior(law, power=0.8), ExactPosterior(law, power=1.2),
                  ExactPosterior(law, noise=0.1)):
        assert total(wrong) > best + 1e-4
        for t in (0.2, 0.7):   # at every single t as well
            assert expected_loss(wrong, law, t) > expected_loss(exact, law, t)
    # The path's Monte-Carlo loss estimates the same number (it draws t and x_t itself).
    x1 = STATES[torch.multinomial(law, 40000, replacement=True,
                                  generator=torch.Generator().manual_seed(2))]
    mc = PATH.loss(exact, x1, torch.Generator().manual_seed(3))
    assert abs(float(mc.mean()) - best) < 4 * float(mc.std()) / math.sqrt(len(mc))


def sampler_tv(law, nfe, n, seed=0):
    uniforms = torch.rand(n, *PATH.draw_shape(4, nfe),
                          generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x, log_q = PATH.sample(ExactPosterior(law), uniforms, SHAPE, nfe)
    assert log_q is None
    index = (x.flatten(1) * torch.tensor([8, 4, 2, 1])).sum(1)
    freq = torch.bincount(index, minlength=16).double() / n
    return 0.5 * float((freq - law).abs().sum())


def test_ctmc_sampler_converges_to_the_data_with_the_exact_posterior():
    law, n = data_law(), 20000
    # Monte-Carlo TV of n exact draws: E|p̂ − p| ≈ sqrt(2 p (1 − p) / (π n)) per state.
    mc = 0.5 * float((2 * law * (1 - law) / (math.pi * n)).sqrt().sum())
    tv4, tv64 = sampler_tv(law, 4, n), sampler_tv(law, 64, n)
    assert tv64 < 2.5 * mc, (tv64, mc)
    assert tv64 < tv4, (tv64, tv4)


def test_time_conditioned_net_commutes_with_translations():
    net = build_net("periodic", (5, 7), num_states=3, features=8, depth=2, seed=0,
                    time_conditioned=True, dtype=torch.float64)
    with torch.no_grad():
        net.body[-1].weight.normal_(generator=torch.Generator().manual_seed(1))
    x = torch.randint(3, (4, 5, 7), generator=torch.Generator().manual_seed(2))
    t = torch.tensor([0.0, 0.3, 0.3, 0.9], dtype=torch.float64)
    out = net(x, t)
    for shift in ((1, 0), (2, 3), (0, -1)):
        rolled = net(torch.roll(x, shift, (1, 2)), t)
        torch.testing.assert_close(rolled, torch.roll(out, shift, (2, 3)), rtol=0, atol=1e-12)
    assert (net(x, t + 0.05) - out).abs().max() > 1e-6   # t does enter
    assert net(torch.randint(3, (2, 3, 4)), 0.5).shape == (2, 3, 3, 4)   # any L×M


UNIFORM = ["--set", "data.kind=lattice", "--set", "path.name=uniform", "--quiet",
           "--set", "train.batch_size=128", "--set", "eval.samples=200",
           "--set", "train.checkpoint_every=100", "--set", "train.log_every=50"]


@pytest.fixture(scope="module")
def ising_run(tmp_path_factory):
    from heatbath.targets.ising import Ising2D

    folder = tmp_path_factory.mktemp("uniform")
    spins = Ising2D(L=4, M=4, beta=0.3).sample_exact(1000, torch.Generator().manual_seed(0))
    np.savez(folder / "ising.npz", x=((spins + 1) / 2).long().numpy())
    assert main(["fit", "--data", str(folder / "ising.npz"), "--steps", "150",
                 "--out", str(folder / "run")] + UNIFORM) == 0
    return folder


def test_cli_round_trip(ising_run, capsys):
    from heatbath.generative.lattice import sample_lattice
    from heatbath.generative.run import load_run

    run = ising_run / "run"
    assert main(["sample", str(run), "-n", "50", "--nfe", "8", "--out",
                 str(ising_run / "s.npz"), "--quiet"]) == 0
    drawn = np.load(ising_run / "s.npz")
    assert drawn["x"].shape == (50, 4, 4) and drawn["x"].dtype == np.int64
    assert int(drawn["nfe"]) == 8 and "log_q" not in drawn
    loaded = load_run(run)
    a = sample_lattice(loaded, 7, seed=5, nfe=6, batch_size=3).x      # per-sample draws:
    b = sample_lattice(loaded, 9, seed=5, nfe=6).x                    # batching does not matter
    assert torch.equal(a, b[:7])
    assert sample_lattice(loaded, 3, nfe=4, shape=(5, 6)).x.shape == (3, 5, 6)
    capsys.readouterr()
    assert main(["estimate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # trained with the cross-entropy, scored by the CTMC's ELBO: a bound, never an exact NLL
    assert report["likelihood"] == "bound" and "nll_per_dim" not in report
    bound = report["nll_bound_per_dim"]
    assert bound["value"] > 0 and bound["stderr"] > 0 and report["n"] == 100
    assert report["sampler"] == "uniform-ctmc" and report["nfe"] == 64
    distance = report["energy_distance"]
    assert distance["value"] < distance["floor"]["value"] + 4 * distance["stderr"] + 0.05
    assert "upper bound" in report["conventions"]["likelihood"]


def test_refusals_are_one_line_and_write_nothing(ising_run, tmp_path, cli):
    run, out = ising_run / "run", tmp_path / "s.npz"
    for args, words in ((["--log-q"], "no exact log q"), (["--nfe", "0"], "at least 1"),
                        (["--sampler", "heun"], "--sampler")):
        code, _, err = cli(["sample", run, "-n", "3", "--out", out] + args)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    code, _, err = cli(["fit", "--data", "builtin:moons:n=50", "--out", tmp_path / "r",
                        "--set", "path.name=uniform", "--quiet"])
    assert code == 2 and "data.kind=lattice" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
