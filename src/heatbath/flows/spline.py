"""Monotonic rational-quadratic splines (Durkan et al., "Neural Spline Flows", NeurIPS 2019).

A spline maps [−B, B] onto itself through K bins; each bin is a ratio of quadratics, so the map,
its inverse (a quadratic root) and its log-derivative are all closed form. Outside [−B, B] it is
the identity ("linear tails"), with slope 1 at the boundary knots so the map stays C¹.

Parameters come unconstrained, as a network outputs them: `widths` and `heights` (..., K) and
`derivatives` (..., K − 1) for the interior knots. All-zero parameters give the identity map, so
a flow whose conditioners start at zero starts as its base distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Floors keep every bin open and every slope positive, so the inverse is well conditioned.
MIN_BIN_SIZE = 1e-3
MIN_DERIVATIVE = 1e-3
# softplus(raw + shift) + MIN_DERIVATIVE equals 1 at raw = 0: zero parameters give slope 1.
_DERIVATIVE_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


@dataclass(frozen=True)
class SplineKnots:
    """Knot positions (..., K + 1) on both axes and knot slopes (..., K + 1)."""

    xs: torch.Tensor
    ys: torch.Tensor
    slopes: torch.Tensor


def _knot_positions(raw: torch.Tensor, bound: float) -> torch.Tensor:
    """Cumulative bin edges from −B to B; each bin at least MIN_BIN_SIZE of the full width."""
    bins = raw.shape[-1]
    sizes = MIN_BIN_SIZE + (1.0 - MIN_BIN_SIZE * bins) * torch.softmax(raw, dim=-1)
    inner = 2.0 * bound * torch.cumsum(sizes[..., :-1], dim=-1) - bound
    # The end knots are pinned at exactly ±B: cumulative rounding must not leave a gap there.
    return F.pad(F.pad(inner, (1, 0), value=-bound), (0, 1), value=bound)


def make_knots(widths: torch.Tensor, heights: torch.Tensor, derivatives: torch.Tensor,
               bound: float) -> SplineKnots:
    """Constrain raw network outputs into a valid monotonic spline on [−bound, bound]."""
    interior = MIN_DERIVATIVE + F.softplus(derivatives + _DERIVATIVE_SHIFT)
    slopes = F.pad(interior, (1, 1), value=1.0)   # boundary slopes 1: match the linear tails
    return SplineKnots(_knot_positions(widths, bound), _knot_positions(heights, bound), slopes)


def _gather_bin(knots: SplineKnots, edges: torch.Tensor, value: torch.Tensor):
    """Left/right knots and slopes of the bin holding `value` (searched along `edges`)."""
    bins = edges.shape[-1] - 1
    index = (value[..., None] >= edges[..., 1:-1]).sum(dim=-1, keepdim=True)
    index = index.clamp(0, bins - 1)
    pick = lambda t, shift: t.gather(-1, index + shift).squeeze(-1)   # noqa: E731
    return (pick(knots.xs, 0), pick(knots.xs, 1), pick(knots.ys, 0), pick(knots.ys, 1),
            pick(knots.slopes, 0), pick(knots.slopes, 1))


def _log_slope(xi, s, d0, d1):
    """log dy/dx inside a bin at relative position xi (Durkan et al. eq. 5)."""
    one_minus = 1.0 - xi
    numerator = s.pow(2) * (d1 * xi.pow(2) + 2.0 * s * xi * one_minus + d0 * one_minus.pow(2))
    denominator = (s + (d0 + d1 - 2.0 * s) * xi * one_minus).pow(2)
    return torch.log(numerator) - torch.log(denominator)


def spline_forward(x: torch.Tensor, knots: SplineKnots,
                   bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, log|dy/dx|) elementwise; identity with log-slope 0 outside [−bound, bound]."""
    inside = (x > -bound) & (x < bound)
    # Evaluate the bin formula on a clamped copy: the discarded branch must stay finite, or
    # its NaN gradient would leak through torch.where.
    xc = x.clamp(-bound, bound)
    x0, x1, y0, y1, d0, d1 = _gather_bin(knots, knots.xs, xc)
    width, height = x1 - x0, y1 - y0
    s = height / width
    xi = ((xc - x0) / width).clamp(0.0, 1.0)
    one_minus = 1.0 - xi
    y = y0 + height * (s * xi.pow(2) + d0 * xi * one_minus) / (
        s + (d0 + d1 - 2.0 * s) * xi * one_minus)
    log_det = _log_slope(xi, s, d0, d1)
    return torch.where(inside, y, x), torch.where(inside, log_det, torch.zeros_like(x))


def spline_inverse(y: torch.Tensor, knots: SplineKnots,
                   bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, log|dx/dy|) for y = spline(x); the bin formula inverted as a quadratic in xi."""
    inside = (y > -bound) & (y < bound)
    yc = y.clamp(-bound, bound)
    x0, x1, y0, y1, d0, d1 = _gather_bin(knots, knots.ys, yc)
    width, height = x1 - x0, y1 - y0
    s = height / width
    dy = yc - y0
    curvature = d0 + d1 - 2.0 * s
    a = height * (s - d0) + dy * curvature
    b = height * d0 - dy * curvature
    c = -s * dy
    # The numerically stable root of a xi² + b xi + c = 0 (b > 0 for a monotonic bin).
    discriminant = (b.pow(2) - 4.0 * a * c).clamp_min(0.0)
    xi = (2.0 * c / (-b - torch.sqrt(discriminant))).clamp(0.0, 1.0)
    x = x0 + xi * width
    log_det = -_log_slope(xi, s, d0, d1)
    return torch.where(inside, x, y), torch.where(inside, log_det, torch.zeros_like(y))
