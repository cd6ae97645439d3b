"""The absorbing-state ("masked") discrete path of categorical lattices (data.kind=lattice).

A lattice x has D = L·M sites, each in one of q states. Corruption replaces sites by a mask
token; the network reads the visible sites and returns q logits per site, i.e. the conditionals
p_θ(x_i | x_visible). This one object holds the three things such a model is used for:

`loss`      The any-order autoregressive ELBO (Hoogeboom et al. 2022, ARDM), which is also the
            continuous-time ELBO of masked diffusion with the linear schedule α_t = 1 − t (Shi
            et al. 2024, MD4; Sahoo et al. 2024, MDLM): per lattice draw k ~ U{1, …, D} and a
            uniformly random set of k masked sites; the ELBO term is
                (D / k) · Σ_{i masked} −log p_θ(x_i | unmasked sites),
            whose expectation over k and the set is E_σ[−log p_θ,σ(x)] ≥ −log p_θ(x) for
            the order-averaged model (the chain rule makes it exact for exact conditionals).
            Convention: `loss` returns it divided by D (nats per site), the scale of
            nll_per_dim, so the training curve reads like the held-out likelihood.
`sample`    Reveals the sites in a FIXED order, one per step by default (raster): the model is
            then an ordinary autoregressive one with the exact log q(x) = Σ_i log p_θ(x_σi |
            x_σ<i) of what it returned (NFE = D). With fewer steps, several sites are drawn
            independently per step (no exact log q; returned as None), unless the order is
            one whose steps are exact (`order_steps`: sublattice).
`log_prob`  The same exact log q of given lattices (teacher forcing along the same order).

Orders (`ORDERS`, `order_steps`): raster; random, one fixed permutation drawn from a seed
(the same for every lattice, so its log q is that of one autoregressive model); sublattice,
many sites per step that cannot read one another (`sublattice_steps`), exact at S_L·S_M steps.
Each order is a different model with its own exact log q: score with the order that drew.

The network needs no time input: with an absorbing mask the conditionals do not depend on t
(MDLM §3.2), only on which sites are visible.
"""

from __future__ import annotations

import math

import torch
from torch.utils.checkpoint import checkpoint

from heatbath.paths.categorical import inverse_cdf


