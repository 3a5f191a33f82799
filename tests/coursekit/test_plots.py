"""The parallel-coordinates plot lesson 4 draws from a ``search_runs`` DataFrame (Agg backend, no display)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from coursekit.plots import axis_value, parallel_coordinates, wrap_label  # noqa: E402

AXES = ["numTrees", "maxDepth", "metrics.AUC"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def runs() -> pd.DataFrame:
    """Four runs shaped like lesson 4's ``grid`` (best first), params already converted to numbers."""
    return pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d"],
            "numTrees": [50, 20, 5, 20],
            "maxDepth": [5, 5, 2, 8],
            "metrics.AUC": [0.86, 0.83, 0.70, 0.81],
            "params.seed": ["42", "42", "42", "42"],
        }
    )


def run_lines(ax):
    """The per-run lines (the vertical axis lines are Line2D too, at zorder 0; the highlight is at zorder 2)."""
    return [line for line in ax.lines if line.get_zorder() == 1]


def highlight_lines(ax):
    return [line for line in ax.lines if line.get_zorder() == 2]


def colorbar_axes(fig, ax):
    others = [a for a in fig.axes if a is not ax]
    assert len(others) == 1
    return others[0]


def expected_scaled(frame, axes):
    values = frame[axes].astype(float).to_numpy()
    low, high = values.min(axis=0), values.max(axis=0)
    return (values - low) / np.where(high > low, high - low, 1.0)


def test_returns_a_figure_with_one_line_per_run(runs):
    fig = parallel_coordinates(runs, AXES, color_by="metrics.AUC")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    lines = run_lines(ax)
    assert len(lines) == len(runs)
    assert highlight_lines(ax) == []
    assert ax.get_legend() is None
    for line in lines:
        assert list(line.get_xdata()) == [0, 1, 2]


def test_each_axis_is_scaled_to_its_own_range(runs):
    fig = parallel_coordinates(runs, AXES, color_by="metrics.AUC")
    ys = np.array([line.get_ydata() for line in run_lines(fig.axes[0])])
    np.testing.assert_allclose(ys, expected_scaled(runs, AXES))
    assert ys.min() == 0.0 and ys.max() == 1.0
    # The best run (row 0) sits at the top of the numTrees and AUC axes.
    np.testing.assert_allclose(ys[0][[0, 2]], [1.0, 1.0])


def test_each_axis_is_labelled_with_its_real_min_and_max(runs):
    fig = parallel_coordinates(runs, AXES, color_by="metrics.AUC")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["50", "5", "8", "2", "0.86", "0.7"]


def test_axis_values_are_short():
    assert [axis_value(v) for v in (170.0, 0.838109, 0.05, 1.0, 0.7049)] == ["170", "0.838", "0.05", "1", "0.705"]


def test_the_highlighted_run_is_drawn_on_top(runs):
    fig = parallel_coordinates(runs, AXES, color_by="metrics.AUC", highlight=2)
    ax = fig.axes[0]
    assert len(run_lines(ax)) == len(runs)
    (best,) = highlight_lines(ax)
    np.testing.assert_allclose(best.get_ydata(), expected_scaled(runs, AXES)[2])
    assert to_rgba(best.get_color()) == to_rgba("crimson")
    assert best.get_linewidth() > max(line.get_linewidth() for line in run_lines(ax))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["best run"]


def test_tick_labels_are_the_axes_by_default(runs):
    fig = parallel_coordinates(runs, AXES, color_by="metrics.AUC")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == AXES  # short names stay on one line
    assert list(ax.get_xticks()) == [0, 1, 2]
    assert list(ax.get_yticks()) == []


def test_tick_labels_can_be_renamed(runs):
    labels = ["trees", "depth", "AUC"]
    fig = parallel_coordinates(runs, AXES, color_by="metrics.AUC", labels=labels)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == labels


def test_colour_bar_is_labelled_with_color_by(runs):
    fig = parallel_coordinates(runs, AXES, color_by="metrics.AUC")
    bar = colorbar_axes(fig, fig.axes[0])
    assert bar.get_ylabel() == "metrics.AUC"
    fig = parallel_coordinates(runs, AXES, color_by="maxDepth")
    assert colorbar_axes(fig, fig.axes[0]).get_ylabel() == "maxDepth"


