"""coursekit.tuning_panel, headless: set the controls, press the real ipywidgets button, read the MLflow store.

No browser and no kernel: ``train_button.click()`` runs the same handlers a click in
JupyterLab would, the attempt runs in the panel's worker thread, and ``panel.wait()``
joins it. Spark is real (module fixture ``course_spark``); figures use the Agg backend.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pytest  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from spark_fixtures import SEED, course_spark, tuner  # noqa: E402, F401 - fixtures

from coursekit.exercises.store import artifact_paths  # noqa: E402
from coursekit.tuning import BOUNDS, ForestParams, TuningError  # noqa: E402
from coursekit.tuning_panel import TuningPanel, leaderboard_html  # noqa: E402

# mlflow.spark.log_model imports mlflow.pyfunc, whose import warns about its own type hints (once per process).
pytestmark = pytest.mark.filterwarnings(r"ignore:.*Any type hint is inferred as AnyType:UserWarning")

SETTINGS = ("numTrees", "maxDepth", "featureSubsetStrategy", "impurity", "subsamplingRate", "minInstancesPerNode")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def panel(tuner):  # noqa: F811 - fixture imported above
    panel = TuningPanel(tuner)
    yield panel
    panel.wait(30)


def runs(tuner):  # noqa: F811
    """All runs of the tuner's experiment, oldest first."""
    return MlflowClient().search_runs([tuner.experiment_id], order_by=["attributes.start_time ASC"], max_results=100)


def board_rows(panel):
    """The leaderboard HTML as rows of cell texts: [mark, attempt, numTrees, ...]."""
    rows = re.findall(r"<tr style='[^']*'>(.*?)</tr>", panel.board.value)
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]


def highlighted(panel):
    """Cell texts of the rows drawn with the best-attempt background."""
    rows = re.findall(r"<tr style='([^']*)'>(.*?)</tr>", panel.board.value)
    return [re.findall(r"<td[^>]*>(.*?)</td>", cells) for style, cells in rows if "background" in style]


def press(panel):
    """Press Train & log like a learner, then wait for the attempt to finish."""
    panel.train_button.click()
    panel.wait(60)
    assert not panel.train_button.disabled


def set_controls(panel, **values):
    for name, value in values.items():
        panel.controls[name].value = value


# --- the widget itself (no fit) -------------------------------------------------------------------


def test_six_controls_with_the_documented_bounds(panel):
    controls = panel.controls
    assert tuple(controls) == SETTINGS
    # The sliders span exactly what train_and_log accepts (one source: tuning.BOUNDS).
    assert BOUNDS == {"numTrees": (1, 200), "maxDepth": (1, 20), "subsamplingRate": (0.05, 1.0), "minInstancesPerNode": (1, 50)}
    for name, kind in [("numTrees", widgets.IntSlider), ("maxDepth", widgets.IntSlider),
                       ("subsamplingRate", widgets.FloatSlider), ("minInstancesPerNode", widgets.IntSlider)]:
        assert isinstance(controls[name], kind), name
        assert (controls[name].min, controls[name].max) == BOUNDS[name], name
        ForestParams(**{name: controls[name].min}).validate()
        ForestParams(**{name: controls[name].max}).validate()
    assert controls["subsamplingRate"].step == 0.05
    assert isinstance(controls["featureSubsetStrategy"], widgets.Dropdown)
    assert tuple(controls["featureSubsetStrategy"].options) == ("auto", "all", "sqrt", "log2", "onethird")
    assert tuple(controls["impurity"].options) == ("gini", "entropy")
    # They start on the defaults, and every value they can show is a valid attempt.
    assert panel.params() == ForestParams()
    set_controls(panel, numTrees=500, maxDepth=99, subsamplingRate=0.0, minInstancesPerNode=0)
    assert panel.params() == ForestParams(numTrees=200, maxDepth=20, subsamplingRate=0.05, minInstancesPerNode=1)
    panel.params().validate()
    for name, control in controls.items():
        assert control.description == name
    # The layout holds the controls, both buttons, the status, the leaderboard and the plots.
    assert isinstance(panel.widget, widgets.VBox)
    assert panel.widget.children[1:] == (panel.status, panel.board, panel.plots)
    assert panel.train_button.description == "Train & log"
    assert not panel.train_button.disabled


