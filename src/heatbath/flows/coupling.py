"""Coupling rational-quadratic spline flow: exact samples *and* exact densities in one pass.

    z ~ N(0, base_scale² I)  →  K spline coupling layers  →  affine standardisation  →  x

A layer sequence of bijections only (`layers.py`), so besides the shared weighted sampling
(`sequential.py`) it has an exact density through the inverse (`bijective.py`),

    log q(x) = log N(T⁻¹(x); 0, base_scale² I) + log|det ∂T⁻¹/∂x|.

Each coupling layer leaves one half of the coordinates (alternating parity) unchanged and moves
the other half through a monotonic spline whose knots a small MLP reads off the unchanged half,
so the Jacobian is triangular and the inverse is as cheap as the forward map. The splines live
on [−bound, bound] in *standardised* units; the final affine layer x = loc + scale·y (learnable,
initialised from a guess of the target's location and spread) maps them to the target's scale,
so GMM-40 (spread over ±40) needs `scale≈10`, not a spline bound of 40.

Targets with event_shape other than (D,) (e.g. L×L lattices) are flattened on the way in and
reshaped on the way out: pass `event_shape`.
"""

from __future__ import annotations

import torch

from heatbath.flows.bijective import BijectiveFlow
from heatbath.flows.layers import Standardise, alternating_couplings, init_generator


class Flow(BijectiveFlow):
    """A normalizing flow distribution: `sample`, `log_prob`, `sample_and_log_prob`.

    Flow(dim, layers=6, hidden=64, bins=8, bound=5.0, base_scale=1.0, loc=0.0, scale=1.0,
         event_shape=None, generator=None)

    bound       spline domain [−bound, bound] in standardised units (identity outside).
    base_scale  std of the Gaussian base; loc/scale are the initial standardisation (numbers or
                one entry per coordinate). The untrained flow is N(loc, (scale·base_scale)² I).
    event_shape shape of one sample (default (dim,)); its size must equal dim.
    generator   draws the initial hidden weights (default: a fixed seed, so equal arguments
                give equal flows).

    Guess `scale` on the wide side: splines map [−bound, bound] onto itself, so a flow that must
    widen (or shift) the base squeezes the spline ends, q's tails become lighter than the
    target's, and rare huge weights bias log Z low at any practical n. An over-dispersed start
    (say 1.5–2× the target's spread) keeps the weight tails light.
    """

    def __init__(self, dim: int, layers: int = 6, hidden: int = 64, bins: int = 8,
                 bound: float = 5.0, base_scale: float = 1.0, loc=0.0, scale=1.0,
                 event_shape: tuple[int, ...] | None = None,
                 generator: torch.Generator | None = None) -> None:
        if dim < 1 or layers < 0 or hidden < 1 or bins < 2:
            raise ValueError(f"need dim >= 1, layers >= 0, hidden >= 1, bins >= 2; "
                             f"got {dim}, {layers}, {hidden}, {bins}")
        if bound <= 0:
            raise ValueError(f"bound must be positive; got {bound}")
        super().__init__(dim, event_shape, base_scale)
        # Attribute names are the stored checkpoint keys (couplings.k.net.*, standardise.*).
        self.couplings = alternating_couplings(dim, layers, hidden, bins, bound,
                                               init_generator(generator))
        self.standardise = Standardise(dim, loc, scale)

    def layers(self) -> list[torch.nn.Module]:
        return [*self.couplings, self.standardise]
