"""Superposing particle configurations: permutation (Hungarian) and rotation (Kabsch).

Configurations are tensors (..., P, d): P particles in d dimensions, with leading batch axes
broadcast between the two arguments. Everything runs in the input's float dtype (pass float64 to
get alignments exact to ~1e-12); integer input is promoted to float64.

* `kabsch_rotation(x, y)`: the orthogonal R minimising ‖(x − x̄) R − (y − ȳ)‖_F, both point sets
  centred on their centroids inside; det R = +1 unless `reflections=True`.
* `hungarian_permutation(x, y)`: the π minimising Σ_i ‖x_i − y_π(i)‖², as given (not centred).
* `align(x, y)`: y superposed on x: both centred, then y's particles permuted (Hungarian) and
  then rotated (Kabsch), as pinned in REFERENCES.md, and finally moved to x's centroid.
* `aligned_distance(x, y)` = ‖x − align(x, y)‖ over all P·d coordinates, i.e. RMSD·√P.

Minimising jointly over permutations and rotations is a hard combinatorial problem; no method
here is guaranteed to find its optimum. `search=False` is exactly the pinned single pass
(Hungarian on the centred configurations, then Kabsch). The default `search=True` alternates
the same two steps (each can only lower the distance) from that start and from the principal-
axes superpositions of the two configurations, and keeps the best: it is never worse than the
single pass, and recovers a rotated, permuted copy of a generic configuration exactly, which the
single pass does not once the rotation is large.
"""

from __future__ import annotations

import itertools

import torch
from scipy.optimize import linear_sum_assignment

from heatbath.core.errors import UserError

MAX_PASSES = 10   # alternations per start; generic configurations settle in 2-3
CHUNK_ELEMENTS = 1 << 22   # pair-cost entries held at once (32 MiB in float64)


