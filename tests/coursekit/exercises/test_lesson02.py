"""Lesson 2 checks against a real (temporary) MLflow store, one section per exercise.

Each section covers: the reference answer, nothing run yet, the untouched starter
code, and the typical mistakes, whose message must name the specific problem.
Spark is started only by the last section (metrics scored on the training rows, shared session of
``spark_fixtures``); elsewhere runs, metric histories and figures are written with the
MLflow API directly (tiny matplotlib figures on the Agg backend).
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from spark_fixtures import course_spark  # noqa: E402, F401 - a fixture
from store_helpers import assert_incorrect, store_template  # noqa: E402

from coursekit import BLANK, Outcome  # noqa: E402
from coursekit.exercises import lesson02
from coursekit.exercises.lesson02 import EXPERIMENT, q1, q2, q3, q4, q5  # noqa: E402

pytestmark = pytest.mark.usefixtures("lesson_experiment")

SOLUTION = Path(__file__).resolve().parents[3] / "solutions" / "02_log_metrics.ipynb"
TREE_COUNTS = [1, 5, 20, 40]
# The numbers the solution notebook logs with its default parameters.
VAL_AUC = {1: 0.630, 5: 0.810, 20: 0.835, 40: 0.829}
TRAIN_AUC = {1: 0.843, 5: 0.933, 20: 0.952, 40: 0.958}


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall)


GOOD_METRICS = {
    "val_auc": 0.835, "val_pr_auc": 0.741, "val_accuracy": 0.728,
    "val_f1": f1(0.692, 0.519), "val_precision": 0.692, "val_recall": 0.519,
}


def log_run(run_name, *, params=None, metrics=None, one_call=True, history=(), figures=None, texts=(), status="FINISHED"):
    """One run built with the real fluent API; ``status=None`` leaves it RUNNING. Returns its id.

    ``metrics`` go in one log_metrics call (or one log_metric call each, a few ms apart);
    ``history`` is (key, value, step) triples for log_metric; ``figures`` maps artifact names
    to a figure label; ``texts`` are artifact paths written with log_text.
    """
    run = mlflow.start_run(run_name=run_name)
    if params:
        mlflow.log_params(params)
    if metrics and one_call:
        mlflow.log_metrics(metrics)
    for key, value in (metrics or {}).items() if not one_call else ():
        mlflow.log_metric(key, value)
        time.sleep(0.003)  # timestamps are in milliseconds
    for key, value, step in history:
        mlflow.log_metric(key, value, step=step)
    for name, label in (figures or {}).items():
        figure = tiny_figure(label)
        mlflow.log_figure(figure, name)
        plt.close(figure)
    for path in texts:
        mlflow.log_text("not an image", path)
    if status:
        mlflow.end_run(status=status)
    return run.info.run_id


def tiny_figure(label: str):
    figure, ax = plt.subplots(figsize=(1, 1), dpi=40)
    ax.plot([0, 1], [0, 1])
    ax.set_title(label)
    return figure


def steps_history(steps=TREE_COUNTS, val=VAL_AUC, train=TRAIN_AUC):
    """(key, value, step) triples as the loop of exercise 2 logs them, in loop order."""
    triples = []
    for position, step in enumerate(steps):
        n = TREE_COUNTS[position % len(TREE_COUNTS)]
        triples += [("train_auc", train[n], step), ("val_auc", val[n], step)]
    return triples


def test_every_check_is_not_attempted_in_a_fresh_store():
    for exercise in (q1, q2, q4):
        result = exercise.result()
        assert result.outcome is Outcome.NOT_ATTEMPTED
        assert EXPERIMENT in result.message and "No run named" in result.message
    assert q2.result(TREE_COUNTS).outcome is Outcome.NOT_ATTEMPTED
    assert q3.result(BLANK).outcome is Outcome.NOT_ATTEMPTED
    assert q5.result(BLANK).outcome is Outcome.NOT_ATTEMPTED


def test_check_hint_and_solution_print(capsys):
    log_run(lesson02.METRICS_RUN, metrics=GOOD_METRICS)
    q1.check()
    assert capsys.readouterr().out.startswith("✅ Correct — q1: Log several metrics at once.")
    for exercise in (q1, q2, q3, q4, q5):
        exercise.hint()
        exercise.hint(2)
        exercise.solution()
        out = capsys.readouterr().out
        assert f"💡 {exercise.key} hint 1/" in out and f"💡 {exercise.key} hint 2/" in out and "📖" in out
        compile(exercise.solution_code, exercise.key, "exec")


def test_the_solution_notebook_uses_the_names_the_checks_read():
    text = SOLUTION.read_text(encoding="utf-8")
    for run_name in (lesson02.METRICS_RUN, lesson02.STEPS_RUN, lesson02.FIGURES_RUN, lesson02.LATEST_RUN):
        assert f'run_name=\\"{run_name}\\"' in text
    for step, value in lesson02.QUIZ_LOG:
        assert f'mlflow.log_metric(\\"val_auc\\", {value:.2f}, step={step})' in text
    for name in lesson02.FIGURES:
        assert f'\\"{name}\\"' in text


# --- q1: several metrics ------------------------------------------------------------------------


def test_q1_correct():
    log_run(lesson02.METRICS_RUN, params={"numTrees": 20, "maxDepth": 5}, metrics=GOOD_METRICS)
    result = q1.result()
    assert result.outcome is Outcome.CORRECT
    assert "0.835" in result.message and "val_recall = 0.519" in result.message and "48%" in result.message


def test_q1_starter_with_only_params_is_not_attempted():
    log_run(lesson02.METRICS_RUN, params={"numTrees": 20, "maxDepth": 5})
    result = q1.result()
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "no metrics yet" in result.message


def _without(name, **extra):
    return {**{k: v for k, v in GOOD_METRICS.items() if k != name}, **extra}


@pytest.mark.parametrize(
    ("metrics", "words"),
    [
        (_without("val_recall"), ["'val_recall'", "missing", "mlflow.log_metrics"]),
        (_without("val_auc", valAUC=0.835), ["'valAUC'", "'val_auc'", "case-sensitive"]),
        (_without("val_auc", **{"val-auc": 0.835}), ["'val-auc'", "'val_auc'", "exact"]),
        (_without("val_auc", test_auc=0.835), ["'test_auc'", "'val_auc'", "convention"]),
        (_without("val_auc", areaUnderROC=0.835), ["'areaUnderROC'", "'val_auc'", "convention"]),
        (_without("val_pr_auc", auc_pr=0.741), ["'val_pr_auc'", "missing"]),
        (_without("val_accuracy", accuracy=0.728), ["'accuracy'", "'val_accuracy'", "convention"]),
        ({**GOOD_METRICS, "val_pr_auc": 0.835}, ["val_pr_auc is exactly val_auc", "one metricName"]),
        ({**GOOD_METRICS, "val_f1": 0.715}, ["val_f1 (0.715)", "not the F1", "metricLabel=1.0", '"f1"']),
        ({**GOOD_METRICS, "val_precision": 0.742}, ["not the F1", "positive class"]),
        ({**GOOD_METRICS, "val_recall": float("nan")}, ["val_recall is NaN", "metrics.val_recall > 0.5"]),
        ({**GOOD_METRICS, "val_accuracy": 72.8}, ["val_accuracy is 72.8", "outside 0…1"]),
        ({**GOOD_METRICS, "val_auc": 0.31}, ["0.310", "coin toss"]),
    ],
)
def test_q1_mistakes(metrics, words):
    log_run(lesson02.METRICS_RUN, metrics=metrics)
    assert_incorrect(q1.result(), *words)


def test_q1_metrics_logged_as_params():
    log_run(lesson02.METRICS_RUN, params={k: round(v, 3) for k, v in GOOD_METRICS.items()})
    assert_incorrect(q1.result(), "logged as a param", "mlflow.log_metrics")


def test_q1_six_log_metric_calls_instead_of_one_log_metrics():
    log_run(lesson02.METRICS_RUN, metrics=GOOD_METRICS, one_call=False)
    assert_incorrect(q1.result(), "different timestamps", "one mlflow.log_metrics call")


def test_q1_run_left_running():
    log_run(lesson02.METRICS_RUN, metrics=GOOD_METRICS, status=None)
    assert_incorrect(q1.result(), "RUNNING", "mlflow.end_run()")


def test_q1_failed_run():
    log_run(lesson02.METRICS_RUN, metrics=GOOD_METRICS, status="FAILED")
    assert_incorrect(q1.result(), "FAILED")


def test_q1_reads_the_latest_attempt():
    log_run(lesson02.METRICS_RUN, metrics=_without("val_recall"))
    time.sleep(0.01)  # start times are in milliseconds
    log_run(lesson02.METRICS_RUN, metrics=GOOD_METRICS)
    assert q1.result().outcome is Outcome.CORRECT


# --- q2: metrics over steps ---------------------------------------------------------------------


def test_q2_correct():
    log_run(lesson02.STEPS_RUN, params={"maxDepth": 5}, history=steps_history())
    result = q2.result(TREE_COUNTS)
    assert result.outcome is Outcome.CORRECT
    assert "0.630 with 1 tree " in result.message and "0.829 with 40 trees" in result.message
    assert q2.result().outcome is Outcome.CORRECT  # without the forest sizes, the steps are judged alone


def test_q2_starter_with_only_pass_is_not_attempted():
    log_run(lesson02.STEPS_RUN, params={"maxDepth": 5})
    result = q2.result(TREE_COUNTS)
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "no metrics yet" in result.message


@pytest.mark.parametrize(
    ("history", "tree_counts", "words"),
    [
        ([("train_auc", 0.958, 0), ("val_auc", 0.829, 0)], TREE_COUNTS, ["single value", "inside the loop"]),
        (steps_history(steps=[0, 0, 0, 0]), TREE_COUNTS, ["All 4 values", "step 0", "step=n_trees"]),
        (steps_history(steps=[0, 1, 2, 3]), TREE_COUNTS, ["[0, 1, 2, 3]", "loop's position", "n_trees"]),
        (steps_history(steps=[1, 2, 3, 4]), TREE_COUNTS, ["[1, 2, 3, 4]", "loop's position"]),
        (steps_history(steps=[0, 1, 2, 3]), None, ["step 0", "no forest has 0 trees"]),
        (steps_history(steps=[2, 6, 21, 41]), TREE_COUNTS, ["[2, 6, 21, 41]", "TREE_COUNTS", "[1, 5, 20, 40]"]),
        (steps_history(steps=[20, 40]), None, ["only 2 steps", "TREE_COUNTS"]),
        (steps_history(steps=[40, 40, 40, 40]), TREE_COUNTS, ["4 values at step 40", "its own step"]),
        ([t for t in steps_history() if t[0] == "val_auc"], TREE_COUNTS, ["'train_auc'", "missing", "step=n_trees"]),
        ([(k.replace("val_auc", "valAuc"), v, s) for k, v, s in steps_history()], TREE_COUNTS, ["'valAuc'", "'val_auc'"]),
        ([(k.replace("val_auc", "test_auc"), v, s) for k, v, s in steps_history()], TREE_COUNTS, ["'test_auc'", "convention"]),
        ([(k.replace("train_auc", "training_auc"), v, s) for k, v, s in steps_history()], TREE_COUNTS, ["'training_auc'", "'train_auc'"]),
        (steps_history(val={**VAL_AUC, 5: float("nan")}), TREE_COUNTS, ["val_auc at step 5 is NaN"]),
        (steps_history(train={**TRAIN_AUC, 20: 95.2}), TREE_COUNTS, ["train_auc at step 20 is 95.2", "outside 0…1"]),
        (steps_history(val=TRAIN_AUC, train=VAL_AUC), TREE_COUNTS, ["below val_auc at every step", "swapped"]),
    ],
)
def test_q2_mistakes(history, tree_counts, words):
    log_run(lesson02.STEPS_RUN, history=history)
    assert_incorrect(q2.result(tree_counts), *words)


def test_q2_train_and_val_at_different_steps():
    history = [t for t in steps_history() if t[0] == "val_auc"]
    history += [("train_auc", TRAIN_AUC[n], i) for i, n in enumerate(TREE_COUNTS, start=1)]
    log_run(lesson02.STEPS_RUN, history=history)
    assert_incorrect(q2.result(), "train_auc is at steps [1, 2, 3, 4]", "val_auc at [1, 5, 20, 40]", "same steps")


def test_q2_run_left_running():
    log_run(lesson02.STEPS_RUN, history=steps_history(), status=None)
    assert_incorrect(q2.result(TREE_COUNTS), "RUNNING")


# --- q3: the best step --------------------------------------------------------------------------


@store_template
def steps_run_store():
    """The run of exercise 2 with the loop's train_auc and val_auc history; returns its id."""
    return log_run(lesson02.STEPS_RUN, history=steps_history())


