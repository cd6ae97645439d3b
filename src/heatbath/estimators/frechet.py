"""The Fréchet distance between Gaussian fits of two feature sets (the FID convention).

FD² = |μ_a − μ_b|² + tr(Σ_a + Σ_b − 2 (Σ_a^½ Σ_b Σ_a^½)^½)

is the squared 2-Wasserstein distance between N(μ_a, Σ_a) and N(μ_b, Σ_b); FID reports this
square (not its root), and so does heatbath, under the name "squared". The trace of the matrix
square root is taken through the symmetric form Σ_a^½ Σ_b Σ_a^½ (eigenvalues clipped at 0),
which stays real where scipy's sqrtm of the non-symmetric Σ_a Σ_b returns complex noise.
Covariances are the unbiased (n − 1) ones. The plug-in FD² is biased upward at finite n, so it
is only meaningful beside a floor at the same n (see `distances.distance_with_floor`).
"""

from __future__ import annotations

import numpy as np

from heatbath.core.estimate import Estimate
from heatbath.estimators.bootstrap import bootstrap
from heatbath.estimators._inputs import to_float64

BOOTSTRAP_REPLICATES = 200


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))[..., None, :]) @ \
        np.swapaxes(vectors, -1, -2)


def gaussian_frechet_squared(mean_a, cov_a, mean_b, cov_b) -> np.ndarray:
    """FD² between N(mean_a, cov_a) and N(mean_b, cov_b); leading axes broadcast (batches)."""
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + np.swapaxes(middle, -1, -2)) / 2),
                            0.0, None)).sum(-1)
    shift = ((mean_a - mean_b) ** 2).sum(-1)
    return shift + np.trace(cov_a, axis1=-2, axis2=-1) + np.trace(cov_b, axis1=-2, axis2=-1) \
        - 2.0 * cross


def _moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance over axis −2 (rows are samples), batched."""
    mean = features.mean(-2)
    centred = features - mean[..., None, :]
    return mean, np.swapaxes(centred, -1, -2) @ centred / (features.shape[-2] - 1)


def frechet_squared_value(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """FD² between the Gaussian fits of feature rows a (…, n, F) and b (…, m, F)."""
    mean_a, cov_a = _moments(a)
    mean_b, cov_b = _moments(b)
    return gaussian_frechet_squared(mean_a, cov_a, mean_b, cov_b)


def frechet_squared(a, b, seed: int = 0) -> Estimate:
    """FD² of two feature sets (n, F) of equal size, with a bootstrap standard error and
    95 % interval (both sets resampled)."""
    a, b = to_float64(a, "features"), to_float64(b, "features")
    value = float(frechet_squared_value(a, b))
    stderr, interval = bootstrap(frechet_squared_value, [a, b], BOOTSTRAP_REPLICATES, seed)
    return Estimate(value, stderr, a.shape[0], ci95=interval,
                    extra={"metric": "frechet_squared", "features": a.shape[1]})
