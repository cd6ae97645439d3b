"""Free-energy profiles βF(v) = −ln P(v) of a discrete order parameter from weighted samples.

P(v) is the self-normalised weight of the samples whose parameter equals v (values are
compared after rounding to `decimals` places, so m = M/N and U/N group exactly). βF is in
nats and is not shifted: the exact −ln P(v) of the target compares with it directly. Its
standard error is the delta method's for a self-normalised mass,
    Var P̂(v) ≈ Σ_i w̄_i² (1[v_i = v] − P̂(v))²,   se(βF) = se(P̂)/P̂,
which for equal weights is the binomial √(P(1 − P)/n)/P. Markov chains are not independent
draws: `chain_free_energy_profile` takes P(v) as the mean over independent chains of each
chain's fraction of time at v, with the standard error of that mean (as `autocorr.
chain_mean_estimate` does for observables). Values no sample visited are left out: their βF
is unbounded and nothing here estimates it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from heatbath.estimators._inputs import log_weights, vector


@dataclass(frozen=True)
class Profile:
    """βF at each visited value, with its standard error; n samples."""

    values: np.ndarray
    beta_f: np.ndarray
    stderr: np.ndarray
    n: int

    def to_json(self) -> dict:
        return {"values": self.values.tolist(), "beta_f": self.beta_f.tolist(),
                "stderr": self.stderr.tolist(), "n": self.n}


def free_energy_profile(values, log_w, decimals: int = 9) -> Profile:
    """βF(v) = −ln P̂(v) over the distinct values of a per-sample order parameter."""
    v = np.round(vector(values, "profile values"), decimals) + 0.0   # −0.0 → 0.0
    weights = softmax(log_weights(log_w))
    if weights.shape != v.shape:
        raise ValueError(f"{v.size} values but {weights.size} weights")
    support, index = np.unique(v, return_inverse=True)
    mass = np.bincount(index, weights=weights)
    own_squares = np.bincount(index, weights=weights ** 2)
    others = (weights ** 2).sum() - own_squares
    variance = own_squares * (1 - mass) ** 2 + others * mass ** 2
    visited = mass > 0
    return Profile(support[visited], -np.log(mass[visited]),
                   np.sqrt(variance[visited]) / mass[visited], int(v.size))


def chain_free_energy_profile(values, decimals: int = 9) -> Profile:
    """βF(v) from (chains, steps) values of independent Markov chains."""
    table = np.round(np.asarray(values, dtype=np.float64), decimals) + 0.0
    if table.ndim != 2 or table.shape[0] < 2:
        raise ValueError(f"need (chains >= 2, steps) values, got shape {table.shape}")
    support, index = np.unique(table, return_inverse=True)
    index = index.reshape(table.shape)
    fractions = np.stack([np.bincount(row, minlength=len(support)) / table.shape[1]
                          for row in index])
    mass = fractions.mean(0)
    stderr = fractions.std(0, ddof=1) / np.sqrt(len(fractions))
    visited = mass > 0
    return Profile(support[visited], -np.log(mass[visited]), stderr[visited] / mass[visited],
                   int(table.size))
