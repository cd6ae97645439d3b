"""Energy runs: energies and importance weights, estimates against exact values, spins, angles.

Weights are the normalised exp(log_w) of samples.npz; a run without log_w (e.g. plain MCMC) is
drawn unweighted. Every function returns a data URI, or None when its inputs are absent.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps

from heatbath.estimators.importance import kish_ess
from heatbath.report.figures import new_figure, to_data_uri
from heatbath.report.plots_data import image_mosaic

MAX_EXACT_PANELS = 6
SPIN_GRID = 4   # 4 x 4 = 16 configurations


def energy_histogram(energy: np.ndarray, weights: np.ndarray | None,
                     reference: np.ndarray | None = None) -> str | None:
    """Sample energies as drawn, reweighted toward the target by the importance weights, and
    (where the run kept them) the energies of the reference samples it trained on."""
    energy = np.asarray(energy, dtype=float).reshape(-1)
    keep = np.isfinite(energy)
    if not keep.any():
        return None
    # Bins from the central 99.8 %: one far-off sample must not squash the histogram.
    # `binned`: the samples inside the bins. All the weights' mass can sit outside them, and
    # then there is no reweighted curve to draw (its density would divide by zero).
    low, high = np.quantile(energy[keep], [0.001, 0.999])
    if high > low:
        bins, binned = np.linspace(low, high, 51), keep & (energy >= low) & (energy <= high)
    else:
        bins, binned = 50, keep      # automatic bins span every kept value
    fig, (ax,) = new_figure()
    ax.hist(energy[keep], bins=bins, density=True, histtype="step", label="raw samples")
    if weights is not None and weights[binned].sum() > 0:
        ax.hist(energy[keep], bins=bins, weights=weights[keep], density=True, histtype="step",
                label="reweighted")
    if reference is not None:
        reference = np.asarray(reference, dtype=float).reshape(-1)
        ax.hist(reference[np.isfinite(reference)], bins=bins, density=True, histtype="step",
                label="reference (training samples)")
    ax.set_xlabel("reduced energy U (kT)", fontsize=8)
    ax.set_title("sample energies", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    return to_data_uri(fig)


def log_weight_histogram(weights: np.ndarray) -> str:
    """log of the normalised weights; a long left tail means most samples barely count."""
    with np.errstate(divide="ignore"):   # zero weight -> log weight -inf, which kish_ess takes
        log_w = np.log(weights)
    # kish_ess needs two samples; one sample is its own target sample (fraction 1).
    ess = kish_ess(log_w).value if len(weights) > 1 else 1.0
    log_w = log_w[weights > 0]
    fig, (ax,) = new_figure()
    ax.hist(log_w, bins=50, histtype="stepfilled", alpha=0.7)
    ax.axvline(-math.log(len(weights)), color="k", lw=1, ls="--", label="uniform 1/n")
    ax.set_xlabel("log normalised weight", fontsize=8)
    ax.set_title(f"log weights (Kish ESS fraction {ess:.3g})", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    return to_data_uri(fig)


def estimates_vs_exact(rows: list[tuple[str, float, float, float]]) -> str | None:
    """One panel per (name, value, stderr, exact): estimate with its 95 % bar, exact as a line."""
    rows = rows[:MAX_EXACT_PANELS]
    if not rows:
        return None
    fig, axes = new_figure(len(rows), panel=(2.4, 2.6))
    for ax, (name, value, stderr, exact) in zip(axes, rows):
        ax.errorbar([0], [value], yerr=[1.96 * stderr], fmt="o", capsize=4, label="estimate")
        ax.axhline(exact, color="tab:red", lw=1.5, label="exact")
        ax.set_xticks([])
        ax.set_xlim(-1, 1)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6)
    return to_data_uri(fig)


PROFILE_LABELS = {"m": "order parameter m (Ising: mean spin)", "energy_per_site": "U/N (kT)"}


def as_array(values: list) -> np.ndarray:
    """A list with None as NaN (for plotting)."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def free_energy_profiles(profiles: dict | None) -> str | None:
    """βF(v) = −ln P(v) with 95 % error bands, one panel per order parameter, the exact
    profile (enumeration) in red and a reference run's band (`estimate --reference`) in green
    where estimate.json carries them."""
    if not profiles:
        return None
    fig, axes = new_figure(len(profiles))
    for ax, (name, profile) in zip(axes, profiles.items()):
        values = np.asarray(profile["values"], dtype=float)
        beta_f = np.asarray(profile["beta_f"], dtype=float)
        band = 1.96 * np.asarray(profile["stderr"], dtype=float)
        ax.errorbar(values, beta_f, yerr=band, fmt="o", ms=3, capsize=2, label="weighted samples")
        exact = profile.get("exact")
        if exact is not None:
            known = [(v, e) for v, e in zip(values, exact) if e is not None]
            if known:
                ax.plot(*zip(*known), color="tab:red", lw=1.2, label="exact (enumeration)")
        reference = profile.get("reference")
        if reference is not None:
            ref = as_array(reference["beta_f"])
            ref_band = 1.96 * as_array(reference["stderr"])
            ax.fill_between(values, ref - ref_band, ref + ref_band, color="tab:green",
                            alpha=0.3, lw=0, label="reference run (95 %)")
        ax.set_xlabel(PROFILE_LABELS.get(name, name), fontsize=8)
        ax.set_ylabel("βF = −ln P", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    return to_data_uri(fig)


def is_spin_lattice(x: np.ndarray | None) -> bool:
    """(N, L, M) configurations of a spin lattice: every value ±1 (Ising) or a state index
    0…q−1 (Potts)."""
    if x is None or np.ndim(x) != 3 or len(x) == 0:
        return False
    x = np.asarray(x)
    return bool(np.all(np.abs(x) == 1) or (np.all(x == np.round(x)) and x.min() >= 0))


def spin_grid(x: np.ndarray) -> str:
    """Up to 16 configurations tiled with gaps: Ising black −1, white +1 on grey; Potts states
    0…q−1 as the levels of a sequential colour map, gaps white."""
    configs = np.asarray(x[: SPIN_GRID * SPIN_GRID], dtype=float)[:, None]
    fig, (ax,) = new_figure(panel=(3.2, 3.2))
    if np.all(np.abs(configs) == 1):
        mosaic = image_mosaic(configs, SPIN_GRID, fill=0.5)   # ±1 -> 0/1, gap mid-grey
        ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        top = max(float(np.asarray(x).max()), 1.0)
        mosaic = image_mosaic(2 * configs / top - 1, SPIN_GRID, fill=np.nan)
        colours = colormaps["viridis"].with_extremes(bad="white")
        ax.imshow(mosaic, cmap=colours, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(f"{len(configs)} sampled configurations", fontsize=9)
    ax.axis("off")
    return to_data_uri(fig)


def ramachandran(phi: np.ndarray, psi: np.ndarray, weights: np.ndarray | None) -> str:
    """Weighted 2-D histogram of backbone dihedrals (radians) over [-π, π]²."""
    phi, psi = np.asarray(phi, dtype=float).reshape(-1), np.asarray(psi, dtype=float).reshape(-1)
    if phi.shape != psi.shape:
        raise ValueError("phi and psi have different lengths")
    if weights is not None and len(weights) != len(phi):
        weights = None
    keep = np.isfinite(phi) & np.isfinite(psi)
    phi, psi = phi[keep], psi[keep]
    weights = None if weights is None else weights[keep]
    fig, (ax,) = new_figure(panel=(3.6, 3.2))
    ax.hist2d(phi, psi, bins=60, range=[[-math.pi, math.pi]] * 2, weights=weights, cmap="viridis",
              cmin=1e-12)
    ax.set_xlabel("φ (rad)", fontsize=8)
    ax.set_ylabel("ψ (rad)", fontsize=8)
    ax.set_title("Ramachandran plot" + (" (reweighted)" if weights is not None else ""),
                 fontsize=9)
    ax.tick_params(labelsize=7)
    return to_data_uri(fig)
