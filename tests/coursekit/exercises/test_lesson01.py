"""Lesson 1 checks against a real (temporary) MLflow store, one section per exercise.

Each section covers: the reference answer, nothing run yet, the untouched starter
code, and the typical mistakes, whose message must name the specific problem.
"""

from __future__ import annotations

import time

import mlflow
import pytest
from spark_fixtures import course_spark  # noqa: F401 - a fixture
from store_helpers import assert_incorrect, log_run, store_template

from coursekit import BLANK, Outcome
from coursekit.exercises import lesson01, verdicts
from coursekit.exercises.lesson01 import EXPERIMENT, q1, q2, q3, q4, q5

pytestmark = pytest.mark.usefixtures("lesson_store")

GOOD_PARAMS = {"model_type": "RandomForest", "numTrees": 20, "maxDepth": 5}
SPARK_MODEL = ("rf_model/MLmodel", "rf_model/sparkml/metadata/part-00000")


def test_every_check_is_not_attempted_in_a_fresh_store():
    for exercise in (q1, q2, q3, q5):
        result = exercise.result()
        assert result.outcome is Outcome.NOT_ATTEMPTED
        assert EXPERIMENT in result.message and "No run named" in result.message
    assert q4.result().outcome is Outcome.NOT_ATTEMPTED


def test_check_prints_the_verdict(capsys):
    log_run(lesson01.PARAMS_RUN, params=GOOD_PARAMS)
    q1.check()
    assert capsys.readouterr().out.startswith("✅ Correct — q1: Log parameters.")


# --- q1: log parameters -------------------------------------------------------------------------


def test_q1_correct():
    log_run(lesson01.PARAMS_RUN, params=GOOD_PARAMS)
    assert q1.result().outcome is Outcome.CORRECT


def test_q1_starter_blanks_are_not_attempted():
    log_run(lesson01.PARAMS_RUN, params={"model_type": BLANK, "numTrees": BLANK, "maxDepth": BLANK})
    result = q1.result()
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "____" in result.message


def test_q1_run_without_params_is_not_attempted():
    log_run(lesson01.PARAMS_RUN)
    assert q1.result().outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"model_type": "RandomForest"}, ["'numTrees'", "missing", "mlflow.log_param"]),
        ({"model_type": "RandomForest", "numTrees": 20}, ["'maxDepth'", "missing"]),
        ({"numTrees": 20, "maxDepth": 5}, ["'model_type'", "missing"]),
        ({"modeltype": "RandomForest", "numTrees": 20, "maxDepth": 5}, ["'modeltype'", "'model_type'", "exact"]),
        ({"ModelType": "RandomForest", "numTrees": 20, "maxDepth": 5}, ["'ModelType'", "'model_type'", "exact"]),
        ({"model_type": "RandomForest", "num_trees": 20, "maxDepth": 5}, ["'num_trees'", "'numTrees'"]),
        ({**GOOD_PARAMS, "model_type": "RandomForestClassifier"}, ["model_type", "'RandomForestClassifier'"]),
        ({**GOOD_PARAMS, "numTrees": "twenty"}, ["numTrees", "'twenty'", "whole number"]),
    ],
)
def test_q1_mistakes(params, words):
    log_run(lesson01.PARAMS_RUN, params=params)
    assert_incorrect(q1.result(), *words)


def test_q1_run_left_running():
    log_run(lesson01.PARAMS_RUN, params=GOOD_PARAMS, status=None)
    assert_incorrect(q1.result(), "RUNNING", "mlflow.end_run()")


def test_q1_failed_run():
    log_run(lesson01.PARAMS_RUN, params=GOOD_PARAMS, status="FAILED")
    assert_incorrect(q1.result(), "FAILED")


def test_q1_reads_the_latest_attempt():
    log_run(lesson01.PARAMS_RUN, params={"model_type": "RandomForest"})
    time.sleep(0.01)  # start times are in milliseconds
    log_run(lesson01.PARAMS_RUN, params=GOOD_PARAMS)
    assert q1.result().outcome is Outcome.CORRECT


# --- q2: tags -----------------------------------------------------------------------------------


def test_q2_correct():
    log_run(lesson01.TAGS_RUN, tags={"env": "dev", "user": "ada"})
    assert q2.result().outcome is Outcome.CORRECT


def test_q2_starter_blanks_are_not_attempted():
    log_run(lesson01.TAGS_RUN, tags={"env": BLANK, "user": BLANK})
    result = q2.result()
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "____" in result.message