@pytest.fixture
def steps_run_id(steps_run_store):
    """The id of the run of exercise 2 in the test's own copy of ``steps_run_store``."""
    return steps_run_store.value


def test_q3_correct_with_the_reference_solution(steps_run_id):
    history = MlflowClient().get_metric_history(steps_run_id, "val_auc")
    best_n_trees = max(history, key=lambda m: m.value).step
    result = q3.result(best_n_trees)
    assert result.outcome is Outcome.CORRECT
    assert "20 trees give the best val_auc, 0.835" in result.message and "0.829" in result.message
    assert "not the best" in result.message


@pytest.mark.parametrize("answer", [20, 20.0, np.int64(20), np.float64(20.0)])
def test_q3_number_types_are_accepted(steps_run_id, answer):
    assert q3.result(answer).outcome is Outcome.CORRECT


@pytest.mark.parametrize("answer", [BLANK, None, ...])
def test_q3_blank_is_not_attempted(steps_run_id, answer):
    assert q3.result(answer).outcome is Outcome.NOT_ATTEMPTED


def test_q3_best_at_the_last_step():
    log_run(lesson02.STEPS_RUN, history=steps_history(val={**VAL_AUC, 40: 0.85}))
    result = q3.result(40)
    assert result.outcome is Outcome.CORRECT
    assert "last step too" in result.message


