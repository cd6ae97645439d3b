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
`sample`    Reveals the sites in a FIXED order (raster), one per step by default: the model is
            then an ordinary autoregressive one with the exact log q(x) = Σ_i log p_θ(x_σi |
            x_σ<i) of what it returned (NFE = D). With fewer steps, several sites are drawn
            independently per step (no exact log q; returned as None).
`log_prob`  The same exact log q of given lattices (teacher forcing along the same order).

The network needs no time input: with an absorbing mask the conditionals do not depend on t
(MDLM §3.2), only on which sites are visible.
"""

from __future__ import annotations

import math

import torch

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
        """The raster order cut into nfe steps (None: one site per step). Several sites per
        step are taken strided (order[c::nfe]) so that sites revealed together lie apart."""
        order = torch.arange(sites)
        nfe = sites if nfe is None else nfe
        if not 1 <= nfe <= sites:
            raise ValueError(f"the number of steps must be in 1..{sites} (the sites), got {nfe}")
        return [order[c::nfe] for c in range(nfe)]

    @torch.no_grad()
    def sample(self, net, uniforms: torch.Tensor, shape: tuple[int, int], nfe: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Lattices (n, L, M) and, with one site per step, their exact log q (else None).
        `uniforms` (n, D): one U(0, 1) per sample and site, the inverse-CDF draw of that site,
        so a sample does not depend on how the rows are batched."""
        n, sites = uniforms.shape
        x = torch.zeros(n, sites, dtype=torch.long, device=uniforms.device)
        masked = torch.ones(n, sites, dtype=torch.bool, device=uniforms.device)
        log_q = torch.zeros(n, dtype=torch.float64, device=uniforms.device)
        for chunk in self.steps(sites, nfe):
            chunk = chunk.to(uniforms.device)
            logits = net(x.view(n, *shape), masked.view(n, *shape)).flatten(2)[:, :, chunk]
            log_p = logits.log_softmax(1).double()                       # (n, q, |chunk|)
            state = inverse_cdf(log_p.exp(), uniforms[:, chunk].double())  # (n, |chunk|)
            x[:, chunk], masked[:, chunk] = state, False
            log_q += log_p.gather(1, state.unsqueeze(1)).squeeze(1).sum(1)
        exact = nfe is None or nfe == sites
        return x.view(n, *shape), (log_q if exact else None)

    @torch.no_grad()
    def log_prob(self, net, x: torch.Tensor) -> torch.Tensor:
        """Exact log q(x) (float64, (B,)) of the one-site-per-step sampler: D network calls."""
        batch, shape = x.shape[0], x.shape[1:]
        flat = x.reshape(batch, -1)
        sites = flat.shape[1]
        log_q = torch.zeros(batch, dtype=torch.float64, device=x.device)
        masked = torch.ones_like(flat, dtype=torch.bool)
        for (site,) in self.steps(sites, None):
            terms = self.site_log_probs(net, x, masked.view(batch, *shape)).flatten(1)
            log_q += terms[:, site].double()
            masked[:, site] = False
        return log_q
