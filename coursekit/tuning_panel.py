"""The ipywidgets panel of lesson 5: tune RandomForest, one MLflow run per click.

All the work happens in :class:`coursekit.tuning.Tuner`; the panel only reads
the controls, runs one attempt in a background thread (so the button can be
disabled at once and a double click cannot start a second training), and
redraws the leaderboard and the plots in place.

The worker thread only ever *sets widget values* (``HTML.value``, ``Image.value``,
``IntProgress.value``). It never captures output into an ``Output`` widget: a
capture belongs to whatever message the kernel is handling, so from a thread
started by a real button click it lands nowhere, and under nbclient (papermill)
its echo on the shell channel can make the client miss the cell's reply
(nbclient #312, jupyter_client #1059). The plots are rendered to PNG bytes here.
"""

from __future__ import annotations

import html
import io
import logging
import statistics
import threading
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from IPython.display import display
from matplotlib.figure import Figure

from coursekit.plots import parallel_coordinates
from coursekit.ui import RUNS_VIEW
from coursekit.tuning import (
    BOUNDS,
    FEATURE_SUBSET_STRATEGIES,
    IMPURITIES,
    SUBSAMPLING_STEP,
    AttemptResult,
    ForestParams,
    Tuner,
    TuningError,
    first_line,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_CONTROL_STYLE = {"description_width": "165px"}
#: Symbols that every common font has (DejaVu, Arial, Helvetica), so nothing shows as an empty box
#: on a machine without an emoji font; the words next to them carry the meaning on their own.
OK_MARK, WARN_MARK, BEST_MARK, CURRENT_MARK = "✓", "⚠", "★", "▶"
PLOT_DPI = 80
#: Until the panel has timed an attempt of its own, the progress bar assumes this many seconds.
FIRST_GUESS_S = 2.0


class TuningPanel:
    """Sliders and dropdowns for six RandomForest settings, a Train & log button and live feedback."""

    def __init__(self, tuner: Tuner, ui_url: str | None = None) -> None:
        self.tuner = tuner
        self.ui_url = ui_url
        defaults = ForestParams()
        layout = widgets.Layout(width="440px")

        def int_slider(name: str) -> widgets.IntSlider:
            low, high = BOUNDS[name]
            return widgets.IntSlider(getattr(defaults, name), min=int(low), max=int(high), description=name,
                                     style=_CONTROL_STYLE, layout=layout)

        low, high = BOUNDS["subsamplingRate"]
        self.controls: dict[str, widgets.ValueWidget] = {
            "numTrees": int_slider("numTrees"),
            "maxDepth": int_slider("maxDepth"),
            "featureSubsetStrategy": widgets.Dropdown(
                options=FEATURE_SUBSET_STRATEGIES, value=defaults.featureSubsetStrategy,
                description="featureSubsetStrategy", style=_CONTROL_STYLE, layout=layout,
            ),
            "impurity": widgets.Dropdown(options=IMPURITIES, value=defaults.impurity, description="impurity", style=_CONTROL_STYLE, layout=layout),
            "subsamplingRate": widgets.FloatSlider(
                defaults.subsamplingRate, min=low, max=high, step=SUBSAMPLING_STEP, description="subsamplingRate",
                style=_CONTROL_STYLE, layout=layout,
            ),
            "minInstancesPerNode": int_slider("minInstancesPerNode"),
        }
        button_layout = widgets.Layout(width="260px")
        self.train_button = widgets.Button(description="Train & log", button_style="primary", icon="play", layout=button_layout)
        self.model_button = widgets.Button(description="Log model for the best attempt", icon="save", layout=button_layout)
        # A determinate bar that fills over the expected duration of one attempt (the median of this panel's
        # attempts so far); it stops short of the end until the run is really logged.
        self.progress = widgets.IntProgress(
            value=0, min=0, max=100, description="training", bar_style="info",
            style={"description_width": "60px"}, layout=widgets.Layout(width="260px", visibility="hidden"),
        )
        self.status = widgets.HTML("Choose settings and press <b>Train &amp; log</b>. Each press logs one run.")
        self.board = widgets.HTML()
        self.plots = widgets.Image(format="png", layout=widgets.Layout(display="none", max_width="100%"))
        #: The figure behind the picture in :attr:`plots` (``None`` until the first attempt).
        self.figure: Figure | None = None
        self.last_changed = "numTrees"
        self.last_result: AttemptResult | None = None
        self.last_error: str | None = None
        self._durations: list[float] = []
        self._worker: threading.Thread | None = None
        self._busy = threading.Lock()
        for name, control in self.controls.items():
            control.observe(self._remember_change(name), names="value")
        self.train_button.on_click(lambda _button: self.click())
        self.model_button.on_click(lambda _button: self.log_best_model())
        self.widget = widgets.VBox([
            widgets.HBox([
                widgets.VBox(list(self.controls.values())),
                widgets.VBox([self.train_button, self.progress, self.model_button]),
            ]),
            self.status, self.board, self.plots,
        ])
        self._refresh()

    def _remember_change(self, name: str) -> Any:
        def remember(_change: dict[str, Any]) -> None:
            self.last_changed = name
        return remember

    def params(self) -> ForestParams:
        """The settings currently shown by the controls."""
        return ForestParams.from_mapping({name: control.value for name, control in self.controls.items()})

    def click(self) -> bool:
        """Start one attempt with the current settings; False (and nothing happens) while one is running."""
        if not self._busy.acquire(blocking=False):
            return False
        self.train_button.disabled = True
        self.model_button.disabled = True
        self.progress.value = 0
        self.progress.bar_style = "info"
        self.progress.layout.visibility = "visible"
        self.status.value = "Training… the button comes back when the run is logged."
        params = self.params()
        self._worker = threading.Thread(target=self._attempt, args=(params,), name="tuning-attempt", daemon=True)
        self._worker.start()
        return True

    def wait(self, timeout: float = 120.0) -> None:
        """Block until the running attempt (if any) has finished and the panel is redrawn."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def expected_seconds(self) -> float:
        """How long the progress bar expects one attempt to take: the median of this panel's attempts so far."""
        return statistics.median(self._durations) if self._durations else FIRST_GUESS_S

    def _tick(self, done: threading.Event) -> None:
        expected = max(self.expected_seconds(), 0.5)
        started = time.monotonic()
        while not done.wait(0.2):
            # Up to 90 % over the expected time, then creeping towards 99 %: never "done" before it is.
            fraction = (time.monotonic() - started) / expected
            value = 90 * fraction if fraction < 1 else 99 - 9 / fraction
            self.progress.value = int(min(value, 99))

    def _attempt(self, params: ForestParams) -> None:
        done = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(done,), name="tuning-progress", daemon=True)
        ticker.start()
        try:
            result = self.tuner.train_and_log(params)
        except TuningError as exc:
            self.last_error = str(exc)
            self.status.value = f"{WARN_MARK} {html.escape(str(exc))} Nothing was kept for this attempt; change a setting and try again."
        except Exception as exc:  # noqa: BLE001 - the panel must keep working whatever happens
            log.exception("tuning attempt failed")
            self.last_error = str(exc)
            self.status.value = f"{WARN_MARK} Unexpected error: {html.escape(first_line(exc)[:200])}"
        else:
            self.last_result = result
            self.last_error = None
            self._durations.append(result.duration_s)
            self._refresh(current=result.run_id)
            self.status.value = self._status_for(result)
        finally:
            done.set()
            ticker.join(2)
            self.progress.value = 100
            self.progress.layout.visibility = "hidden"
            self.train_button.disabled = False
            self.model_button.disabled = False
            self._busy.release()

    def _status_for(self, result: AttemptResult) -> str:
        link = ""
        if self.ui_url:
            # The Model training view, like every link the course shows (see coursekit.ui.RUNS_VIEW).
            url = f"{self.ui_url}/#/experiments/{self.tuner.experiment_id}/runs/{result.run_id}?{RUNS_VIEW}"
            link = f' · <a href="{url}" target="_blank">open run in the MLflow UI</a>'
        return (
            f"{OK_MARK} Attempt {result.attempt} logged: <b>AUC {result.metrics['AUC']:.3f}</b> in {result.duration_s:.1f} s"
            f" (<code>{html.escape(result.run_name)}</code>){link}"
        )

    def _refresh(self, current: str | None = None) -> None:
        board = self.tuner.leaderboard()
        self.board.value = leaderboard_html(board, current)
        if board.empty:
            return
        self.figure = attempts_figure(board, self.last_changed, current)
        self.plots.value = figure_png(self.figure)
        self.plots.layout.display = None

    def log_best_model(self) -> str | None:
        """Log the best attempt's Spark model into its run (explicit pip_requirements); show where and how long it took."""
        if not self._busy.acquire(blocking=False):
            return None
        started = time.perf_counter()
        try:
            self.status.value = "Logging the best attempt's model…"
            uri = self.tuner.log_best_model()
        except TuningError as exc:
            self.status.value = f"{WARN_MARK} {html.escape(str(exc))}"
            return None
        except Exception as exc:  # noqa: BLE001 - the panel must keep working whatever happens
            log.exception("logging the best model failed")
            self.status.value = f"{WARN_MARK} Could not log the model: {html.escape(first_line(exc)[:200])}"
            return None
        finally:
            self._busy.release()
        seconds = time.perf_counter() - started
        self.status.value = f"{OK_MARK} Model of the best attempt logged in {seconds:.1f} s: <code>{html.escape(uri)}</code>"
        return uri

    def show(self) -> None:
        """Display the panel in the notebook."""
        display(self.widget)

    def _ipython_display_(self) -> None:
        self.show()