def test_q3_a_tie_accepts_either_step():
    log_run(lesson02.STEPS_RUN, history=steps_history(val={**VAL_AUC, 5: 0.835}))
    assert q3.result(5).outcome is Outcome.CORRECT
    assert q3.result(20).outcome is Outcome.CORRECT


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (40, ["40 is the last step", "latest", "0.829"]),
        (5, ["With 5 trees val_auc is 0.810", "another step scores higher"]),
        (1, ["With 1 tree val_auc", "another step"]),
        (2, ["2 is not a step", "[1, 5, 20, 40]"]),
        (0.835, ["not a whole number", "looks like an AUC", ".step"]),
        (20.5, ["not a whole number"]),
        ("20", ["str", "whole number"]),
        (True, ["bool"]),
        ([20], ["list"]),
    ],
)
def test_q3_mistakes(steps_run_id, answer, words):
    assert_incorrect(q3.result(answer), *words)


def test_q3_a_metric_object_instead_of_its_step(steps_run_id):
    best = max(MlflowClient().get_metric_history(steps_run_id, "val_auc"), key=lambda m: m.value)
    assert_incorrect(q3.result(best), "Metric object", ".step")


def test_q3_without_exercise_2():
    assert_incorrect(q3.result(20), "no val_auc history", "exercise 2")
    log_run(lesson02.STEPS_RUN, history=[("val_auc", 0.8, 20)])
    assert_incorrect(q3.result(20), "exercise 2")


