"""Percentile bootstrap for any statistic of i.i.d. samples, vectorised over replicates.

The statistic is evaluated on whole batches of resampled data at once: it receives each array
with an extra leading replicate axis, shape (B, n, ...), and must reduce over axis 1 to return
(B,). Most statistics are one numpy expression written with `axis=-1` / `axis=1`, which makes
1000 replicates cost about as much as one Python call each. Pass `vectorized=False` for a
statistic that only handles one data set at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from heatbath.core.errors import UserError
from heatbath.estimators._inputs import boot_count, to_float64

# Replicates per batch are chosen from n alone, never from the machine, so the same seed always
# gives the same resamples; ~4 million resampled entries keep memory around 32 MB per array.
_ENTRIES_PER_BATCH = 4_000_000


def bootstrap(statistic: Callable[..., np.ndarray], arrays: Sequence, n_boot: int = 1000,
              seed: int = 0, vectorized: bool = True) -> tuple[float, tuple[float, float]]:
    """Bootstrap standard deviation and 95 % percentile interval of `statistic(*arrays)`.

    `arrays` are resampled jointly (the same indices for each, so paired data stay paired); they
    must share their first dimension n. Returns (std over replicates with ddof=1, (2.5 %, 97.5 %)
    percentiles). Deterministic for a given `seed`.
    """
    data = _check_arrays(arrays)
    replicates = bootstrap_replicates(statistic, data, boot_count(n_boot), seed, vectorized)
    lo, hi = np.percentile(replicates, [2.5, 97.5])
    return float(replicates.std(ddof=1)), (float(lo), float(hi))


def bootstrap_replicates(statistic: Callable[..., np.ndarray], data: list[np.ndarray],
                         n_boot: int, seed: int, vectorized: bool = True) -> np.ndarray:
    """The statistic on `n_boot` resampled copies of `data`, shape (n_boot,)."""
    rng = np.random.default_rng(seed)
    n = data[0].shape[0]
    batch = max(1, _ENTRIES_PER_BATCH // n)
    out = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, batch):
        stop = min(start + batch, n_boot)
        indices = rng.integers(0, n, size=(stop - start, n))
        if vectorized:
            values = statistic(*(array[indices] for array in data))
        else:
            values = [statistic(*(array[row] for array in data)) for row in indices]
        out[start:stop] = _as_replicate_values(values, stop - start)
    return out


def _check_arrays(arrays: Sequence) -> list[np.ndarray]:
    if isinstance(arrays, np.ndarray) or hasattr(arrays, "detach"):
        raise UserError("arrays must be a list or tuple of arrays, e.g. (values,) or (x, log_w)")
    data = [to_float64(array, f"arrays[{i}]") for i, array in enumerate(arrays)]
    if not data:
        raise UserError("bootstrap needs at least one array to resample")
    n = data[0].shape[0] if data[0].ndim else 0
    if n < 2 or any(array.ndim == 0 or array.shape[0] != n for array in data):
        shapes = [array.shape for array in data]
        raise UserError(f"arrays must share a first dimension of at least 2, got shapes {shapes}")
    return data


def _as_replicate_values(values, expected: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (expected,):
        raise UserError(f"statistic must return one number per replicate, shape ({expected},), "
                        f"got {values.shape}; reduce over axis 1 (or pass vectorized=False)")
    return values
