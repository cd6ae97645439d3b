"""Data runs: model samples shown beside held-out data.

Each function returns a list of (caption, data URI). Panels are drawn only for the arrays that
exist, so a run with samples but no held-out data (or the reverse) still gets a picture.
"""

from __future__ import annotations

import numpy as np

from heatbath.report.figures import new_figure, to_data_uri

GRID = 8            # image grids are GRID x GRID = 64 images
MAX_SCATTER = 2000  # more points only blur the scatter and cost drawing time
MAX_MARGINALS = 6


def samples_beside_data(samples: np.ndarray | None, heldout: np.ndarray | None) -> list:
    """Figures comparing samples to held-out data, chosen by the event shape."""
    panels = [(title, np.asarray(x, dtype=float)) for title, x in
              (("held-out data", heldout), ("samples", samples)) if _usable(x)]
    if not panels:
        return []
    event_shape = panels[0][1].shape[1:]
    if any(x.shape[1:] != event_shape for _, x in panels):
        raise ValueError("samples and held-out data have different shapes")
    if len(event_shape) == 3 and event_shape[0] in (1, 3):
        return [("64 held-out images beside 64 samples", _image_grids(panels))]
    if len(event_shape) != 1:
        raise ValueError(f"cannot plot events of shape {list(event_shape)}")
    dim = event_shape[0]
    figures = []
    if dim >= 2:
        caption = "held-out data beside samples" + (" (first two coordinates)" if dim > 2 else "")
        figures.append((caption, _scatter_pair(panels)))
    if dim != 2:
        shown = min(dim, MAX_MARGINALS)
        figures.append((f"marginals of the first {shown} coordinate(s)", _marginals(panels, shown)))
    return figures


def _usable(x) -> bool:
    return x is not None and np.ndim(x) >= 2 and len(x) > 0


def _scatter_pair(panels) -> str:
    """Side-by-side scatters on identical axes, so spread and location compare by eye."""
    points = [x[:MAX_SCATTER, :2] for _, x in panels]
    finite = np.concatenate(points)
    finite = finite[np.isfinite(finite).all(axis=1)]
    lo, hi = (np.percentile(finite, [0.5, 99.5], axis=0) if len(finite) else
              (np.array([-1.0, -1.0]), np.array([1.0, 1.0])))
    pad = 0.05 * np.maximum(hi - lo, 1e-9)
    fig, axes = new_figure(len(panels))
    for ax, (title, _), xy in zip(axes, panels, points):
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.5, linewidths=0)
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_title(f"{title} (n={len(xy)})", fontsize=9)
        ax.tick_params(labelsize=7)
    return to_data_uri(fig)


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


def _image_grids(panels) -> str:
    fig, axes = new_figure(len(panels), panel=(3.0, 3.2))
    for ax, (title, images) in zip(axes, panels):
        mosaic = image_mosaic(images[: GRID * GRID], GRID)
        ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0.0, vmax=1.0,
                  interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return to_data_uri(fig)


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