# --- q4: figures --------------------------------------------------------------------------------

GOOD_FIGURES = {"roc_curve.png": "ROC", "confusion_matrix.png": "CM"}


def test_q4_correct(capsys):
    log_run(lesson02.FIGURES_RUN, metrics={"val_auc": 0.835}, figures=GOOD_FIGURES)
    q4.check()
    captured = capsys.readouterr()
    assert captured.out.startswith("✅ Correct — q4")
    assert "Downloading artifacts" not in captured.err  # no progress bar in the learner's notebook


def test_q4_starter_with_only_the_metric_is_not_attempted():
    log_run(lesson02.FIGURES_RUN, metrics={"val_auc": 0.835})
    result = q4.result()
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "no figures yet" in result.message


@pytest.mark.parametrize(
    ("figures", "texts", "words"),
    [
        ({"roc_curve.png": "ROC"}, (), ["No 'confusion_matrix.png'", "mlflow.log_figure"]),
        ({"confusion_matrix.png": "CM"}, (), ["No 'roc_curve.png'"]),
        ({"roc.png": "ROC", "confusion_matrix.png": "CM"}, (), ["Found 'roc.png'", "'roc_curve.png'"]),
        ({"figures/roc_curve.png": "ROC", "confusion_matrix.png": "CM"}, (), ["Found 'figures/roc_curve.png'", "folder"]),
        ({"roc_curve.png": "ROC", "Confusion_Matrix.png": "CM"}, (), ["Found 'Confusion_Matrix.png'"]),
        ({"roc_curve.pdf": "ROC", "confusion_matrix.png": "CM"}, (), ["Found 'roc_curve.pdf'", "extension"]),
        ({"confusion_matrix.png": "CM"}, ("roc_curve.png",), ["'roc_curve.png' is not a PNG image"]),
        ({"roc_curve.png": "same", "confusion_matrix.png": "same"}, (), ["the same image"]),
    ],
)
def test_q4_mistakes(figures, texts, words):
    log_run(lesson02.FIGURES_RUN, metrics={"val_auc": 0.835}, figures=figures, texts=texts)
    assert_incorrect(q4.result(), *words)


