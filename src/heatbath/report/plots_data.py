"""Data runs: model samples shown beside held-out data.

Each function returns a list of (caption, data URI). Panels are drawn only for the arrays that
exist, so a run with samples but no held-out data (or the reverse) still gets a picture.

Two views of vectors: scatters (where the points are) and 2-D histograms (how dense they are:
a scatter of a few thousand points saturates, so it cannot show a blurred edge or a hole in
the middle of a square, which the density image does). Images are shown as two grids.
"""

from __future__ import annotations

import numpy as np

from heatbath.report.figures import new_figure, to_data_uri

GRID = 8            # image grids are GRID x GRID = 64 images
MAX_SCATTER = 2000  # more points only blur the scatter and cost drawing time
MAX_MARGINALS = 6
# Histogram bins per axis: about 2 points per bin of a uniform spread over the square, so a
# few thousand points still give a readable image, within limits that keep it legible.
MIN_BINS, MAX_BINS = 10, 80


def samples_beside_data(samples: np.ndarray | None, heldout: np.ndarray | None) -> list:
    """Figures comparing samples to held-out data, chosen by the event shape."""
    panels = _panels(samples, heldout)
    if not panels:
        return []
    event_shape = panels[0][1].shape[1:]
    if _is_image(event_shape):
        return image_grids(panels)
    dim = event_shape[0]
    figures = []
    if dim >= 2:
        caption = "held-out data beside samples" + _first_two_note(dim)
        figures.append((caption, _scatter_pair(panels)))
    if dim != 2:
        shown = min(dim, MAX_MARGINALS)
        figures.append((f"marginals of the first {shown} coordinate(s)", _marginals(panels, shown)))
    return figures


def density_images(samples: np.ndarray | None, heldout: np.ndarray | None) -> list:
    """2-D histograms of held-out data and of samples on shared bins and one colour scale
    (the first two coordinates of longer vectors); [] for images and 1-D data."""
    panels = _panels(samples, heldout)
    if not panels:
        return []
    event_shape = panels[0][1].shape[1:]
    if _is_image(event_shape) or event_shape[0] < 2:
        return []
    dim = event_shape[0]
    bins = histogram_bins(min(len(x) for _, x in panels))
    caption = (f"2-D histograms ({bins}x{bins} bins, shared colour scale): held-out data beside "
               f"samples" + _first_two_note(dim))
    return [(caption, _histogram_pair(panels, bins))]


def _panels(samples, heldout) -> list[tuple[str, np.ndarray]]:
    """[(title, array)] of the usable arrays, held-out data first; ValueError if the shapes
    disagree or cannot be drawn."""
    panels = [(title, np.asarray(x, dtype=float)) for title, x in
              (("held-out data", heldout), ("samples", samples)) if _usable(x)]
    if not panels:
        return []
    event_shape = panels[0][1].shape[1:]
    if any(x.shape[1:] != event_shape for _, x in panels):
        raise ValueError("samples and held-out data have different shapes")
    if len(event_shape) == 2:   # lattices (N, L, M) of states 0..q-1: grey images, 0 black
        top = max(1.0, *(float(x.max()) for _, x in panels))
        return [(title, (2.0 * x / top - 1.0)[:, None]) for title, x in panels]
    if not _is_image(event_shape) and len(event_shape) != 1:
        raise ValueError(f"cannot plot events of shape {list(event_shape)}")
    return panels


def _is_image(event_shape) -> bool:
    return len(event_shape) == 3 and event_shape[0] in (1, 3)


def _first_two_note(dim: int) -> str:
    return " (first two coordinates)" if dim > 2 else ""


def histogram_bins(n: int) -> int:
    """Bins per axis for n points: about 2 points per bin, within [MIN_BINS, MAX_BINS]."""
    return int(np.clip(round(np.sqrt(n / 2)), MIN_BINS, MAX_BINS))


def _usable(x) -> bool:
    return x is not None and np.ndim(x) >= 2 and len(x) > 0


