"""Independence Metropolis–Hastings: proposals from a fixed q, accepted with min(1, w'/w).

With importance weights w = p̃/q (log w = −U − log q) the acceptance ratio
p̃(s')q(s) / (p̃(s)q(s')) is w(s')/w(s), so the chain leaves p invariant whatever q is, provided
q covers p; the closer q is to p, the more proposals are accepted and the shorter the
autocorrelation ("neural MCMC" when q is a trained model). Proposals do not depend on the
state, so all of them are drawn beforehand in one batch; only the accept/reject pass is
sequential, and it needs nothing but the log weights.
"""

from __future__ import annotations

import torch


def independence_chains(log_w: torch.Tensor, generator: torch.Generator
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Chains over pre-drawn proposals: log_w (chains, steps), column 0 each chain's start.

    At step t ≥ 1 the chain proposes column t. Returns `index` (chains, steps), the column each
    chain sits on after step t, and `accepted` (chains, steps), whether step t's proposal was
    taken (False at t = 0). A proposal of weight zero (log w = −inf) is never taken.
    """
    chains, steps = log_w.shape
    log_u = torch.rand(chains, steps, generator=generator, dtype=torch.float64).log()
    index = torch.zeros(chains, steps, dtype=torch.long)
    accepted = torch.zeros(chains, steps, dtype=torch.bool)
    current = torch.zeros(chains, dtype=torch.long)
    current_log_w = log_w[:, 0].to(torch.float64)
    for t in range(1, steps):
        proposal = log_w[:, t].to(torch.float64)
        take = log_u[:, t] < proposal - current_log_w
        current = torch.where(take, t, current)
        current_log_w = torch.where(take, proposal, current_log_w)
        index[:, t], accepted[:, t] = current, take
    return index, accepted