def test_q2_run_without_tags_is_not_attempted():
    log_run(lesson01.TAGS_RUN)
    assert q2.result().outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize(
    ("params", "tags", "words"),
    [
        ({"env": "dev", "user": "ada"}, None, ["'env'", "logged as a param", "mlflow.set_tag"]),
        ({"user": "ada"}, {"env": "dev"}, ["'user'", "logged as a param"]),
        (None, {"Env": "dev", "user": "ada"}, ["'Env'", "'env'", "case-sensitive"]),
        (None, {"env": "dev"}, ["Tag 'user' is missing", "mlflow.set_tag"]),
        (None, {"env": "prod", "user": "ada"}, ["'prod'", "'dev'"]),
        (None, {"env": "dev", "user": "  "}, ["user", "empty"]),
    ],
)
def test_q2_mistakes(params, tags, words):
    log_run(lesson01.TAGS_RUN, params=params, tags=tags)
    assert_incorrect(q2.result(), *words)


def test_q2_run_left_running():
    log_run(lesson01.TAGS_RUN, tags={"env": "dev", "user": "ada"}, status=None)
    assert_incorrect(q2.result(), "RUNNING")


# --- q3: AUC metric -----------------------------------------------------------------------------


def test_q3_correct():
    log_run(lesson01.METRIC_RUN, params=GOOD_PARAMS, metrics={"AUC": 0.83})
    result = q3.result()
    assert result.outcome is Outcome.CORRECT
    assert "0.830" in result.message and "metrics.AUC > 0.80" in result.message


def test_q3_starter_without_metric_is_not_attempted():
    # The starter logs the params itself; the metric lines are still commented out.
    log_run(lesson01.METRIC_RUN, params=GOOD_PARAMS)
    assert q3.result().outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize(
    ("params", "metrics", "words"),
    [
        (GOOD_PARAMS, {"auc": 0.83}, ["'auc'", "'AUC'", "case-sensitive"]),
        (GOOD_PARAMS, {"Auc": 0.83}, ["'Auc'", "'AUC'"]),
        (GOOD_PARAMS, {"areaUnderROC": 0.83}, ["'areaUnderROC'", "'AUC'", "exact"]),
        (GOOD_PARAMS, {"roc_auc": 0.83}, ["'roc_auc'", "'AUC'"]),
        (GOOD_PARAMS, {"accuracy": 0.83}, ["'AUC'", "missing", "mlflow.log_metric"]),
        (GOOD_PARAMS, {"AUC": 0.31}, ["0.310", "coin toss", "labelCol"]),
        (GOOD_PARAMS, {"AUC": 1.7}, ["1.7", "outside 0…1"]),
        (GOOD_PARAMS, {"AUC": -0.2}, ["-0.2", "outside 0…1"]),
        ({**GOOD_PARAMS, "AUC": 0.83}, None, ["logged as a param", "mlflow.log_metric"]),
        ({"model_type": "RandomForest", "numTrees": 20}, {"AUC": 0.83}, ["'maxDepth'", "missing"]),
        (None, {"AUC": 0.83}, ["'numTrees'", "missing"]),
    ],
)
def test_q3_mistakes(params, metrics, words):
    log_run(lesson01.METRIC_RUN, params=params, metrics=metrics)
    assert_incorrect(q3.result(), *words)


def test_q3_run_left_running():
    log_run(lesson01.METRIC_RUN, params=GOOD_PARAMS, metrics={"AUC": 0.83}, status=None)
    assert_incorrect(q3.result(), "RUNNING")


# --- q4: best run -------------------------------------------------------------------------------


@store_template
def two_runs_store():
    """Two finished runs in the lesson experiment, and one without a metric; returns (worse id, best id)."""
    worse = log_run("small-forest", params=GOOD_PARAMS, metrics={"AUC": 0.71})
    best = log_run(lesson01.METRIC_RUN, params=GOOD_PARAMS, metrics={"AUC": 0.86})
    log_run("no-metric-run", params=GOOD_PARAMS)
    return worse, best


@pytest.fixture
def two_runs(two_runs_store):
    """Two finished runs in the test's own copy of ``two_runs_store``: (worse id, best id)."""
    return two_runs_store.value


def test_q4_correct_with_the_reference_solution(two_runs):
    best = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=1)
    best_run_id = best.loc[0, "run_id"]
    assert best_run_id == two_runs[1]
    result = q4.result(best_run_id)
    assert result.outcome is Outcome.CORRECT
    assert "0.860" in result.message