def _shared_limits(points: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One (lo, hi) box for every panel: the 0.5-99.5 % range of all finite points, padded 5 %,
    so that panels compare by eye and a few far outliers cannot shrink everything else."""
    finite = np.concatenate(points)
    finite = finite[np.isfinite(finite).all(axis=1)]
    lo, hi = (np.percentile(finite, [0.5, 99.5], axis=0) if len(finite) else
              (np.array([-1.0, -1.0]), np.array([1.0, 1.0])))
    pad = 0.05 * np.maximum(hi - lo, 1e-9)
    return lo - pad, hi + pad


def _scatter_pair(panels) -> str:
    """Side-by-side scatters on identical axes, so spread and location compare by eye."""
    points = [x[:MAX_SCATTER, :2] for _, x in panels]
    lo, hi = _shared_limits(points)
    fig, axes = new_figure(len(panels))
    for ax, (title, _), xy in zip(axes, panels, points):
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.5, linewidths=0)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_title(f"{title} (n={len(xy)})", fontsize=9)
        ax.tick_params(labelsize=7)
    return to_data_uri(fig)


def _histogram_pair(panels, bins: int) -> str:
    """Side-by-side 2-D histograms normalised to densities, on the same bins and colour scale,
    so equal colours mean equal density; points outside the shared box are left out."""
    points = [x[:, :2][np.isfinite(x[:, :2]).all(axis=1)] for _, x in panels]
    lo, hi = _shared_limits(points)
    edges = [np.linspace(lo[k], hi[k], bins + 1) for k in range(2)]
    densities = [_density(xy, edges) for xy in points]
    top = max(float(d.max()) for d in densities) or 1.0
    fig, axes = new_figure(len(panels), panel=(3.4, 3.2))
    for ax, (title, _), xy, density in zip(axes, panels, points, densities):
        ax.pcolormesh(edges[0], edges[1], density.T, cmap="viridis", vmin=0.0, vmax=top)
        ax.set_title(f"{title} (n={len(xy)})", fontsize=9)
        ax.set_xlabel("x[0]", fontsize=8)
        ax.set_ylabel("x[1]", fontsize=8)
        ax.set_box_aspect(1)   # square panels whatever the coordinates' scales
        ax.tick_params(labelsize=7)
    return to_data_uri(fig)


def _density(xy: np.ndarray, edges) -> np.ndarray:
    """Histogram counts / (n · bin area): a density estimate that integrates to the fraction of
    points inside the box (zeros where there are no points)."""
    counts, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=edges)
    area = (edges[0][1] - edges[0][0]) * (edges[1][1] - edges[1][0])
    return counts / max(len(xy), 1) / area


def _marginals(panels, shown: int) -> str:
    """Per-coordinate histograms of data and samples overlaid on shared bins."""
    ncols = min(3, shown)
    nrows = -(-shown // ncols)
    fig, axes = new_figure(ncols, nrows, panel=(2.6, 2.0))
    for d, ax in enumerate(axes[:shown]):
        columns = [x[:, d][np.isfinite(x[:, d])] for _, x in panels]
        bins = np.histogram_bin_edges(np.concatenate(columns), bins=40)
        for (title, _), column in zip(panels, columns):
            ax.hist(column, bins=bins, density=True, histtype="step", label=title)
        ax.set_title(f"x[{d}]", fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6)
    for ax in axes[shown:]:
        ax.set_visible(False)
    return to_data_uri(fig)


def image_grids(panels) -> list:
    """One GRID x GRID grid per panel (held-out images, then samples), each its own figure so
    the two sit side by side in the report with their own captions."""
    figures = []
    for title, images in panels:
        shown = images[: GRID * GRID]
        fig, (ax,) = new_figure(panel=(3.0, 3.2))
        mosaic = image_mosaic(shown, GRID)
        ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0.0, vmax=1.0,
                  interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        figures.append((f"{title}: grid of {len(shown)} images", to_data_uri(fig)))
    return figures


def image_mosaic(images: np.ndarray, columns: int, gap: int = 1, fill: float = 1.0) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> one (rows*H, columns*W[, C]) picture in [0, 1], white gaps."""
    n, channels, height, width = images.shape
    rows = -(-n // columns)
    pixels = np.clip((np.nan_to_num(images) + 1.0) / 2.0, 0.0, 1.0).transpose(0, 2, 3, 1)
    mosaic = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, channels), fill)
    for k, image in enumerate(pixels):
        top, left = (k // columns) * (height + gap), (k % columns) * (width + gap)
        mosaic[top:top + height, left:left + width] = image
    return mosaic[..., 0] if channels == 1 else mosaic