def test_no_attempt_yet(panel, tuner):  # noqa: F811
    assert panel.board.value == "<i>No attempts yet.</i>"
    assert panel.figure is None and panel.plots.value == b"" and panel.plots.layout.display == "none"
    assert "Train &amp; log" in panel.status.value
    assert panel.log_best_model() is None
    assert panel.status.value.startswith("⚠ ") and "No attempt yet" in panel.status.value
    panel.model_button.click()
    assert "No attempt yet" in panel.status.value
    assert runs(tuner) == []


def test_last_changed_follows_the_controls(panel):
    assert panel.last_changed == "numTrees"
    for name, value in [("maxDepth", 3), ("impurity", "entropy"), ("subsamplingRate", 0.5),
                        ("featureSubsetStrategy", "log2"), ("minInstancesPerNode", 4), ("numTrees", 7)]:
        panel.controls[name].value = value
        assert panel.last_changed == name


# --- clicks against real Spark --------------------------------------------------------------------


def test_each_click_logs_one_run_with_the_panels_values(panel, tuner):  # noqa: F811
    set_controls(panel, numTrees=7, featureSubsetStrategy="sqrt", impurity="entropy", subsamplingRate=0.8,
                 minInstancesPerNode=2, maxDepth=4)
    assert panel.last_changed == "maxDepth"
    press(panel)
    (first,) = runs(tuner)
    assert first.info.status == "FINISHED"
    assert first.data.params == {
        "model_type": "RandomForest", "numTrees": "7", "maxDepth": "4", "featureSubsetStrategy": "sqrt",
        "impurity": "entropy", "subsamplingRate": "0.8", "minInstancesPerNode": "2", "seed": str(SEED),
    }
    assert first.data.tags["attempt"] == "1"
    assert first.info.run_name == panel.params().run_name(1)
    assert panel.last_result.run_id == first.info.run_id
    assert panel.last_error is None
    auc = first.data.metrics["AUC"]
    assert panel.status.value.startswith("✓ Attempt 1 logged: <b>AUC ") and f"{auc:.3f}" in panel.status.value
    # The only attempt is the current one and the best: marked ▶ and highlighted.
    assert board_rows(panel) == highlighted(panel)
    (row,) = board_rows(panel)
    assert row[:4] == ["▶", "1", "7", "4"] and row[8] == f"{auc:.3f}"
    # The plot shows AUC against the setting changed last, as a PNG the worker thread set on the Image widget.
    assert panel.figure.axes[0].get_xlabel() == "maxDepth"
    assert isinstance(panel.plots, widgets.Image) and panel.plots.layout.display is None
    first_picture = panel.plots.value
    assert first_picture[:8] == b"\x89PNG\r\n\x1a\n"
    assert "second attempt" in " ".join(t.get_text() for t in panel.figure.axes[1].texts)

    # A stump: worse than the first forest (seeded, so always).
    set_controls(panel, maxDepth=1, numTrees=1)
    assert panel.last_changed == "numTrees"
    press(panel)
    first_again, second = runs(tuner)
    assert first_again.info.run_id == first.info.run_id
    assert second.data.params["numTrees"] == "1" and second.data.params["maxDepth"] == "1"
    assert second.data.params["featureSubsetStrategy"] == "sqrt"
    assert second.data.tags["attempt"] == "2"
    assert second.data.metrics["AUC"] < auc
    rows = board_rows(panel)
    assert [r[:2] for r in rows] == [["★", "1"], ["▶", "2"]]
    assert highlighted(panel) == rows[:1]
    assert panel.status.value.startswith("✓ Attempt 2 logged")
    assert panel.figure.axes[0].get_xlabel() == "numTrees"
    # A new picture: two points, and the parallel-coordinates view replaces its placeholder.
    assert panel.plots.value != first_picture and panel.plots.value[:4] == b"\x89PNG"
    assert panel.figure.axes[1].texts and "second attempt" not in " ".join(t.get_text() for t in panel.figure.axes[1].texts)
    assert len(panel.figure.axes[0].collections[0].get_offsets()) == 2
    assert panel.board.value == leaderboard_html(tuner.leaderboard(), second.info.run_id)