def test_q4_figures_without_val_auc():
    log_run(lesson02.FIGURES_RUN, figures=GOOD_FIGURES)
    assert_incorrect(q4.result(), "'val_auc'", "missing")


def test_q4_run_left_running():
    log_run(lesson02.FIGURES_RUN, metrics={"val_auc": 0.835}, figures=GOOD_FIGURES, status=None)
    assert_incorrect(q4.result(), "RUNNING")


def test_q4_failed_run_without_figures():
    # e.g. mlflow.log_figure(ax, ...) with an Axes instead of a Figure raises, and the run ends FAILED.
    log_run(lesson02.FIGURES_RUN, metrics={"val_auc": 0.835}, status="FAILED")
    assert_incorrect(q4.result(), "FAILED")


# --- q5: predict the latest value ---------------------------------------------------------------


@store_template
def quiz_run_store():
    """The quiz run of exercise 5, its val_auc logged as the lesson's QUIZ_LOG; returns its id."""
    return log_run(lesson02.LATEST_RUN, history=[("val_auc", value, step) for step, value in lesson02.QUIZ_LOG])


@pytest.fixture
def quiz_run(quiz_run_store):
    """The id of the quiz run in the test's own copy of ``quiz_run_store``."""
    return quiz_run_store.value


@pytest.mark.parametrize("answer", [0.8, 0.80, np.float64(0.8), 4 / 5])
def test_q5_correct(quiz_run, answer):
    result = q5.result(answer)
    assert result.outcome is Outcome.CORRECT
    assert "highest step" in result.message


def test_q5_the_store_agrees_with_the_lesson():
    # What the lesson teaches, checked against MLflow itself.
    run_id = log_run(lesson02.LATEST_RUN, history=[("val_auc", v, s) for s, v in lesson02.QUIZ_LOG])
    assert mlflow.get_run(run_id).data.metrics["val_auc"] == pytest.approx(0.80)


@pytest.mark.parametrize("answer", [BLANK, None, ...])
def test_q5_blank_is_not_attempted(quiz_run, answer):
    assert q5.result(answer).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (0.9, ["0.9 is the best value", "does not keep the best"]),
        (0.75, ["0.75 was logged last", "step first"]),
        (0.7, ["0.7 is at the highest step", "afterwards"]),
        (0.85, ["0.85 is not what MLflow shows", "steps"]),
        ("0.8", ["str"]),
    ],
)
def test_q5_mistakes(quiz_run, answer, words):
    assert_incorrect(q5.result(answer), *words)


