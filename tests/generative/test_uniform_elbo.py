"""The continuous-time ELBO of the uniform-source path (`UniformPath.elbo`), against exact
answers on an enumerable system: D = 2 sites with q = 3 states (9 lattices).

The model's law at t = 1 comes from integrating the Kolmogorov forward equation of its CTMC on
all 9 states (scipy's DOP853); the ELBO from numerical integration over t of exact sums over
x_t. Checked: the bound holds for arbitrary denoisers; with the exact posterior the CTMC carries
the uniform source onto the data law, the bound still holds, is not tight, and no other
denoiser scores lower; the time integral equals the path-space KL computed along simulated
conditional paths (Girsanov), and the Monte Carlo estimator is unbiased for it."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad_vec, solve_ivp
from torch import nn

from heatbath.paths import build_path

PATH = build_path("uniform")
Q, D = 3, 2
STATES = torch.tensor(list(itertools.product(range(Q), repeat=D)))          # (9, D)
N = len(STATES)
ONEHOT = nn.functional.one_hot(STATES, Q).double()                           # (9, D, Q)
END = 1 - 1e-10   # the rates are bounded, so stopping here moves the law by < 1e-9


def state_index(x):
    return (x * Q ** torch.arange(D - 1, -1, -1)).sum(-1)


def random_law(seed):
    return torch.softmax(1.2 * torch.randn(N, generator=torch.Generator().manual_seed(seed),
                                           dtype=torch.float64), 0)


def exact_posterior(law):
    """p(x₁ᵢ = y | x_t) of the data law `law` over the 9 lattices: (B, D) × (B,) → (B, D, Q)."""
    def posterior(xt, t):
        match = (xt[:, None, :] == STATES[None]).double()                       # (B, 9, D)
        kappa = t.view(-1, 1, 1)
        joint = law * (kappa * match + (1 - kappa) / Q).prod(-1)                # (B, 9)
        return torch.einsum("bn,ndq->bdq", joint / joint.sum(1, keepdim=True), ONEHOT)
    return posterior


def reweighted_table(seed):
    """An arbitrary denoiser: a random positive table T(y | x_t, i), reweighted by the path's
    likelihood κ·δ(y = x_tᵢ) + (1 − κ)/q so that it trusts x_t as t → 1, as any denoiser
    with a finite ELBO must (otherwise the model jumps at rate ~1/(1 − t) to the end)."""
    table = torch.exp(torch.randn(N, D, Q, generator=torch.Generator().manual_seed(seed),
                                  dtype=torch.float64))

    def posterior(xt, t):
        kappa = t.view(-1, 1, 1)
        own = nn.functional.one_hot(xt, Q).double()
        weights = table[state_index(xt)] * (kappa * own + (1 - kappa) / Q)
        return weights / weights.sum(-1, keepdim=True)
    return posterior


def tempered(posterior, power):
    def wrong(xt, t):
        p = posterior(xt, t) ** power
        return p / p.sum(-1, keepdim=True)
    return wrong


class TableNet(nn.Module):
    """A denoiser as the lattice network the path calls: (B, 1, D), t → logits (B, q, 1, D)."""

    num_states = Q

    def __init__(self, posterior):
        super().__init__()
        self.posterior = posterior

    def forward(self, x, t):
        t = torch.as_tensor(t, dtype=torch.float64).expand(x.shape[0])
        return self.posterior(x.flatten(1), t).log().movedim(-1, 1).unsqueeze(2)


def path_likelihood(t):
    """p_t(x_t | x₁): (9 x_t, 9 x₁)."""
    match = (STATES[:, None, :] == STATES[None]).double()
    return (t * match + (1 - t) / Q).prod(-1)


def elbo_density(posterior, t):
    """The ELBO's integrand at time t for every x₁ (9,), written out here independently of
    the path: 1/(1 − t)·Σ_{x_t} p_t(x_t | x₁) Σᵢ [1[≠]·(−log p(x₁ᵢ | x_t)) + 1[=] − p(x_tᵢ | x_t)]."""
    post = posterior(STATES, torch.full((N,), t, dtype=torch.float64))          # (x_t, D, Q)
    p_data = post[:, torch.arange(D), STATES]                                    # (x_t, x₁, D)
    p_stay = post.gather(-1, STATES.unsqueeze(-1)).squeeze(-1)[:, None, :]       # (x_t, 1, D)
    differ = STATES[:, None, :] != STATES[None]
    bracket = torch.where(differ, -p_data.log(), torch.ones_like(p_data)) - p_stay
    return (path_likelihood(t) * bracket.sum(-1)).sum(0) / (1 - t)


def exact_elbo(posterior):
    """ELBO(x₁) for every x₁ (9,): t = 1 − u² removes the log singularity at t = 1; u < 1e-6
    (where t rounds towards 1) holds ∫ 2u·O(log 1/u) du < 1e-10 and is left out."""
    value, _ = quad_vec(lambda u: 2 * u * elbo_density(posterior, 1 - u * u).numpy(), 1e-6, 1,
                        epsabs=1e-11, epsrel=1e-11)
    return torch.from_numpy(value)


def neighbours():
    """neighbour[x, i, y]: the lattice x with site i set to y."""
    out = torch.empty(N, D, Q, dtype=torch.long)
    for x, i, y in itertools.product(range(N), range(D), range(Q)):
        changed = STATES[x].clone()
        changed[i] = y
        out[x, i, y] = state_index(changed)
    return out


NEIGHBOUR = neighbours()


def rate_matrix(posterior, t):
    """The model CTMC's generator at t: rate p(y | x)ᵢ/(1 − t) from x to x with site i ← y."""
    post = posterior(STATES, torch.full((N,), t, dtype=torch.float64))
    jumps = post * (1 - ONEHOT) / (1 - t)               # no rate to x itself
    rates = torch.zeros(N, N, dtype=torch.float64)
    rates.index_put_((torch.arange(N).view(-1, 1, 1).expand(N, D, Q), NEIGHBOUR), jumps,
                     accumulate=True)
    return rates - torch.diag(rates.sum(1))


