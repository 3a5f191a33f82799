"""The ipywidgets panel of lesson 5: tune RandomForest, one MLflow run per click.

All the work happens in :class:`coursekit.tuning.Tuner`; the panel only reads
the controls, runs one attempt in a background thread (so the button can be
disabled at once and a double click cannot start a second training), and
redraws the leaderboard and the plots in place.
"""

from __future__ import annotations

import html
import logging
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from coursekit.plots import parallel_coordinates
from coursekit.tuning import (
    FEATURE_SUBSET_STRATEGIES,
    IMPURITIES,
    AttemptResult,
    ForestParams,
    Tuner,
    TuningError,
    first_line,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_CONTROL_STYLE = {"description_width": "150px"}


class TuningPanel:
    """Sliders and dropdowns for six RandomForest settings, a Train & log button and live feedback."""

    def __init__(self, tuner: Tuner, ui_url: str | None = None) -> None:
        self.tuner = tuner
        self.ui_url = ui_url
        defaults = ForestParams()
        layout = widgets.Layout(width="420px")
        self.controls: dict[str, widgets.ValueWidget] = {
            "numTrees": widgets.IntSlider(defaults.numTrees, min=1, max=100, description="numTrees", style=_CONTROL_STYLE, layout=layout),
            "maxDepth": widgets.IntSlider(defaults.maxDepth, min=1, max=15, description="maxDepth", style=_CONTROL_STYLE, layout=layout),
            "featureSubsetStrategy": widgets.Dropdown(
                options=FEATURE_SUBSET_STRATEGIES, value=defaults.featureSubsetStrategy,
                description="featureSubsetStrategy", style=_CONTROL_STYLE, layout=layout,
            ),
            "impurity": widgets.Dropdown(options=IMPURITIES, value=defaults.impurity, description="impurity", style=_CONTROL_STYLE, layout=layout),
            "subsamplingRate": widgets.FloatSlider(
                defaults.subsamplingRate, min=0.1, max=1.0, step=0.05, description="subsamplingRate", style=_CONTROL_STYLE, layout=layout,
            ),
            "minInstancesPerNode": widgets.IntSlider(
                defaults.minInstancesPerNode, min=1, max=30, description="minInstancesPerNode", style=_CONTROL_STYLE, layout=layout,
            ),
        }
        self.train_button = widgets.Button(description="Train & log", button_style="primary", icon="play")
        self.model_button = widgets.Button(description="Log model for the best attempt", icon="save")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="160px", visibility="hidden"))
        self.status = widgets.HTML("Choose settings and press <b>Train &amp; log</b>. Each press logs one run.")
        self.board = widgets.HTML()
        self.plots = widgets.Output()
        self.last_changed = "numTrees"
        self.last_result: AttemptResult | None = None
        self.last_error: str | None = None
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
        self.progress.layout.visibility = "visible"
        self.progress.bar_style = "info"
        self.progress.value = 0
        self.status.value = "⏳ Training… (the button is back when the run is logged)"
        params = self.params()
        self._worker = threading.Thread(target=self._attempt, args=(params,), name="tuning-attempt", daemon=True)
        self._worker.start()
        return True

    def wait(self, timeout: float = 120.0) -> None:
        """Block until the running attempt (if any) has finished and the panel is redrawn."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def _attempt(self, params: ForestParams) -> None:
        try:
            result = self.tuner.train_and_log(params)
        except TuningError as exc:
            self.last_error = str(exc)
            self.status.value = f"⚠️ {html.escape(str(exc))} Nothing was kept for this attempt; change a setting and try again."
        except Exception as exc:  # noqa: BLE001 - the panel must keep working whatever happens
            log.exception("tuning attempt failed")
            self.last_error = str(exc)
            self.status.value = f"⚠️ Unexpected error: {html.escape(first_line(exc)[:200])}"
        else:
            self.last_result = result
            self.last_error = None
            self.status.value = self._status_for(result)
            self._refresh(current=result.run_id)
        finally:
            self.progress.value = 1
            self.progress.layout.visibility = "hidden"
            self.train_button.disabled = False
            self.model_button.disabled = False
            self._busy.release()

    def _status_for(self, result: AttemptResult) -> str:
        link = ""
        if self.ui_url:
            url = f"{self.ui_url}/#/experiments/{self.tuner.experiment_id}/runs/{result.run_id}"
            link = f' · <a href="{url}" target="_blank">open run in the MLflow UI</a>'
        return (
            f"✅ Attempt {result.attempt} logged: <b>AUC {result.metrics['AUC']:.3f}</b> in {result.duration_s:.1f} s"
            f" (<code>{html.escape(result.run_name)}</code>){link}"
        )

    def _refresh(self, current: str | None = None) -> None:
        board = self.tuner.leaderboard()
        self.board.value = leaderboard_html(board, current)
        self.plots.clear_output(wait=True)
        if board.empty:
            return
        with self.plots:
            fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1, 1.6]})
            key = self.last_changed
            x = board[key].astype(str) if board[key].dtype == object else board[key]
            left.scatter(x, board["AUC"], color="steelblue")
            if current is not None and (board["run_id"] == current).any():
                row = board[board["run_id"] == current].iloc[0]
                left.scatter([row[key]], [row["AUC"]], color="crimson", s=90, zorder=3, label="this attempt")
                left.legend(fontsize=8, frameon=False)
            left.set_xlabel(key)
            left.set_ylabel("AUC")
            left.set_title(f"AUC against {key} (the setting you changed last)", fontsize=9)
            numeric = board.assign(
                featureSubsetStrategy=board["featureSubsetStrategy"].map({s: i for i, s in enumerate(FEATURE_SUBSET_STRATEGIES)}),
                impurity=board["impurity"].map({s: i for i, s in enumerate(IMPURITIES)}),
            )
            axes = ["numTrees", "maxDepth", "subsamplingRate", "minInstancesPerNode", "AUC"]
            if len(board) >= 2:
                parallel_coordinates(numeric, axes, color_by="AUC", highlight=0, ax=right)
                right.set_title("All attempts (best in red)", fontsize=9)
            else:
                right.axis("off")
                right.text(0.5, 0.5, "Parallel coordinates appear\nfrom the second attempt on", ha="center", va="center")
            fig.tight_layout()
            plt.show()

    def log_best_model(self) -> str | None:
        """Log the best attempt's Spark model into its run (explicit pip_requirements); show where."""
        if not self._busy.acquire(blocking=False):
            return None
        try:
            self.status.value = "⏳ Logging the best attempt's model…"
            uri = self.tuner.log_best_model()
        except TuningError as exc:
            self.status.value = f"⚠️ {html.escape(str(exc))}"
            return None
        except Exception as exc:  # noqa: BLE001 - the panel must keep working whatever happens
            log.exception("logging the best model failed")
            self.status.value = f"⚠️ Could not log the model: {html.escape(first_line(exc)[:200])}"
            return None
        finally:
            self._busy.release()
        self.status.value = f"💾 Model of the best attempt logged: <code>{html.escape(uri)}</code>"
        return uri

    def show(self) -> None:
        """Display the panel in the notebook."""
        display(self.widget)

    def _ipython_display_(self) -> None:
        self.show()


def leaderboard_html(board: pd.DataFrame, current: str | None = None) -> str:
    """The leaderboard as an HTML table: best AUC highlighted, the current attempt marked ▶."""
    if board.empty:
        return "<i>No attempts yet.</i>"
    header = "".join(f"<th style='padding:2px 8px'>{h}</th>" for h in (
        "", "#", "numTrees", "maxDepth", "features", "impurity", "subsampling", "minInstances", "AUC", "seconds"))
    rows = []
    for position, row in board.head(15).iterrows():
        style = "background:#fff3b0;font-weight:bold" if position == 0 else ""
        mark = "▶" if row["run_id"] == current else ("🏆" if position == 0 else "")
        cells = (mark, row["attempt"], row["numTrees"], row["maxDepth"], row["featureSubsetStrategy"], row["impurity"],
                 f"{row['subsamplingRate']:g}", row["minInstancesPerNode"], f"{row['AUC']:.3f}", f"{row['duration_s']:.1f}")
        rows.append(f"<tr style='{style}'>" + "".join(f"<td style='padding:2px 8px'>{c}</td>" for c in cells) + "</tr>")
    more = f"<div><i>{len(board) - 15} more attempts in the MLflow UI.</i></div>" if len(board) > 15 else ""
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>{more}"