def test_clicks_while_training_are_ignored(panel, tuner, monkeypatch):  # noqa: F811
    release = threading.Event()
    started = threading.Event()
    real_train_and_log = tuner.train_and_log

    def slow_train_and_log(params):
        started.set()
        assert release.wait(30), "the test never released the attempt"
        return real_train_and_log(params)

    monkeypatch.setattr(tuner, "train_and_log", slow_train_and_log)
    try:
        panel.train_button.click()
        assert started.wait(30)
        assert panel.train_button.disabled and panel.model_button.disabled
        assert panel.status.value.startswith("Training…")
        assert panel.progress.layout.visibility == "visible"
        # The bar fills while the forest trains (it is never an empty grey bar), but never reaches the end.
        deadline = time.monotonic() + 5
        while panel.progress.value == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert 0 < panel.progress.value < panel.progress.max
        assert panel.progress.bar_style == "info"
        assert panel.click() is False
        panel.train_button.click()
        assert panel.log_best_model() is None  # the model button waits for the attempt too
        assert runs(tuner) == []
    finally:
        release.set()
    panel.wait(60)
    (run,) = runs(tuner)
    assert run.info.status == "FINISHED" and run.data.tags["attempt"] == "1"
    assert not panel.train_button.disabled and not panel.model_button.disabled
    assert panel.progress.layout.visibility == "hidden"
    assert panel.status.value.startswith("✓ Attempt 1 logged")
    assert [r[:2] for r in board_rows(panel)] == [["▶", "1"]]


def test_the_panel_recovers_from_failed_attempts(panel, tuner, monkeypatch):  # noqa: F811
    def assert_one_warning(*words):
        assert panel.status.value.count("⚠") == 1, panel.status.value
        assert panel.status.value.startswith("⚠ ")
        for word in words:
            assert word in panel.status.value, f"{word!r} not in {panel.status.value!r}"
        assert not panel.train_button.disabled and not panel.model_button.disabled
        assert panel.progress.layout.visibility == "hidden"
        assert panel.board.value == "<i>No attempts yet.</i>"

    # 1. Settings refused before any run exists.
    def refuse(params):
        raise TuningError("maxDepth must be between 1 and 20, not 99.")

    monkeypatch.setattr(tuner, "train_and_log", refuse)
    press(panel)
    assert_one_warning("maxDepth must be between 1 and 20", "Nothing was kept")
    assert panel.last_error == "maxDepth must be between 1 and 20, not 99."
    assert runs(tuner) == []

    # 2. Something unexpected: still one line, never a traceback, and the button comes back.
    def crash(params):
        raise RuntimeError("disk full\nTraceback (most recent call last): ...")

    monkeypatch.setattr(tuner, "train_and_log", crash)
    press(panel)
    assert_one_warning("Unexpected error: disk full")
    assert "Traceback" not in panel.status.value
    monkeypatch.undo()

    # 3. A real failure inside Spark (no label column): one FAILED run, and a warning.
    good_train = tuner.train
    tuner.train = good_train.select("features")
    press(panel)
    assert_one_warning("Spark could not train this forest", "Nothing was kept")
    (failed,) = runs(tuner)
    assert failed.info.status == "FAILED" and "error" in failed.data.tags
    assert panel.last_result is None

    # The next click works and logs a finished attempt.
    tuner.train = good_train
    set_controls(panel, numTrees=3, maxDepth=2)
    press(panel)
    failed_again, good = runs(tuner)
    assert failed_again.info.run_id == failed.info.run_id
    assert good.info.status == "FINISHED" and good.data.params["numTrees"] == "3"
    assert good.data.tags["attempt"] == "2"
    assert panel.last_error is None and panel.last_result.run_id == good.info.run_id
    assert panel.status.value.startswith("✓ Attempt 2 logged") and "⚠" not in panel.status.value
    assert [r[:2] for r in board_rows(panel)] == [["▶", "2"]]