def test_q4_a_tie_for_best_is_correct(two_runs):
    tied = log_run("tied", metrics={"AUC": 0.86})
    assert q4.result(tied).outcome is Outcome.CORRECT


@pytest.mark.parametrize("answer", [BLANK, None, ...])
def test_q4_blank_is_not_attempted(two_runs, answer):
    assert q4.result(answer).outcome is Outcome.NOT_ATTEMPTED


def test_q4_not_the_best(two_runs):
    assert_incorrect(q4.result(two_runs[0]), "0.710", "0.860", "descending")


def test_q4_not_a_string(two_runs):
    frame = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=1)
    assert_incorrect(q4.result(frame), "DataFrame", "not a string", "run_id")
    assert_incorrect(q4.result(frame["run_id"]), "Series", "not a string")
    assert_incorrect(q4.result(42), "int", "not a string")


def test_q4_run_from_another_experiment(two_runs):
    mlflow.set_experiment("someone-elses-experiment")
    stranger = log_run("stranger", metrics={"AUC": 0.99})
    assert_incorrect(q4.result(stranger), "another experiment", EXPERIMENT)


@pytest.mark.parametrize("run_id", ["0" * 32, "not-a-run-id", ""])
def test_q4_nonexistent_id(two_runs, run_id):
    assert_incorrect(q4.result(run_id), "No run has the id", repr(run_id))


def test_q4_run_without_auc(two_runs):
    no_metric = log_run("also-no-metric")
    assert_incorrect(q4.result(no_metric), "no AUC metric")


# --- q5: Spark model (artifacts faked with log_text; Spark is not started) -----------------------


def test_q5_correct():
    log_run(lesson01.MODEL_RUN, params=GOOD_PARAMS, metrics={"AUC": 0.83}, artifacts=SPARK_MODEL)
    assert q5.result().outcome is Outcome.CORRECT


def test_q5_starter_with_only_pass_is_not_attempted():
    log_run(lesson01.MODEL_RUN)
    result = q5.result()
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "no model yet" in result.message


@pytest.mark.parametrize(
    ("metrics", "artifacts", "words"),
    [
        ({"AUC": 0.83}, ("rf_model/MLmodel", "rf_model/model.pkl"), ["not a Spark model", "mlflow.spark.log_model"]),
        ({"AUC": 0.83}, ("model/MLmodel", "model/sparkml/metadata/part-00000"), ["'model'", "'rf_model'"]),
        ({"AUC": 0.83}, ("spark-model/MLmodel",), ["'spark-model'", "'rf_model'"]),
        ({"AUC": 0.83}, (), ["No model under 'rf_model'", "mlflow.spark.log_model"]),
        (None, SPARK_MODEL, ["no AUC metric"]),
    ],
)
def test_q5_mistakes(metrics, artifacts, words):
    log_run(lesson01.MODEL_RUN, params=GOOD_PARAMS, metrics=metrics, artifacts=artifacts)
    assert_incorrect(q5.result(), *words)


def test_q5_run_left_running():
    log_run(lesson01.MODEL_RUN, metrics={"AUC": 0.83}, artifacts=SPARK_MODEL, status=None)
    assert_incorrect(q5.result(), "RUNNING")


# --- review follow-ups ----------------------------------------------------------------------------


def test_q1_settings_set_as_tags_are_named():
    log_run(lesson01.PARAMS_RUN, tags={"model_type": "RandomForest", "numTrees": "20", "maxDepth": "5"})
    assert_incorrect(q1.result(), "'maxDepth'", "tag", "mlflow.log_param")


def test_q4_ignores_a_better_run_that_did_not_finish():
    finished = log_run("good", params=GOOD_PARAMS, metrics={"AUC": 0.80})
    log_run("crashed", params=GOOD_PARAMS, metrics={"AUC": 0.95}, status="FAILED")
    assert q4.result(finished).outcome is Outcome.CORRECT


def test_q5_accepts_a_spark_model_recorded_as_a_logged_model(monkeypatch):
    # Later MLflow versions may record the model only as an MLflow 3 LoggedModel.
    log_run(lesson01.MODEL_RUN, params=GOOD_PARAMS, metrics={"AUC": 0.83}, artifacts=["notes.txt"])
    monkeypatch.setattr(lesson01, "_logged_model_flavors", lambda run: {"spark", "python_function"})
    assert q5.result().outcome is Outcome.CORRECT
    monkeypatch.setattr(lesson01, "_logged_model_flavors", lambda run: {"sklearn"})
    assert_incorrect(q5.result(), "not a Spark model")