def attempts_figure(board: pd.DataFrame, key: str, current: str | None = None) -> Figure:
    """AUC against the setting ``key`` (the current attempt in red) beside a parallel-coordinates view of all attempts.

    A plain :class:`~matplotlib.figure.Figure`, not a pyplot one: it is drawn from the
    panel's worker thread and never registered with pyplot's global state.
    """
    fig = Figure(figsize=(11, 3.6))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.7]})
    x = board[key].astype(str) if board[key].dtype == object else board[key]
    left.scatter(x, board["AUC"], color="steelblue")
    if current is not None and (board["run_id"] == current).any():
        row = board[board["run_id"] == current].iloc[0]
        left.scatter([row[key]], [row["AUC"]], color="crimson", s=90, zorder=3, label="this attempt")
        left.legend(fontsize=8, frameon=False)
    left.set_xlabel(key)
    left.set_ylabel("AUC")
    left.set_title(f"AUC against {key} (changed last)", fontsize=9)
    numeric = board.assign(
        featureSubsetStrategy=board["featureSubsetStrategy"].map({s: i for i, s in enumerate(FEATURE_SUBSET_STRATEGIES)}),
        impurity=board["impurity"].map({s: i for i, s in enumerate(IMPURITIES)}),
    )
    axes = ["numTrees", "maxDepth", "subsamplingRate", "minInstancesPerNode", "AUC"]
    if len(board) >= 2:
        parallel_coordinates(numeric, axes, color_by="AUC", highlight=0, ax=right)
        right.set_title(f"All {len(board)} attempts", fontsize=9, loc="left")
    else:
        right.axis("off")
        right.text(0.5, 0.5, "Parallel coordinates appear\nfrom the second attempt on", ha="center", va="center")
    # Fixed margins instead of tight_layout: a third faster on every click, and the picture does not shift
    # between attempts (tests/coursekit/test_tuning_panel.py checks that nothing on it overlaps).
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.2, top=0.88, wspace=0.22)
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, for an :class:`ipywidgets.Image`."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PLOT_DPI)
    return buffer.getvalue()


