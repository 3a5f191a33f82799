"""Plots the lessons share: a parallel-coordinates view of runs (params → metric)."""

from __future__ import annotations

import re
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
        # Above the plot, right-aligned: inside it would cover the axes' top values.
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False, borderaxespad=0.2)
    last = len(axes) - 1
    for x, (lo, hi) in enumerate(zip(low, high)):
        ax.axvline(x, color="0.6", linewidth=0.8, zorder=0)
        # The last axis is labelled on its left, so its values never run into the colour bar.
        dx, align = (-3, "right") if x == last and last > 0 else (3, "left")
        ax.annotate(axis_value(hi), (x, 1.0), xytext=(dx, 3), textcoords="offset points", fontsize=8, ha=align)
        ax.annotate(axis_value(lo), (x, 0.0), xytext=(dx, -10), textcoords="offset points", fontsize=8, ha=align)
    ax.set_xticks(xs, [wrap_label(label) for label in (labels if labels is not None else axes)], fontsize=9)
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.08)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=color_by, pad=0.03)
    return fig


def axis_value(value: float) -> str:
    """An axis end as short text: whole numbers as such, others to three decimals (0.838, 0.05)."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def wrap_label(label: str, width: int = 12) -> str:
    """Break a long camelCase or dotted name over two lines at a word boundary near its middle.

    ``minInstancesPerNode`` becomes ``minInstances`` / ``PerNode``, so neighbouring axis
    labels of a narrow plot do not overlap; short names are returned unchanged.
    """
    if len(label) <= width:
        return label
    cuts = [m.start() for m in re.finditer(r"(?<=[a-z0-9])(?=[A-Z])|(?<=\.)", label)]
    if not cuts:
        return label
    cut = min(cuts, key=lambda c: abs(c - len(label) / 2))
    return f"{label[:cut]}\n{label[cut:]}"
