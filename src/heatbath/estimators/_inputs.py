"""Turn user arrays (numpy, torch, lists) into checked float64 numpy arrays.

Estimators work in float64 numpy regardless of what the sampler produced: log-weights from a
float32 model lose nothing by being widened, and sums of thousands of exponentials need the
extra precision.
"""

from __future__ import annotations

import numpy as np

from heatbath.core.errors import UserError


def to_float64(array, name: str) -> np.ndarray:
    """A float64 numpy copy of `array` (torch tensors are detached and moved to the CPU)."""
    if hasattr(array, "detach"):  # torch.Tensor, without importing torch here
        array = array.detach().cpu().numpy()
    try:
        return np.array(array, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{name} must be an array of numbers: {exc}") from None


def vector(array, name: str, min_length: int = 1, allow_neg_inf: bool = False) -> np.ndarray:
    """A 1-D float64 array of at least `min_length` entries, no NaN and no +inf.

    `allow_neg_inf` lets log-weights contain −inf (a sample the target gives zero weight).
    """
    values = to_float64(array, name)
    if values.ndim != 1:
        raise UserError(f"{name} must be 1-D (one entry per sample), got shape {values.shape}")
    if values.size < min_length:
        raise UserError(f"{name} needs at least {min_length} entries, got {values.size}")
    if np.isnan(values).any():
        raise UserError(f"{name} contains NaN; drop or fix those samples first")
    bad = np.isposinf(values) | (np.isneginf(values) & (not allow_neg_inf))
    if bad.any():
        raise UserError(f"{name} contains {int(bad.sum())} infinite entries; all must be finite")
    return values


def log_weights(array, name: str = "log_w", min_length: int = 2) -> np.ndarray:
    """Log importance weights: −inf (zero weight) allowed, but not all of them."""
    values = vector(array, name, min_length=min_length, allow_neg_inf=True)
    if np.isneginf(values).all():
        raise UserError(f"{name}: every weight is zero (all log-weights are −inf)")
    return values


def normalised_exp(log_values: np.ndarray) -> np.ndarray:
    """exp(log_values − max): the values rescaled so the largest is 1 (never overflows)."""
    return np.exp(log_values - np.max(log_values))


def finite_tensor(array, name: str, ndims: tuple[int, ...], shape: str, min_rows: int = 1):
    """A float64 torch tensor of one of the allowed numbers of dimensions, at least `min_rows`
    rows, every entry finite (point clouds, particle configurations, energies)."""
    import torch

    values = torch.from_numpy(to_float64(array, name))
    if values.ndim not in ndims or min(values.shape, default=0) == 0 or len(values) < min_rows:
        rows = f" with at least {min_rows} rows" if min_rows > 1 else ""
        raise UserError(f"{name} must have shape {shape}{rows}, got {tuple(values.shape)}")
    if not torch.isfinite(values).all():
        raise UserError(f"{name} contains NaN or inf; remove those samples first")
    return values


def boot_count(n_boot) -> int:
    """A bootstrap replicate count: an integer of at least 2 (one replicate has no spread)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise UserError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    return n_boot
