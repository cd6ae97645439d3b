"""The uniform-source mixture path of discrete flow matching on categorical lattices.

Gat et al. 2024 ("Discrete Flow Matching"), Campbell et al. 2024 ("Generative Flows on Discrete
State-Spaces"): the source x₀ is uniform over the q states of every site, and at time t each
site independently is the data state x₁ᵢ with probability κ(t) = t, else a fresh uniform state,

    p_t(x_tᵢ | x₁ᵢ) = κ(t)·δ(x_tᵢ = x₁ᵢ) + (1 − κ(t))/q.

`loss`    The network reads (x_t, t) and returns q logits per site, the posterior
          p_θ(x₁ᵢ | x_t). The default loss is the plain cross-entropy Σᵢ −log p_θ(x₁ᵢ | x_t)
          with t ~ U(0, 1) (Gat et al.'s and Campbell et al.'s training loss), returned divided
          by D (nats per site, like the masked path). It bounds no likelihood.
`elbo`    The continuous-time ELBO (path.loss=elbo; Campbell et al. 2022 §3, Shaul et al.
          2024 "Flow Matching with General Discrete Paths"). The model is the CTMC started
          from the uniform source with the factorised rates R_θ(x → x with site i set to
          y ≠ xᵢ) = κ̇/(1 − κ)·p_θ(y | x) of the `sample` docstring, INTEGRATED EXACTLY from
          t = 0 to 1; q_θ(x₁) is its law at t = 1 (not the law of the K-step Euler sampler).
          Given x₁ the path is the CTMC with rate κ̇/(1 − κ) = 1/(1 − t) of every site xᵢ ≠ x₁ᵢ
          into x₁ᵢ (marginals p_t(· | x₁) above). Data processing on path space,
          −log q_θ(x₁) ≤ KL(path given x₁ ‖ model path), and that KL (Girsanov for CTMCs:
          Σ over jumps of log of the rate ratio, minus the integral of the exit-rate
          difference) is, both starting from the same uniform law, with no constant term,
            ELBO(x₁) = ∫₀¹ dt/(1 − t) · E_{x_t ~ p_t(·|x₁)} Σᵢ [
                           1[x_tᵢ ≠ x₁ᵢ]·(−log p_θ(x₁ᵢ | x_t)) + 1[x_tᵢ = x₁ᵢ] − p_θ(x_tᵢ | x_t) ].
          Each bracket is ≥ 0 and is minimised by the exact posterior, but the bound is not
          tight even then: the mixture of the conditional paths (at most one jump per site)
          is no Markov process, so a gap KL(path given x₁ ‖ model bridge to x₁) remains
          (tests/generative/test_uniform_elbo.py computes it exactly on 3² states).
          Variance: a mismatched site has probability ∝ 1 − t and weight 1/(1 − t) with
          −log p_θ ~ log 1/(1 − t), so with t ~ U(0, 1) the estimator's variance is infinite.
          `elbo` draws t = 1 − u², u ~ U(0, 1] (density 1/(2√(1 − t))) and weighs by
          1/((1 − t)·density) = 2/u: unbiased, no truncation, and finite variance for a
          posterior with 1 − p_θ(x_tᵢ | x_t) = O(1 − t) on matching sites near t = 1 (as the
          exact one has; without it the ELBO itself is infinite: the model keeps jumping).
          One t and one x_t per lattice, returned divided by D.
`sample`  Euler steps of the CTMC with the factorised rate
              u_t(y, x_t)ᵢ = κ̇/(1 − κ) · (p_θ(x₁ᵢ = y | x_t) − δ(y = x_tᵢ))
          on the uniform grid t_k = k/K: each step every site moves to
              (1 − λ)·δ(x_tᵢ) + λ·p_θ(· | x_t),   λ = min(1, h·κ̇/(1 − κ(t_k))),
          i.e. jumps to a draw from the posterior with probability λ (exactly 1 at the last
          step, so the output holds no source noise). Its law is a sum over all jump paths,
          so it has no exact log q.
"""

from __future__ import annotations

import torch

from heatbath.paths.categorical import inverse_cdf, uniform_states

DEFAULT_NFE = 64   # CTMC steps when --nfe is not given