# --- issue 9: wrong answers that used to pass --------------------------------------------------


@pytest.mark.parametrize("user", ["LEARNER", "{LEARNER}", "'LEARNER'"])
def test_q2_the_quoted_variable_name_is_not_a_name(user):
    log_run(lesson01.TAGS_RUN, tags={"env": "dev", "user": user})
    assert_incorrect(q2.result(), repr(user), "without quotes", "value")


def test_q2_the_learner_parameter_default_value_is_fine():
    # LEARNER = "learner" in the parameters cell: the value, lower-case, is a correct answer.
    log_run(lesson01.TAGS_RUN, tags={"env": "dev", "user": "learner"})
    assert q2.result().outcome is Outcome.CORRECT


def test_q4_rejects_a_deleted_run():
    kept = log_run("kept", params=GOOD_PARAMS, metrics={"AUC": 0.80})
    gone = log_run("retry", params=GOOD_PARAMS, metrics={"AUC": 0.90})
    mlflow.delete_run(gone)
    assert_incorrect(q4.result(gone), "'retry'", "deleted", "search again")
    assert q4.result(kept).outcome is Outcome.CORRECT


@pytest.mark.parametrize("status", [None, "FAILED", "KILLED"])
def test_q4_rejects_an_unfinished_run_with_a_higher_auc(status):
    log_run("good", params=GOOD_PARAMS, metrics={"AUC": 0.80})
    unfinished = log_run("crashed", params=GOOD_PARAMS, metrics={"AUC": 0.95}, status=status)
    assert_incorrect(q4.result(unfinished), "'crashed'", "not FINISHED", "mlflow.delete_run")


def test_q5_needs_the_model_params():
    log_run(lesson01.MODEL_RUN, metrics={"AUC": 0.83}, artifacts=SPARK_MODEL)
    assert_incorrect(q5.result(), "'model_type'", "missing", "log_params")
    log_run(lesson01.MODEL_RUN, params={"model_type": "RandomForest", "numTrees": 20}, metrics={"AUC": 0.83}, artifacts=SPARK_MODEL)
    assert_incorrect(q5.result(), "'maxDepth'", "missing")


def test_q5_params_set_as_tags():
    tags = {k: str(v) for k, v in GOOD_PARAMS.items()}
    log_run(lesson01.MODEL_RUN, tags=tags, metrics={"AUC": 0.83}, artifacts=SPARK_MODEL)
    assert_incorrect(q5.result(), "'model_type'", "tag", "params")


# --- issue 9: AUC scored on the wrong rows (the lesson's Spark pipeline, on the shared session) ---

LEAK_TREES, LEAK_DEPTH = 10, 5  # a small forest keeps each fit (the learner's and the check's) short
LEAK_PARAMS = {"model_type": "RandomForest", "numTrees": LEAK_TREES, "maxDepth": LEAK_DEPTH}


@pytest.fixture(scope="module")
def lesson_aucs(course_spark):
    """The lesson's pipeline with LEAK_PARAMS, fitted as its cells do; its AUC on test, train and all rows.

    Computed with Spark's BinaryClassificationEvaluator, as a learner would, not with the check's code.
    """
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import VectorAssembler

    from coursekit.data import FEATURES, LABEL, load_pima

    data = load_pima(course_spark.spark)
    train, test = data.randomSplit([0.7, 0.3], seed=42)
    forest = RandomForestClassifier(labelCol=LABEL, numTrees=LEAK_TREES, maxDepth=LEAK_DEPTH, seed=42)
    model = Pipeline(stages=[VectorAssembler(inputCols=FEATURES, outputCol="features"), forest]).fit(train)
    evaluator = BinaryClassificationEvaluator(labelCol=LABEL, metricName="areaUnderROC")
    return {name: evaluator.evaluate(model.transform(rows)) for name, rows in (("test", test), ("train", train), ("all", data))}


def test_q3_accepts_the_auc_of_the_test_rows(lesson_aucs):
    log_run(lesson01.METRIC_RUN, params=LEAK_PARAMS, metrics={"AUC": lesson_aucs["test"]})
    assert q3.result().outcome is Outcome.CORRECT