def test_q5_quiz_run_missing_or_changed():
    assert q5.result(0.8).outcome is Outcome.NOT_ATTEMPTED
    log_run(lesson02.LATEST_RUN, history=[("val_auc", 0.8, 3)])
    assert_incorrect(q5.result(0.8), "does not hold the four values")


# --- what the lesson teaches about NaN, checked against MLflow itself ----------------------------


def test_nan_is_stored_sorts_last_both_ways_and_no_filter_finds_it():
    ids = [log_run(name, metrics={"val_auc": v}) for name, v in [("a", 0.81), ("b", float("nan")), ("c", 0.77)]]
    only = "attributes.run_id IN ({})".format(", ".join(f"'{i}'" for i in ids))
    for order, expected in [("DESC", ["a", "c", "b"]), ("ASC", ["c", "a", "b"])]:
        found = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=only, order_by=[f"metrics.val_auc {order}"])
        assert list(found["tags.mlflow.runName"]) == expected
    found = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=f"{only} and metrics.val_auc > 0")
    assert sorted(found["tags.mlflow.runName"]) == ["a", "c"]


# --- issue 9: metrics scored on the rows the forest was trained on ---------------------------------


@pytest.mark.parametrize(
    "history",
    [steps_history(train=VAL_AUC), steps_history(val=TRAIN_AUC)],
    ids=["both-on-val", "both-on-train"],
)
def test_q2_both_metrics_scored_on_the_same_rows(history):
    log_run(lesson02.STEPS_RUN, history=history)
    assert_incorrect(q2.result(TREE_COUNTS), "equals val_auc at every step", "transform(train)", "transform(val)")


FOREST = {"numTrees": 10, "maxDepth": 5}


@pytest.fixture(scope="module")
def six_metrics(course_spark):
    """Exercise 1's six metrics of the lesson's forest (FOREST), computed as the solution does, on val and on train."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.evaluation import BinaryClassificationEvaluator, MulticlassClassificationEvaluator
    from pyspark.ml.feature import VectorAssembler

    from coursekit.data import FEATURES, LABEL, load_pima

    train, val = load_pima(course_spark.spark).randomSplit([0.7, 0.3], seed=42)
    forest = RandomForestClassifier(labelCol=LABEL, seed=42, **FOREST)
    model = Pipeline(stages=[VectorAssembler(inputCols=FEATURES, outputCol="features"), forest]).fit(train)
    binary, multi = BinaryClassificationEvaluator(labelCol=LABEL), MulticlassClassificationEvaluator(labelCol=LABEL)
    positive = {multi.metricLabel: 1.0}

    def metrics(rows):
        predictions = model.transform(rows)
        return {
            "val_auc": binary.evaluate(predictions, {binary.metricName: "areaUnderROC"}),
            "val_pr_auc": binary.evaluate(predictions, {binary.metricName: "areaUnderPR"}),
            "val_accuracy": multi.evaluate(predictions, {multi.metricName: "accuracy"}),
            "val_f1": multi.evaluate(predictions, {multi.metricName: "fMeasureByLabel", **positive}),
            "val_precision": multi.evaluate(predictions, {multi.metricName: "precisionByLabel", **positive}),
            "val_recall": multi.evaluate(predictions, {multi.metricName: "recallByLabel", **positive}),
        }

    return {"val": metrics(val), "train": metrics(train)}


def test_q1_metrics_of_the_val_rows_are_correct(six_metrics):
    log_run(lesson02.METRICS_RUN, params=FOREST, metrics=six_metrics["val"])
    assert q1.result().outcome is Outcome.CORRECT


def test_q1_metrics_of_the_training_rows(six_metrics):
    log_run(lesson02.METRICS_RUN, params=FOREST, metrics=six_metrics["train"])
    assert_incorrect(q1.result(), f"val_auc ({six_metrics['train']['val_auc']:.3f})", "training rows", "model.transform(val)")
