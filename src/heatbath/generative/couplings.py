"""How noise samples are paired with data samples in a minibatch.

independent  z and x₁ drawn independently (standard diffusion / flow matching);
ot           minibatch optimal transport (Tong et al. 2023, Pooladian et al. 2023): the noise
             batch is permuted so that the pairing minimises Σ‖x₁ − z‖², which straightens the
             conditional paths. Exact assignment through POT's network simplex (optional extra).
"""

from __future__ import annotations

import torch

from heatbath.core.errors import UserError

COUPLINGS = ("independent", "ot")


def ot_permutation(x1: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Permutation p such that (x1[i], z[p[i]]) is an optimal pairing for squared distance."""
    try:
        import ot
    except ImportError:
        raise UserError("the 'ot' coupling needs POT: pip install 'heatbath[ot]'") from None
    import numpy as np

    cost = torch.cdist(x1.flatten(1).double(), z.flatten(1).double()).pow(2).cpu().numpy()
    n = cost.shape[0]
    weights = np.full(n, 1.0 / n)
    plan = ot.emd(weights, weights, cost)
    # With uniform weights of equal size the optimal plan is a permutation matrix.
    return torch.from_numpy(plan.argmax(axis=1))


def couple(kind: str, x1: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The noise batch, re-ordered according to the coupling."""
    if kind == "independent":
        return z
    if kind == "ot":
        return z[ot_permutation(x1, z).to(z.device)]
    raise ValueError(f"unknown coupling '{kind}'; choose one of {', '.join(COUPLINGS)}")
