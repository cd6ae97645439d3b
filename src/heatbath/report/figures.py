"""Small matplotlib figures rendered to PNG data URIs, plus the training-curve plot.

Figures are built with the object-oriented API (`Figure` + the Agg canvas) rather than pyplot:
nothing is registered in pyplot's global figure manager, so no figure can leak or pop up on a
screen, and there is no backend state to switch. Each figure is rendered once and dropped.
"""

from __future__ import annotations

import base64
import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from heatbath.report.table import is_number

DPI = 80
PANEL = (4.0, 3.0)   # inches per panel: small keeps the report fast to write and to load

# Metric keys that are bookkeeping, not something worth a curve.
_NOT_PLOTTED = {"step", "elapsed"}


def new_figure(ncols: int = 1, nrows: int = 1, panel=PANEL):
    """A figure of nrows x ncols panels and its axes as a flat list."""
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1).tolist()
    return fig, axes


def to_data_uri(fig: Figure) -> str:
    """Render `fig` as a base64 PNG data URI (self-contained: no file beside the report)."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    fig.clear()   # drop artists now; the Figure itself is never registered globally
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def metric_series(metrics: list[dict]) -> dict[str, tuple[list, list]]:
    """{key: (steps, values)} for every numeric metric except step/elapsed, in log order."""
    series: dict[str, tuple[list, list]] = {}
    for index, record in enumerate(metrics):
        step = record.get("step", index)
        if not is_number(step):
            step = index
        for key, value in record.items():
            if key in _NOT_PLOTTED or not is_number(value):
                continue
            steps, values = series.setdefault(key, ([], []))
            steps.append(step)
            values.append(value)
    return series


def training_curves(metrics: list[dict]) -> str | None:
    """One panel per metric against step; losses on a log axis when all positive."""
    series = metric_series(metrics)
    if not series:
        return None
    ncols = min(3, len(series))
    nrows = math.ceil(len(series) / ncols)
    fig, axes = new_figure(ncols, nrows, panel=(3.2, 2.4))
    for ax, (key, (steps, values)) in zip(axes, series.items()):
        ax.plot(steps, values, lw=1, marker="." if len(values) < 30 else None)
        if "loss" in key and min(values) > 0:
            ax.set_yscale("log")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(series):]:
        ax.set_visible(False)
    return to_data_uri(fig)
