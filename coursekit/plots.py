"""Plots the lessons share: a parallel-coordinates view of runs (params → metric)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def parallel_coordinates(
    runs: pd.DataFrame, axes: Sequence[str], color_by: str, *, labels: Sequence[str] | None = None,
    highlight: int | None = None, ax: plt.Axes | None = None,
) -> Figure:
    """Draw one line per run across ``axes`` (columns of ``runs``), coloured by ``color_by``.

    Each axis is scaled to its own min–max range and labelled with its real
    values, so numTrees (tens) and AUC (~0.8) share one picture, as in the
    MLflow UI's parallel-coordinates chart. ``highlight`` is a row position
    drawn thick on top (for example the best run).
    """
    runs = runs.dropna(subset=list(axes) + [color_by])  # a crashed run has no metric to draw
    values = runs[list(axes)].astype(float).to_numpy()
    low, high = values.min(axis=0), values.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = (values - low) / span
    colour = runs[color_by].astype(float).to_numpy()
    norm = plt.Normalize(colour.min(), colour.max())
    cmap = plt.get_cmap("viridis")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.6))
    else:
        fig = ax.figure
    xs = np.arange(len(axes))
    for i, row in enumerate(scaled):
        ax.plot(xs, row, color=cmap(norm(colour[i])), alpha=0.8, linewidth=1.5, zorder=1)
    if highlight is not None:
        ax.plot(xs, scaled[highlight], color="crimson", linewidth=3.5, zorder=2, label="best run")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    for x, (lo, hi) in enumerate(zip(low, high)):
        ax.axvline(x, color="0.6", linewidth=0.8, zorder=0)
        ax.annotate(f"{hi:g}", (x, 1.0), xytext=(3, 3), textcoords="offset points", fontsize=8)
        ax.annotate(f"{lo:g}", (x, 0.0), xytext=(3, -10), textcoords="offset points", fontsize=8)
    ax.set_xticks(xs, list(labels) if labels is not None else list(axes))
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.08)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=color_by, pad=0.02)
    return fig
