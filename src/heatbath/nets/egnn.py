"""E(n)-equivariant graph network (EGNN) as a velocity field for P particles in R^d.

Satorras, Hoogeboom & Welling (2021), in the form used as the vector field of equivariant flows
(Köhler et al. 2020; Klein et al. 2023). x (B, P, d), t, c -> v (B, P, d). With e = emb(t, c),
every node starts from the same invariant feature h_i^0 = h_0 + e, and each of `depth` layers on
the fully connected graph over ordered pairs i != j computes

    m_ij    = φ_e(h_i, h_j, |x_i - x_j|², e)
    x_i    <- x_i + 1/(P-1) Σ_{j≠i} (x_i - x_j) · s · tanh(φ_x(m_ij)) / (|x_i - x_j| + 1)
    h_i    <- h_i + φ_h(h_i, 1/(P-1) Σ_{j≠i} m_ij)

and the output is v = x^L - x^0 minus its particle mean. The 1/(P-1) (a mean over neighbours)
keeps the size of each update independent of P: with plain sums the initial field of 55
particles was ~70x that of 4 (measured at init), far from near zero.

Equivariance (exact, up to rounding): the features see x only through squared distances, which
are invariant under every rotation, reflection and translation, and the coordinate updates are
sums of difference vectors times invariant weights. So for any orthogonal Q (det ±1) and shift b,
v(xQ^T + b) = v(x)Q^T; permuting the particles permutes v (identical initial features, symmetric
sums); and v has zero centre of mass, i.e. it is a field on the CoM-free subspace.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from heatbath.nets.embedding import TimeConditionEmbedding
from heatbath.nets.mlp import OUTPUT_INIT_SCALE

# sqrt(d² + eps): d/d(d²) of sqrt is infinite at 0, which would turn the zero gradient of
# coincident particles (and of the i == i diagonal) into NaN. eps is a function of d² only, so it
# costs no equivariance.
DIST_EPS = 1e-8
# Starting bound s of each layer's per-pair coordinate pull. With s = 1 the whole field was
# capped near `depth`, below the velocities flow matching asks for in the base's tails, and a
# DW4 Boltzmann generator put ~1 % of its samples 30-100 kT high (energy W2 6.4 at 3000 steps);
# s = 5 gave 2.8 with the same ESS (s = 10, 20: 2.0, 1.7, but ESS 0.56 -> 0.49).
COORD_RANGE = 5.0
# c in the per-pair pull's normaliser (|x_i - x_j| + c): Satorras et al.'s and EDM's constant.
# c = 0.1 (a 10x stronger push apart for close pairs) left DW4's bench CNF where it was: raw
# energy W2 0.183 vs 0.171, ESS 0.972 vs 0.973, so damped pulls are not its high-energy tail.
NORM_CONSTANT = 1.0


class EGNNLayer(nn.Module):
    """One message-passing step; `update_nodes=False` for the last layer, whose h is never read."""

    def __init__(self, hidden: int, update_nodes: bool = True):
        super().__init__()
        # The first edge linear layer is split by input, so the h_i and h_j terms are computed
        # once per node (B, P, H) and only summed on the (B, P, P, H) pair grid.
        self.edge_src = nn.Linear(hidden, hidden)
        self.edge_dst = nn.Linear(hidden, hidden, bias=False)
        self.edge_dist = nn.Linear(1, hidden, bias=False)
        self.edge_emb = nn.Linear(hidden, hidden, bias=False)
        self.edge_out = nn.Linear(hidden, hidden)
        self.coord = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        with torch.no_grad():   # small start: the initial field is near zero
            self.coord[-1].weight.mul_(OUTPUT_INIT_SCALE)
            self.coord[-1].bias.mul_(OUTPUT_INIT_SCALE)
        # tanh bounds each pair's pull to |s|, and the learned s grows only slowly at flow
        # matching's learning rates, so it starts at COORD_RANGE (see there).
        self.coord_scale = nn.Parameter(torch.full((), COORD_RANGE))
        self.node = None
        if update_nodes:
            self.node = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(),
                                      nn.Linear(hidden, hidden))

    def forward(self, h: Tensor, x: Tensor, emb: Tensor, offdiag: Tensor) -> tuple[Tensor, Tensor]:
        diff = x[:, :, None, :] - x[:, None, :, :]                    # (B, P, P, d): x_i - x_j
        d2 = diff.pow(2).sum(-1, keepdim=True)                         # (B, P, P, 1), invariant
        pre = (self.edge_src(h)[:, :, None] + self.edge_dst(h)[:, None, :]
               + self.edge_dist(d2) + self.edge_emb(emb)[:, None, None])
        m = F.silu(self.edge_out(F.silu(pre))) * offdiag              # no self-messages
        weight = self.coord_scale * torch.tanh(self.coord(m))         # (B, P, P, 1), invariant
        neighbours = x.shape[1] - 1
        # diff_ii = 0, so the diagonal adds nothing to x even without the mask.
        x = x + (diff * weight / (torch.sqrt(d2 + DIST_EPS) + NORM_CONSTANT)).sum(2) / neighbours
        if self.node is not None:
            h = h + self.node(torch.cat([h, m.sum(2) / neighbours], dim=-1))
        return h, x


class EGNN(nn.Module):
    """E(n)-equivariant, permutation-equivariant velocity field on (P, d) particle systems.

    forward(x, t, c=None, drop=None): x (B, P, d); t scalar or (B,) in [0, 1]; c and drop as for
    `MLP` (class labels or continuous conditions, classifier-free-guidance drop mask).
    Returns (B, P, d) with zero centre of mass per sample.
    """

    def __init__(
        self,
        n_particles: int,
        spatial_dim: int,
        hidden: int = 64,
        depth: int = 4,
        time_dim: int = 64,
        num_classes: int | None = None,
        cond_dim: int | None = None,
    ):
        super().__init__()
        _check_sizes(n_particles=(n_particles, 2), spatial_dim=(spatial_dim, 1),
                     hidden=(hidden, 1), depth=(depth, 1))
        self.n_particles, self.spatial_dim = n_particles, spatial_dim
        self.event_shape = (n_particles, spatial_dim)
        self.dim = n_particles * spatial_dim
        self.embedding = TimeConditionEmbedding(time_dim, hidden, num_classes, cond_dim)
        # One shared start vector, no per-particle index embedding: particles must be
        # indistinguishable to the network for permutation equivariance.
        self.node_init = nn.Parameter(torch.randn(hidden) / hidden ** 0.5)
        self.layers = nn.ModuleList(EGNNLayer(hidden, update_nodes=k < depth - 1)
                                    for k in range(depth))

    def forward(
        self, x: Tensor, t: Tensor | float, c: Tensor | None = None, drop: Tensor | None = None
    ) -> Tensor:
        if x.dim() != 3 or tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"x must have shape (B, {self.n_particles}, {self.spatial_dim}), "
                             f"got {tuple(x.shape)}")
        emb = self.embedding(t, c, drop, like=x)                          # (B, H)
        h = (self.node_init.to(x.dtype) + emb)[:, None, :].expand(-1, self.n_particles, -1)
        eye = torch.eye(self.n_particles, dtype=x.dtype, device=x.device)
        offdiag = (1 - eye)[None, :, :, None]                             # (1, P, P, 1)
        y = x
        for layer in self.layers:
            h, y = layer(h, y, emb, offdiag)
        v = y - x
        # Exact zero CoM: the sums above are antisymmetric in (i, j) only for symmetric weights,
        # which φ_x(m_ij) is not, so the mean is removed explicitly.
        return v - v.mean(dim=1, keepdim=True)


def _check_sizes(**sizes: tuple[int, int]) -> None:
    """Raise ValueError naming every size below its minimum."""
    bad = [f"{name} >= {low} (got {value})" for name, (value, low) in sizes.items() if value < low]
    if bad:
        raise ValueError("EGNN needs " + ", ".join(bad))