class UniformPath:
    """The uniform-source path: net(x, t) -> logits (B, q, L, M), x long (B, L, M), t (B,)."""

    discrete = True
    is_phase_space = False
    name = "uniform"
    exact_log_q = False

    @staticmethod
    def kappa(t: torch.Tensor) -> torch.Tensor:
        """κ(t) = t: the probability that a site shows its data state (κ̇ = 1)."""
        return t

    def corrupt(self, x1: torch.Tensor, t: torch.Tensor, num_states: int,
                generator: torch.Generator) -> torch.Tensor:
        """x_t ~ p_t(· | x₁) for lattices x₁ (B, L, M) at times t (B,)."""
        keep = torch.rand(x1.shape, generator=generator) < self.kappa(t).cpu().view(-1, 1, 1)
        noise = torch.randint(num_states, x1.shape, generator=generator)
        return torch.where(keep.to(x1.device), x1, noise.to(x1.device))

    def loss(self, net, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-lattice cross-entropy Σᵢ −log p_θ(x₁ᵢ | x_t) / D, t ~ U(0, 1) (module docstring)."""
        t = torch.rand(x.shape[0], generator=generator, dtype=torch.float64)
        xt = self.corrupt(x, t, net.num_states, generator)
        logits = net(xt, t.to(x.device))
        nll = -logits.log_softmax(1).gather(1, x.unsqueeze(1)).squeeze(1)
        return nll.flatten(1).mean(1)

    def elbo(self, net, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-lattice unbiased estimate of ELBO(x) / D ≥ −log q_θ(x) / D (module docstring):
        one importance draw t = 1 − u² and one x_t ~ p_t(· | x) per lattice."""
        u = 1.0 - torch.rand(x.shape[0], generator=generator, dtype=torch.float64)
        t = 1.0 - u * u
        xt = self.corrupt(x, t, net.num_states, generator)
        log_p = net(xt, t.to(x.device)).log_softmax(1)
        terms = self.elbo_site_terms(log_p, x, xt).flatten(1).sum(1)
        # 1/(1 − t) over the density 1/(2u) of t: 2/u (u ≤ 1, never 0)
        weight = (2.0 / u).to(device=terms.device, dtype=terms.dtype)
        return weight * terms / x[0].numel()

    @staticmethod
    def elbo_site_terms(log_p: torch.Tensor, x1: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """The bracket of ELBO(x₁) at every site (B, L, M), from log p_θ(· | x_t) (B, q, L, M):
        −log p_θ(x₁ᵢ | x_t) − p_θ(x_tᵢ | x_t) where x_tᵢ ≠ x₁ᵢ, 1 − p_θ(x_tᵢ | x_t) where equal."""
        log_p_data = log_p.gather(1, x1.unsqueeze(1)).squeeze(1)
        log_p_stay = log_p.gather(1, xt.unsqueeze(1)).squeeze(1)
        # 1 − p as −expm1(log p): exact where p → 1, as it does on matching sites near t = 1
        stay_rate = -torch.expm1(log_p_stay)
        return torch.where(xt == x1, stay_rate, -log_p_data - log_p_stay.exp())

    @staticmethod
    def default_nfe(sites: int) -> int:
        return DEFAULT_NFE

    @staticmethod
    def max_nfe(sites: int) -> int | None:
        return None   # any number of CTMC steps

    @staticmethod
    def draw_shape(sites: int, nfe: int | None) -> tuple[int, ...]:
        """Uniforms per sample: one per site for the source, then one per site and step."""
        return (1 + (DEFAULT_NFE if nfe is None else nfe), sites)

    @torch.no_grad()
    def sample(self, net, uniforms: torch.Tensor, shape: tuple[int, int], nfe: int | None = None
               ) -> tuple[torch.Tensor, None]:
        """Lattices (n, L, M) after `nfe` Euler steps of the CTMC (module docstring); no log q.
        `uniforms` (n, 1 + nfe, D) in [0, 1): row 0 draws the source, row k + 1 step k."""
        n, rows, sites = uniforms.shape
        steps = rows - 1
        if nfe is not None and nfe != steps or steps < 1:
            raise ValueError(f"uniforms hold {steps} steps, expected nfe={nfe} >= 1")
        q = net.num_states
        x = uniform_states(uniforms[:, 0], q)                               # (n, D)
        h = 1.0 / steps
        for k in range(steps):
            t = k * h
            # λ = h·κ̇/(1 − κ(t)) with κ = t; it reaches exactly 1 at the last step t = 1 − h
            jump = 1.0 if k == steps - 1 else min(1.0, h / (1.0 - t))
            times = torch.full((n,), t, dtype=torch.float64, device=uniforms.device)
            posterior = net(x.view(n, *shape), times).flatten(2).softmax(1).double()
            stay = torch.nn.functional.one_hot(x, q).movedim(-1, 1).double()
            probs = jump * posterior + (1.0 - jump) * stay                   # (n, q, D)
            x = inverse_cdf(probs, uniforms[:, k + 1])
        return x.view(n, *shape), None

    @staticmethod
    def marginal_match(t: float, num_states: int) -> float:
        """P(x_tᵢ = x₁ᵢ) = κ(t) + (1 − κ(t))/q: the path's marginal the tests check."""
        return t + (1.0 - t) / num_states