def _as_configurations(x, what: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.to(torch.float64)
    if x.ndim < 2 or x.shape[-2] == 0 or x.shape[-1] == 0:
        raise UserError(f"{what} must have shape (..., P, d) with P, d >= 1, got {tuple(x.shape)}")
    return x


def _pair(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _as_configurations(x, "x"), _as_configurations(y, "y")
    if x.shape[-2:] != y.shape[-2:]:
        raise UserError(f"configurations differ in (particles, dimensions): {tuple(x.shape[-2:])} "
                        f"vs {tuple(y.shape[-2:])}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    try:
        return torch.broadcast_tensors(x.to(dtype), y.to(dtype))
    except RuntimeError:
        raise UserError(f"batch shapes {tuple(x.shape[:-2])} and {tuple(y.shape[:-2])} do not "
                        "broadcast") from None


def _centred(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(dim=-2, keepdim=True)


def kabsch_rotation(x, y, reflections: bool = False) -> torch.Tensor:
    """Orthogonal (..., d, d) R minimising ‖x_c R − y_c‖_F, x_c, y_c the centred point sets.

    With H = x_cᵀ y_c = U S Vᵀ the optimum over all orthogonal matrices is U Vᵀ; for a proper
    rotation the last singular direction is flipped when det(U Vᵀ) = −1 (the sign correction),
    which costs the least since it carries the smallest singular value.
    """
    x, y = _pair(x, y)
    u, _, vh = torch.linalg.svd(_centred(x).transpose(-1, -2) @ _centred(y))
    if not reflections:
        sign = torch.sign(torch.linalg.det(u @ vh))
        flip = torch.ones(u.shape[:-1], dtype=u.dtype)
        flip[..., -1] = torch.where(sign == 0, torch.ones_like(sign), sign)
        u = u * flip.unsqueeze(-2)   # U·diag(1, …, 1, ±1)
    return u @ vh


def hungarian_permutation(x, y) -> torch.Tensor:
    """Indices π (..., P) minimising Σ_i ‖x_i − y_π(i)‖², so y[..., π, :] is matched to x.

    Exact, one pair or a batch: every permutation tried at once up to EXHAUSTIVE_MAX_PARTICLES,
    else scipy's linear_sum_assignment on the squared pair costs. The points are used as given,
    so centre them first if translations should not matter.
    """
    x, y = _pair(x, y)
    p, d = x.shape[-2:]
    flat_x, flat_y = x.detach().reshape(-1, p, d), y.detach().reshape(-1, p, d)
    table = _all_permutations(p) if p <= EXHAUSTIVE_MAX_PARTICLES else None
    per_pair = p * p * d if table is None else p * max(p * d, len(table))   # entries held
    step = max(1, CHUNK_ELEMENTS // per_pair)
    columns = [torch.empty((0, p), dtype=torch.long)]   # an empty batch stays (0, p)
    for start in range(0, flat_x.shape[0], step):
        # Direct differences, not the matrix-product form, so that near-ties are decided right.
        cost = (flat_x[start:start + step, :, None] - flat_y[start:start + step, None])
        columns.append(_optimal_columns(cost.pow(2).sum(-1), table))
    return torch.cat(columns).reshape(x.shape[:-1])


def _optimal_columns(cost: torch.Tensor, table: torch.Tensor | None) -> torch.Tensor:
    """(B, p) optimal assignment of each (p, p) cost matrix, on the CPU: the cheapest row of
    `table` (every permutation), or scipy's Hungarian algorithm matrix by matrix."""
    if table is not None:
        return _cheapest_permutation(cost, table)
    return torch.stack([torch.from_numpy(linear_sum_assignment(matrix)[1]).long()
                        for matrix in cost.cpu().numpy()])


# Up to this many particles every permutation is tried at once as tensor operations: exact like
# the Hungarian algorithm, with no per-pair Python call. Equivariant OT aligns B² pairs per
# batch (65536 for DW4 at B = 256): 4! = 24 sums each, not 65536 calls into scipy.
EXHAUSTIVE_MAX_PARTICLES = 5


def _all_permutations(p: int) -> torch.Tensor:
    """(p!, p) every permutation of range(p), lexicographic."""
    return torch.tensor(list(itertools.permutations(range(p))), dtype=torch.long)


def _cheapest_permutation(cost: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(B, p) the row of `table` minimising Σ_i cost[b, i, π(i)] for each (B, p, p) matrix."""
    p, table = cost.shape[-1], table.to(cost.device)   # a GPU batch stays on the GPU
    flat_index = (torch.arange(p, device=cost.device) * p + table).flatten()   # (p! · p,)
    totals = cost.flatten(1)[:, flat_index].reshape(len(cost), len(table), p).sum(-1)
    return table[totals.argmin(dim=-1)].cpu()


def _permuted(y: torch.Tensor, permutation: torch.Tensor) -> torch.Tensor:
    return torch.gather(y, -2, permutation.unsqueeze(-1).expand_as(y))


def _proper_axes(points: torch.Tensor) -> torch.Tensor:
    """Principal axes (columns) of centred points, the last one's sign chosen for det +1."""
    _, axes = torch.linalg.eigh(points.transpose(-1, -2) @ points)
    flip = torch.ones(axes.shape[:-1], dtype=axes.dtype)
    flip[..., -1] = torch.linalg.det(axes).sign()
    return axes * flip.unsqueeze(-2)


def _starting_rotations(x: torch.Tensor, y: torch.Tensor, reflections: bool) -> torch.Tensor:
    """(..., S, d, d): the identity, then E_y·diag(s)·E_xᵀ for sign patterns s.

    If y = x·Q then E_y = Qᵀ E_x up to the signs of the axes, so one of these maps is Qᵀ,
    undoing the rotation (for distinct principal moments). With both frames proper, the
    pattern's product is the map's determinant: proper rotations need an even number of −1.
    """
    d = x.shape[-1]
    signs = torch.tensor(list(itertools.product([1.0, -1.0], repeat=d)), dtype=x.dtype)
    if not reflections:
        signs = signs[signs.prod(dim=-1) > 0]
    axes_x, axes_y = _proper_axes(x).unsqueeze(-3), _proper_axes(y).unsqueeze(-3)
    starts = (axes_y * signs.unsqueeze(-2)) @ axes_x.transpose(-1, -2)
    identity = torch.eye(d, dtype=x.dtype).expand(*starts.shape[:-3], 1, d, d)
    return torch.cat([identity, starts], dim=-3)


def _single_pass(x, y, reflections):
    permutation = hungarian_permutation(x, y)
    matched = _permuted(y, permutation)
    return matched @ kabsch_rotation(matched, x, reflections)


def align(x, y, permutations: bool = True, rotations: bool = True, *,
          reflections: bool = False, search: bool = True) -> torch.Tensor:
    """y (..., P, d) superposed on x: centred, permuted, rotated, then moved to x's centroid.

    Order as pinned: the Hungarian permutation first, then the Kabsch rotation of the permuted
    particles. With both enabled the joint optimum is approximated (see the module docstring):
    `search=False` is the single pinned pass; `search=True` alternates the two steps from the
    identity and from the principal-axes starts, keeping the lowest-distance result.
    """
    x, y = _pair(x, y)
    xc, yc = _centred(x), _centred(y)
    centroid = x.mean(dim=-2, keepdim=True)
    if not permutations:
        return (yc @ kabsch_rotation(yc, xc, reflections) if rotations else yc) + centroid
    if not rotations:
        return _permuted(yc, hungarian_permutation(xc, yc)) + centroid
    if not search:
        return _single_pass(xc, yc, reflections) + centroid
    rotation = _starting_rotations(xc, yc, reflections)
    xs = xc.unsqueeze(-3).expand(*rotation.shape[:-2], *xc.shape[-2:])
    candidates = _alternate(xs.reshape(-1, *xc.shape[-2:]),
                            yc.unsqueeze(-3).expand_as(xs).reshape(-1, *xc.shape[-2:]),
                            rotation.reshape(-1, *rotation.shape[-2:]), reflections)
    candidates = candidates.reshape(xs.shape)
    best = (candidates - xs).pow(2).sum((-1, -2)).argmin(dim=-1)
    index = best[..., None, None, None].expand(*best.shape, 1, *xc.shape[-2:])
    return torch.gather(candidates, -3, index).squeeze(-3) + centroid


def _alternate(x: torch.Tensor, y: torch.Tensor, rotation: torch.Tensor,
               reflections: bool) -> torch.Tensor:
    """Flat batches (B, P, d): Hungarian/Kabsch alternation from `rotation`, -> aligned y.

    An entry stops once its matching repeats: the same matching gives the same rotation, a
    fixed point; only the entries still moving are recomputed.
    """
    permutation = torch.full(x.shape[:-1], -1, dtype=torch.long)
    active = torch.arange(x.shape[0])
    for _ in range(MAX_PASSES):
        new = hungarian_permutation(x[active], y[active] @ rotation[active])
        moved = (new != permutation[active]).any(dim=-1)
        active, new = active[moved], new[moved]
        if active.numel() == 0:
            break
        permutation[active] = new
        rotation[active] = kabsch_rotation(_permuted(y[active], new), x[active], reflections)
    return _permuted(y, permutation) @ rotation


def aligned_distance(x, y, **options) -> torch.Tensor:
    """‖x − align(x, y)‖ over all P·d coordinates (= RMSD·√P), shape (...); options as align."""
    x, y = _pair(x, y)
    return (x - align(x, y, **options)).pow(2).sum((-1, -2)).sqrt()