def leaderboard_html(board: pd.DataFrame, current: str | None = None) -> str:
    """The leaderboard as an HTML table: best AUC highlighted and starred, the current attempt marked with a triangle."""
    if board.empty:
        return "<i>No attempts yet.</i>"
    header = "".join(f"<th style='padding:2px 8px'>{h}</th>" for h in (
        "", "#", "numTrees", "maxDepth", "features", "impurity", "subsampling", "minInstances", "AUC", "seconds"))
    rows = []
    for position, row in board.head(15).iterrows():
        style = "background:#fff3b0;color:#1a1a1a;font-weight:bold" if position == 0 else ""
        mark = CURRENT_MARK if row["run_id"] == current else (BEST_MARK if position == 0 else "")
        cells = (mark, row["attempt"], row["numTrees"], row["maxDepth"], row["featureSubsetStrategy"], row["impurity"],
                 f"{row['subsamplingRate']:g}", row["minInstancesPerNode"], f"{row['AUC']:.3f}", f"{row['duration_s']:.1f}")
        rows.append(f"<tr style='{style}'>" + "".join(f"<td style='padding:2px 8px'>{c}</td>" for c in cells) + "</tr>")
    more = f"<div><i>{len(board) - 15} more attempts in the MLflow UI.</i></div>" if len(board) > 15 else ""
    legend = f"<div style='font-size:85%'>{BEST_MARK} best AUC (highlighted) · {CURRENT_MARK} this attempt</div>"
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>{more}{legend}"