def test_q3_rejects_the_auc_of_the_training_rows(lesson_aucs):
    assert lesson_aucs["train"] > lesson_aucs["test"] + 0.05  # what makes the mistake tempting
    log_run(lesson01.METRIC_RUN, params=LEAK_PARAMS, metrics={"AUC": lesson_aucs["train"]})
    assert_incorrect(q3.result(), "training rows", "model.transform(test)", "delete this run")


def test_q3_rejects_the_auc_of_all_rows(lesson_aucs):
    log_run(lesson01.METRIC_RUN, params=LEAK_PARAMS, metrics={"AUC": lesson_aucs["all"]})
    assert_incorrect(q3.result(), "all rows", "model.transform(test)")


def test_q3_without_spark_judges_the_rest(lesson_aucs, monkeypatch):
    # A check never starts Spark: without a session the train-scored AUC cannot be recognised.
    monkeypatch.setattr(verdicts, "rescore", lambda num_trees, max_depth: None)
    log_run(lesson01.METRIC_RUN, params=LEAK_PARAMS, metrics={"AUC": lesson_aucs["train"]})
    assert q3.result().outcome is Outcome.CORRECT


def test_q4_names_the_train_scored_top_run(lesson_aucs):
    honest = log_run("small-forest", params=LEAK_PARAMS, metrics={"AUC": lesson_aucs["test"]})
    leaked = log_run(lesson01.METRIC_RUN, params=LEAK_PARAMS, metrics={"AUC": lesson_aucs["train"]})
    # The reference search finds the leaked run first; the hint says why it is not the answer and what to do.
    best = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=1)
    assert best.loc[0, "run_id"] == leaked
    assert_incorrect(
        q4.result(leaked), "'ex3-auc'", f"{lesson_aucs['train']:.3f}", "training rows", "mlflow.delete_run", "Delete"
    )
    # Picking the best honest run is right, and the message still points at the leftover.
    result = q4.result(honest)
    assert result.outcome is Outcome.CORRECT
    assert "'ex3-auc'" in result.message and "mlflow.delete_run" in result.message
    # Once deleted, the same search finds the honest run, and the stale id is refused.
    mlflow.delete_run(leaked)
    best = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=1)
    assert best.loc[0, "run_id"] == honest
    assert q4.result(honest).message == f"The best run so far has AUC {lesson_aucs['test']:.3f}."
    assert_incorrect(q4.result(leaked), "deleted")


def test_q5_rejects_the_auc_of_the_training_rows(lesson_aucs):
    log_run(lesson01.MODEL_RUN, params=LEAK_PARAMS, metrics={"AUC": lesson_aucs["train"]}, artifacts=SPARK_MODEL)
    assert_incorrect(q5.result(), "training rows", "model.transform(test)")
    log_run(lesson01.MODEL_RUN, params=LEAK_PARAMS, metrics={"AUC": lesson_aucs["test"]}, artifacts=SPARK_MODEL)
    assert q5.result().outcome is Outcome.CORRECT


def test_q3_rejects_a_typed_in_auc_when_the_model_is_fully_described(lesson_aucs):
    typed_in = round(lesson_aucs["test"] + 0.05, 2)
    log_run(lesson01.METRIC_RUN, params={**LEAK_PARAMS, "seed": 42}, metrics={"AUC": typed_in})
    assert_incorrect(q3.result(), f"AUC {typed_in:.3f}", "seed=42", "typed-in", "model.transform(test)")
    # Another seed (the lesson's SEED parameter changed) cannot be re-scored here: nothing to hold against it.
    log_run(lesson01.METRIC_RUN, params={**LEAK_PARAMS, "seed": 7}, metrics={"AUC": typed_in})
    assert q3.result().outcome is Outcome.CORRECT


def test_q4_names_a_typed_in_top_run(lesson_aucs):
    honest = log_run("small-forest", params=LEAK_PARAMS, metrics={"AUC": lesson_aucs["test"]})
    typed_in = log_run(lesson01.METRIC_RUN, params={**LEAK_PARAMS, "seed": 42}, metrics={"AUC": 0.99})
    assert_incorrect(q4.result(typed_in), "'ex3-auc'", "0.990", "typed-in", "exercise 3 rejects it", "mlflow.delete_run")
    assert q4.result(honest).outcome is Outcome.CORRECT


def test_q5_rejects_a_typed_in_auc(lesson_aucs):
    log_run(lesson01.MODEL_RUN, params={**LEAK_PARAMS, "seed": 42}, metrics={"AUC": 0.9}, artifacts=SPARK_MODEL)
    assert_incorrect(q5.result(), "AUC 0.900", "typed-in")
