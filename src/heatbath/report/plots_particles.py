"""Particle runs: interparticle-distance histograms and views of configurations.

Configurations are (N, P, d) arrays. Distances are pooled over all pairs i < j of every
configuration; a configuration's importance weight is given to each of its pairs, so the
reweighted histogram estimates the target's pair-distance density. Every function returns a
data URI.
"""

from __future__ import annotations

import numpy as np
import torch

from heatbath.report.figures import new_figure, to_data_uri
from heatbath.spaces import pair_distances

MAX_CONFIGURATIONS = 4000   # distances of this many configurations per histogram
VIEW_PANELS = 4


def is_particles(x: np.ndarray | None) -> bool:
    """(N, P, d) real configurations (not ±1 spins), d ≤ 3 so that they can be drawn."""
    if x is None or np.ndim(x) != 3 or len(x) == 0 or x.shape[2] > 3 or x.shape[1] < 2:
        return False
    if np.asarray(x).dtype.kind in "biu":   # integer states of a lattice run, not positions
        return False
    return not bool(np.all(np.abs(np.asarray(x)) == 1))


def _pair_distances(x) -> np.ndarray:
    return pair_distances(torch.as_tensor(np.asarray(x, dtype=float))).numpy()


def distance_histogram(series: list[tuple[str, np.ndarray, np.ndarray | None]]) -> str:
    """One step histogram per (label, configurations, weights or None), on shared bins."""
    pooled = [(label, _pair_distances(x[:MAX_CONFIGURATIONS]),
               None if w is None else np.asarray(w[:MAX_CONFIGURATIONS], dtype=float))
              for label, x, w in series]
    values = np.concatenate([d.reshape(-1) for _, d, _ in pooled])
    bins = np.histogram_bin_edges(values[np.isfinite(values)], bins=60)
    fig, (ax,) = new_figure()
    for label, distances, weights in pooled:
        if weights is not None and not weights.sum() > 0:
            continue    # the weights sit on configurations past MAX_CONFIGURATIONS
        per_pair = None if weights is None else np.repeat(weights, distances.shape[1])
        ax.hist(distances.reshape(-1), bins=bins, weights=per_pair, density=True,
                histtype="step", label=label)
    ax.set_xlabel("interparticle distance |x_i - x_j|", fontsize=8)
    ax.set_title("pair distances", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    return to_data_uri(fig)


def configuration_views(x: np.ndarray, title: str) -> str:
    """The first few configurations, one panel each (3-D axes for d = 3)."""
    x = np.asarray(x[:VIEW_PANELS], dtype=float)
    three_d = x.shape[2] == 3
    fig, axes = new_figure(ncols=len(x), panel=(2.2, 2.2))
    for index, (ax, config) in enumerate(zip(np.ravel(axes), x)):
        if three_d:   # replace the 2-D axes by a 3-D one in the same slot
            position = ax.get_subplotspec()
            ax.remove()
            ax = fig.add_subplot(position, projection="3d")
            ax.scatter(config[:, 0], config[:, 1], config[:, 2], s=12)
            ax.set_zticks([])
        else:
            coordinates = config if config.shape[1] == 2 else np.c_[config, np.zeros(len(config))]
            ax.scatter(coordinates[:, 0], coordinates[:, 1], s=12)
            ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{title} {index + 1}", fontsize=8)
    return to_data_uri(fig)