def model_exit_rate(posterior, t):
    """Σᵢ (1 − p(xᵢ | x, t))/(1 − t) for every lattice x (9,): the model's rate of leaving x."""
    post = posterior(STATES, torch.full((N,), t, dtype=torch.float64))
    return (1 - post.gather(-1, STATES.unsqueeze(-1)).squeeze(-1)).sum(-1) / (1 - t)


def ctmc_law_at_one(posterior):
    """The law at t = 1 of the CTMC started uniform: the forward equation dπ/dt = π·A(t)."""
    solution = solve_ivp(lambda t, p: p @ rate_matrix(posterior, t).numpy(), (0.0, END),
                         np.full(N, 1.0 / N), method="DOP853", rtol=1e-11, atol=1e-13)
    assert solution.success
    return torch.from_numpy(solution.y[:, -1])


DENOISERS = {"table 1": reweighted_table(1), "table 2": reweighted_table(2),
             "posterior of another law": exact_posterior(random_law(7)),
             "tempered posterior": tempered(exact_posterior(random_law(0)), 1.5)}


@pytest.mark.parametrize("name", DENOISERS)
def test_the_elbo_bounds_the_exact_ctmc_law_for_any_denoiser(name):
    posterior = DENOISERS[name]
    law = ctmc_law_at_one(posterior)
    assert abs(float(law.sum()) - 1) < 1e-9 and bool((law > 0).all())
    gap = exact_elbo(posterior) + law.log()
    assert bool((gap > 1e-4).all()), (name, gap)


