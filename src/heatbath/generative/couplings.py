"""How noise samples are paired with data samples in a minibatch.

independent  z and x₁ drawn independently (standard diffusion / flow matching);
ot           minibatch optimal transport (Tong et al. 2023, Pooladian et al. 2023): the noise
             batch is permuted so that the pairing minimises Σ‖x₁ − z‖², which straightens the
             conditional paths. Exact assignment through POT's network simplex (optional extra).
equivariant_ot
             particles (N, P, d) only (Klein, Krämer & Noé 2023): the cost of pairing x₁ᵢ with
             zⱼ is ‖x₁ᵢ − g zⱼ‖² after aligning zⱼ to x₁ᵢ (Hungarian permutation, then Kabsch
             rotation: one pass of `spaces.align`), and each chosen zⱼ is replaced by its
             aligned copy g zⱼ. With an equivariant network and a target invariant under
             rotations and permutations, only the distribution of noise *orbits* matters, and
             aligning keeps every orbit. Costs B² alignments per batch of B.
"""

from __future__ import annotations

import torch

from heatbath.core.errors import UserError

COUPLINGS = ("independent", "ot", "equivariant_ot")


def ot_permutation(x1: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Permutation p such that (x1[i], z[p[i]]) is an optimal pairing for squared distance."""
    cost = torch.cdist(x1.flatten(1).double(), z.flatten(1).double()).pow(2)
    return _assignment(cost, "ot")


def equivariant_ot_noise(x1: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The noise batch (B, P, d) re-ordered and aligned to x1 by equivariant OT (module doc)."""
    from heatbath.spaces.align import align

    batch, shape = len(x1), x1.shape[1:]
    data = x1.detach().double()[:, None].expand(batch, batch, *shape).reshape(-1, *shape)
    noise = z.detach().double()[None].expand(batch, batch, *shape).reshape(-1, *shape)
    aligned = align(data, noise, search=False).reshape(batch, batch, *shape)
    cost = (x1.detach().double()[:, None] - aligned).pow(2).flatten(2).sum(-1)
    partner = _assignment(cost, "equivariant_ot")
    return aligned[torch.arange(batch), partner].to(z.dtype).to(z.device)


def _assignment(cost: torch.Tensor, coupling: str) -> torch.Tensor:
    """partner[i] minimising Σᵢ cost[i, partner[i]] (exact, POT's network simplex)."""
    try:
        import ot
    except ImportError:
        raise UserError(f"the '{coupling}' coupling needs POT: pip install 'heatbath[ot]'") \
            from None
    import numpy as np

    n = cost.shape[0]
    weights = np.full(n, 1.0 / n)
    # With uniform weights of equal size the optimal plan is a permutation matrix.
    return torch.from_numpy(ot.emd(weights, weights, cost.cpu().numpy()).argmax(axis=1))


def couple(kind: str, x1: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The noise batch, re-ordered according to the coupling."""
    if kind == "independent":
        return z
    if kind == "ot":
        return z[ot_permutation(x1, z).to(z.device)]
    if kind == "equivariant_ot":
        return equivariant_ot_noise(x1, z)
    raise ValueError(f"unknown coupling '{kind}'; choose one of {', '.join(COUPLINGS)}")