def test_model_button_logs_the_best_attempts_model(panel, tuner):  # noqa: F811
    set_controls(panel, numTrees=5, maxDepth=3)
    press(panel)
    best = panel.last_result
    # A later, worse attempt (logged with the MLflow API: its model is never needed).
    with mlflow.start_run(experiment_id=tuner.experiment_id, run_name="try-02 worse",
                          tags={"source": "tuning-panel", "attempt": "2", "duration_s": "0.50"}) as worse:
        mlflow.log_params({**{k: str(v) for k, v in asdict(ForestParams(numTrees=1, maxDepth=1)).items()},
                           "model_type": "RandomForest", "seed": str(SEED)})
        mlflow.log_metrics({"AUC": 0.5, "average_precision": 0.4, "accuracy": 0.6, "f1": 0.3})
    assert tuner.leaderboard()["run_id"].tolist() == [best.run_id, worse.info.run_id]

    panel.model_button.click()
    uri = f"runs:/{best.run_id}/rf_model"
    assert re.fullmatch(rf"✓ Model of the best attempt logged in \d+\.\d s: <code>{re.escape(uri)}</code>", panel.status.value)
    files = artifact_paths(best.run_id, path="rf_model")
    assert "rf_model/MLmodel" in files and "rf_model/requirements.txt" in files
    assert any(f.startswith("rf_model/sparkml/") for f in files)
    assert artifact_paths(worse.info.run_id) == []
    assert len(runs(tuner)) == 2
    assert not panel.train_button.disabled



def test_the_run_link_opens_the_model_training_view():
    import pandas as pd

    from coursekit.tuning import AttemptResult

    class StubTuner:
        experiment_id = "7"

        def leaderboard(self):
            return pd.DataFrame()

    panel = TuningPanel(StubTuner(), ui_url="http://127.0.0.1:5001")
    status = panel._status_for(AttemptResult("abc123", "try-01 trees=20", 1, {"AUC": 0.8}, 1.23))
    assert 'href="http://127.0.0.1:5001/#/experiments/7/runs/abc123?workflowType=machine_learning"' in status
    assert status.startswith("✓ Attempt 1 logged: <b>AUC 0.800</b> in 1.2 s")


@pytest.mark.parametrize("key", ["numTrees", "featureSubsetStrategy", "minInstancesPerNode"])
def test_nothing_on_the_panels_picture_overlaps_or_is_cut_off(key):
    import pandas as pd

    from coursekit.tuning_panel import attempts_figure

    board = pd.DataFrame({
        "attempt": [1, 2, 3], "numTrees": [170, 9, 60], "maxDepth": [1, 18, 4],
        "featureSubsetStrategy": ["auto", "onethird", "sqrt"], "impurity": ["gini", "entropy", "gini"],
        "subsamplingRate": [0.05, 0.94, 0.8], "minInstancesPerNode": [2, 43, 10], "AUC": [0.838109, 0.704531, 0.8],
        "duration_s": [1.0, 2.0, 1.5], "run_id": ["a", "b", "c"],
    })
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = attempts_figure(board, key, current="b")
    canvas = FigureCanvasAgg(fig)  # the canvas savefig renders the PNG with
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = fig.canvas.get_width_height()
    left, right, bar = fig.axes
    def drawn_ticks(axis):  # matplotlib keeps labels for ticks outside the view; only those inside are drawn
        low, high = sorted(axis.get_view_interval())
        return [t.label1 for t in axis.get_major_ticks() if low - 1e-9 <= t.get_loc() <= high + 1e-9]

    texts = [t for ax in fig.axes for t in (*drawn_ticks(ax.xaxis), *drawn_ticks(ax.yaxis), *ax.texts, ax.title,
                                            ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, f"{text.get_text()!r} is cut off"
    names = [t.get_window_extent(renderer) for t in right.get_xticklabels()]
    assert all(a.x1 < b.x0 for a, b in zip(names, names[1:])), "axis names overlap"
    bar_box = bar.get_window_extent(renderer)
    assert all(t.get_window_extent(renderer).x1 < bar_box.x0 for t in right.texts), "a value runs into the colour bar"
    assert left.get_window_extent(renderer).x1 < right.get_window_extent(renderer).x0, "the two plots overlap"
    assert left.title.get_window_extent(renderer).x1 < right.title.get_window_extent(renderer).x0, "the titles collide"