def test_the_exact_posterior_carries_the_source_to_the_data_and_scores_lowest():
    data = random_law(0)
    best = exact_posterior(data)
    torch.testing.assert_close(ctmc_law_at_one(best), data, rtol=0, atol=1e-8)
    elbo = exact_elbo(best)
    gap = elbo + data.log()
    # A bound, but not tight: the mixture of the one-jump-per-site conditional paths is no
    # Markov process, so the model's bridge to x₁ differs from the conditional path.
    assert bool((gap > 1e-3).all()), gap
    expected = float((data * elbo).sum())
    for wrong in (tempered(best, 0.8), tempered(best, 1.25), reweighted_table(3),
                  exact_posterior(random_law(7))):
        assert float((data * exact_elbo(wrong)).sum()) > expected + 1e-4


def test_the_time_integral_is_the_path_space_kl():
    """E over conditional paths of log dP/dQ (jumps: log of the rate ratio 1/p(x₁ᵢ | x_τ−);
    between jumps: ∫ model exit rate − conditional exit rate) equals the time integral."""
    posterior, n = reweighted_table(4), 40000
    generator = torch.Generator().manual_seed(5)
    # ∫₀ᵗ of the model's exit rate, for every state x, as a dense solution in t
    integrated = solve_ivp(lambda s, _: model_exit_rate(posterior, s).numpy(), (0.0, END),
                           np.zeros(N), method="DOP853", rtol=1e-11, atol=1e-12,
                           dense_output=True).sol
    model_exit = lambda x, t: torch.from_numpy(integrated(t.numpy())).T.gather(  # noqa: E731
        1, x.view(-1, 1)).squeeze(1)
    expected = exact_elbo(posterior)
    for target in (0, 5, 7):
        x1 = STATES[target].expand(n, D)
        x0 = torch.randint(Q, (n, D), generator=generator)
        tau = torch.rand(n, D, generator=generator, dtype=torch.float64)
        order = tau.argsort(1)
        times = torch.cat([torch.zeros(n, 1, dtype=torch.float64), tau.gather(1, order),
                           torch.full((n, 1), END, dtype=torch.float64)], 1)
        log_ratio = torch.zeros(n, dtype=torch.float64)
        state = x0.clone()
        for k in range(D + 1):
            start, end = times[:, k], times[:, k + 1]
            mismatches = (state != x1).sum(1).double()
            # conditional exit rate mismatches/(1 − s), integrated from start to end
            conditional = mismatches * (torch.log1p(-start) - torch.log1p(-end))
            here = state_index(state)
            log_ratio += model_exit(here, end) - model_exit(here, start) - conditional
            if k < D:   # the next site's jump time: it takes its data state
                site = order[:, k]
                before = state.clone()
                state = state.scatter(1, site.view(-1, 1), x1.gather(1, site.view(-1, 1)))
                jumped = (state != before).any(1)
                p_site = posterior(before, end)[torch.arange(n), site]              # (n, Q)
                p_jump = p_site.gather(1, x1.gather(1, site.view(-1, 1))).squeeze(1)
                log_ratio += torch.where(jumped, -p_jump.log(), torch.zeros_like(p_jump))
        assert torch.equal(state, x1)
        z = (log_ratio.mean() - expected[target]) / (log_ratio.std() / math.sqrt(n))
        assert abs(float(z)) < 4, (target, float(z), float(expected[target]))


@pytest.mark.parametrize("name", ["table 1", "exact"])
def test_the_monte_carlo_estimator_is_unbiased(name):
    posterior = exact_posterior(random_law(0)) if name == "exact" else DENOISERS[name]
    per_state = 20000
    x1 = STATES.repeat_interleave(per_state, 0).view(-1, 1, D)
    draws = PATH.elbo(TableNet(posterior), x1, torch.Generator().manual_seed(11)).view(N, -1)
    exact = exact_elbo(posterior) / D
    z = (draws.mean(1) - exact) / (draws.std(1) / math.sqrt(per_state))
    assert float(z.abs().max()) < 4.5, (z, exact)
    assert bool((draws >= 0).all())   # every term of the generalised KL is non-negative