class MaskedPath:
    """The masked path: net(x, masked) -> logits (B, q, L, M), x long (B, L, M)."""

    discrete = True
    is_phase_space = False
    name = "masked"
    exact_log_q = True   # with one site per step (nfe = D)

    @staticmethod
    def default_nfe(sites: int) -> int:
        return sites

    @staticmethod
    def max_nfe(sites: int) -> int | None:
        return sites

    @staticmethod
    def draw_shape(sites: int, nfe: int | None) -> tuple[int, ...]:
        """Uniforms per sample: one per site (each site is drawn once)."""
        return (sites,)

    @staticmethod
    def site_log_probs(net, x: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """log p_θ(x_i | x at the unmasked sites) at every site i: (B, L, M)."""
        logits = net(x, masked)
        return logits.log_softmax(1).gather(1, x.unsqueeze(1)).squeeze(1)

    def loss(self, net, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-lattice ARDM / masked-diffusion ELBO divided by D (see the module docstring)."""
        batch, sites = x.shape[0], math.prod(x.shape[1:])
        k = torch.randint(1, sites + 1, (batch,), generator=generator)
        # A uniformly random k-subset: the sites whose random rank is below k.
        ranks = torch.rand(batch, sites, generator=generator).argsort(1).argsort(1)
        masked = (ranks < k[:, None]).reshape(x.shape).to(x.device)
        nll = -(self.site_log_probs(net, x, masked) * masked).flatten(1).sum(1)
        return nll / k.to(device=nll.device, dtype=nll.dtype)   # (D / k)·Σ / D

    @staticmethod
    def steps(sites: int, nfe: int | None) -> list[torch.Tensor]:
        """The raster order cut into nfe steps (None: one site per step)."""
        return strided_steps(torch.arange(sites), nfe)

    @torch.no_grad()
    def sample(self, net, uniforms: torch.Tensor, shape: tuple[int, int], nfe: int | None = None,
               steps: list[torch.Tensor] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Lattices (n, L, M) and, with one site per step, their exact log q (else None).
        `uniforms` (n, D): one U(0, 1) per sample and site, the inverse-CDF draw of that site,
        so a sample does not depend on how the rows are batched. `steps` (instead of nfe): the
        order to reveal in; its log q is returned, exact only where the caller knows the steps
        to be (`order_steps` says which: one site per step, or `sublattice_steps`)."""
        n, sites = uniforms.shape
        x = torch.zeros(n, sites, dtype=torch.long, device=uniforms.device)
        masked = torch.ones(n, sites, dtype=torch.bool, device=uniforms.device)
        log_q = torch.zeros(n, dtype=torch.float64, device=uniforms.device)
        for chunk in steps or self.steps(sites, nfe):
            chunk = chunk.to(uniforms.device)
            logits = net(x.view(n, *shape), masked.view(n, *shape)).flatten(2)[:, :, chunk]
            log_p = logits.log_softmax(1).double()                       # (n, q, |chunk|)
            state = inverse_cdf(log_p.exp(), uniforms[:, chunk].double())  # (n, |chunk|)
            x[:, chunk], masked[:, chunk] = state, False
            log_q += log_p.gather(1, state.unsqueeze(1)).squeeze(1).sum(1)
        exact = steps is not None or nfe is None or nfe == sites
        return x.view(n, *shape), (log_q if exact else None)

    @torch.no_grad()
    def log_prob(self, net, x: torch.Tensor) -> torch.Tensor:
        """Exact log q(x) (float64, (B,)) of the one-site-per-step sampler: D network calls."""
        return self.ordered_log_prob(net, x)

    @staticmethod
    def ordered_log_prob(net, x: torch.Tensor, steps: list[torch.Tensor] | None = None
                         ) -> torch.Tensor:
        """`log_prob` (or, with `steps`, the log q of that exact order), differentiable in the
        network's weights (reverse-KL training of the energy half's masked spin model). While
        gradients are on, each pass is checkpointed: memory holds one pass's activations, not
        one per step, at the price of recomputing each pass in the backward."""
        batch, shape = x.shape[0], x.shape[1:]
        sites = math.prod(shape)
        steps = steps or MaskedPath.steps(sites, None)
        step_of_site = torch.empty(sites, dtype=torch.long)
        for k, chunk in enumerate(steps):
            step_of_site[chunk] = k
        step_of_site = step_of_site.to(x.device)
        log_q = torch.zeros(batch, dtype=torch.float64, device=x.device)
        keep = torch.is_grad_enabled()
        for k, chunk in enumerate(steps):
            # a fresh mask per pass: the checkpoint re-reads its inputs in the backward
            masked = (step_of_site >= k).expand(batch, sites).reshape(batch, *shape)
            if keep:
                terms = checkpoint(MaskedPath.site_log_probs, net, x, masked,
                                   use_reentrant=False)
            else:
                terms = MaskedPath.site_log_probs(net, x, masked)
            log_q = log_q + terms.flatten(1)[:, chunk.to(x.device)].double().sum(1)
        return log_q


def sublattice_steps(shape: tuple[int, int], reach: int) -> list[torch.Tensor]:
    """An order that reveals many sites per step and keeps log q exact, for a network whose
    output at a site depends on the inputs within `reach` sites (Chebyshev distance, on the
    torus). Each axis of side n is cut with the smallest spacing S > reach that divides n (S = n
    when none does); step (a, b) reveals every site (i, j) with i ≡ a mod S_L and j ≡ b mod S_M.
    Two sites of one step are at least S > reach apart on the torus, so neither's conditional
    reads the other: drawing them together is drawing them one after the other, and the step's
    log q is the sum of their log conditionals. S_L·S_M steps, whatever the lattice's size."""
    spacing = [next((s for s in range(reach + 1, n + 1) if n % s == 0), n) for n in shape]
    rows, columns = torch.arange(shape[0])[:, None], torch.arange(shape[1])[None, :]
    flat = torch.arange(math.prod(shape)).reshape(shape)
    return [flat[(rows % spacing[0] == a) & (columns % spacing[1] == b)]
            for a in range(spacing[0]) for b in range(spacing[1])]


ORDERS = ("raster", "sublattice", "random")


def strided_steps(sequence: torch.Tensor, nfe: int | None) -> list[torch.Tensor]:
    """A sequence of sites cut into nfe steps (None: one site per step). Several sites per
    step are taken strided (sequence[c::nfe]) so that in raster order sites revealed together
    lie apart."""
    sites = len(sequence)
    nfe = sites if nfe is None else nfe
    if not 1 <= nfe <= sites:
        raise ValueError(f"the number of steps must be in 1..{sites} (the sites), got {nfe}")
    return [sequence[c::nfe] for c in range(nfe)]


def random_sequence(sites: int, seed: int) -> torch.Tensor:
    """The permutation of the random order: one per (sites, seed), never per lattice, so the
    sampler stays one autoregressive model with an exact log q."""
    return torch.randperm(sites, generator=torch.Generator().manual_seed(seed))


def order_steps(order: str, shape: tuple[int, int], *, reach: int, seed: int = 0,
                nfe: int | None = None) -> tuple[list[torch.Tensor], bool]:
    """(steps, exact) of a named order on an L×M lattice: the sites revealed at each step, and
    whether the sampler's log q is exact. raster / random: one site per step (exact) or, with
    nfe < L·M, the sequence cut into nfe strided steps (drawn independently: not exact).
    sublattice: `sublattice_steps(shape, reach)`, exact, its number of steps fixed by the
    lattice and the reach, so nfe must be None or that number."""
    if order == "sublattice":
        steps = sublattice_steps(shape, reach)
        if nfe is not None and nfe != len(steps):
            raise ValueError(f"the sublattice order of a {shape[0]}x{shape[1]} lattice takes "
                             f"{len(steps)} steps (network reach {reach}), got {nfe}")
        return steps, True
    sites = math.prod(shape)
    if order == "raster":
        sequence = torch.arange(sites)
    elif order == "random":
        sequence = random_sequence(sites, seed)
    else:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    steps = strided_steps(sequence, nfe)
    return steps, len(steps) == sites