def test_lines_are_coloured_by_color_by(runs):
    fig = parallel_coordinates(runs, AXES, color_by="metrics.AUC")
    colours = [to_rgba(line.get_color()) for line in run_lines(fig.axes[0])]
    viridis = plt.get_cmap("viridis")
    assert colours[0] == pytest.approx(viridis(1.0))  # highest AUC
    assert colours[2] == pytest.approx(viridis(0.0))  # lowest AUC
    assert colours[1] != colours[3]


def test_a_constant_column_does_not_divide_by_zero(runs):
    # Every run has the same seed: its axis collapses to one value, not to NaN.
    axes = ["numTrees", "params.seed", "metrics.AUC"]
    with np.errstate(all="raise"):
        fig = parallel_coordinates(runs, axes, color_by="metrics.AUC", highlight=0)
    ax = fig.axes[0]
    ys = np.array([line.get_ydata() for line in run_lines(ax) + highlight_lines(ax)], dtype=float)
    assert np.isfinite(ys).all()
    np.testing.assert_array_equal(ys[:, 1], 0.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == axes


def test_a_constant_colour_column_draws_without_error(runs):
    fig = parallel_coordinates(runs, AXES, color_by="params.seed")
    lines = run_lines(fig.axes[0])
    assert len(lines) == len(runs)
    assert len({to_rgba(line.get_color()) for line in lines}) == 1
    assert colorbar_axes(fig, fig.axes[0]).get_ylabel() == "params.seed"


def test_draws_into_a_given_axes(runs):
    fig, (left, right) = plt.subplots(1, 2)
    returned = parallel_coordinates(runs, AXES, color_by="metrics.AUC", ax=right)
    assert returned is fig
    assert len(run_lines(right)) == len(runs)
    assert run_lines(left) == []
    assert [t.get_text() for t in right.get_xticklabels()] == AXES


def test_works_on_a_filtered_dataframe(runs):
    # A filtered grid keeps its original index; highlight is a row *position*.
    subset = runs[runs["numTrees"] == 20]
    fig = parallel_coordinates(subset, AXES, color_by="metrics.AUC", highlight=0)
    ax = fig.axes[0]
    assert len(run_lines(ax)) == 2
    (best,) = highlight_lines(ax)
    np.testing.assert_allclose(best.get_ydata(), expected_scaled(subset, AXES)[0])


def test_the_figure_renders(runs):
    fig = parallel_coordinates(runs, AXES, color_by="metrics.AUC", highlight=0)
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    assert width > 0 and height > 0
    assert plt.fignum_exists(fig.number)


def test_long_names_wrap_at_a_word_boundary():
    assert wrap_label("subsamplingRate") == "subsampling\nRate"
    assert wrap_label("minInstancesPerNode") == "minInstances\nPerNode"
    assert wrap_label("params.numTrees") == "params.\nnumTrees"
    assert wrap_label("numTrees") == "numTrees"
    assert wrap_label("averylongnamewithoutboundaries") == "averylongnamewithoutboundaries"


def _extents(fig, artists):
    renderer = fig.canvas.get_renderer()
    return [a.get_window_extent(renderer) for a in artists if a.get_text()]


@pytest.mark.parametrize("width", [6.5, 7.0])
def test_nothing_on_the_tuning_panels_plot_overlaps(width):
    # The panel's five axes in the panel's right-hand plot (about 6.5 inches wide): the axis names
    # must not run into each other, and no value printed on an axis may run into the colour bar.
    frame = pd.DataFrame({
        "numTrees": [170, 9, 60], "maxDepth": [1, 18, 4], "subsamplingRate": [0.05, 0.94, 0.8],
        "minInstancesPerNode": [2, 43, 10], "AUC": [0.838109, 0.704531, 0.8],
    })
    fig, ax = plt.subplots(figsize=(width, 3.6))
    parallel_coordinates(frame, list(frame.columns), color_by="AUC", highlight=0, ax=ax)
    fig.tight_layout()
    fig.canvas.draw()
    labels = _extents(fig, ax.get_xticklabels())
    assert len(labels) == 5
    for left, right in zip(labels, labels[1:]):
        assert left.x1 < right.x0, "neighbouring axis names overlap"
    bar = colorbar_axes(fig, ax).get_window_extent(fig.canvas.get_renderer())
    values = _extents(fig, ax.texts)
    assert values and all(v.x1 < bar.x0 for v in values), "an axis value runs into the colour bar"
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert not any(legend.overlaps(v) for v in values), "the legend covers an axis value"
