"""Lesson 5 checks against a real (temporary) MLflow store, one section per exercise.

Spark is not started: tuning attempts are faked with the MLflow API exactly as
``Tuner.train_and_log`` records them (tags source/attempt, the six settings as string
params, metric AUC), and q3's model folder with ``mlflow.log_text``. Each section covers
the reference answer, nothing done yet, and the typical mistakes, named by their message.
"""

from __future__ import annotations

import mlflow
import pytest
from store_helpers import assert_incorrect, assert_not_attempted, log_run

from coursekit import BLANK, Outcome
from coursekit.exercises import lesson05
from coursekit.exercises.lesson05 import EXPERIMENT, SETTINGS, TARGET_AUC, q1, q2, q3

pytestmark = pytest.mark.usefixtures("lesson_experiment")

SHALLOW = {"numTrees": "60", "maxDepth": "3", "featureSubsetStrategy": "sqrt", "impurity": "gini",
           "subsamplingRate": "1.0", "minInstancesPerNode": "1"}
DEEP = {**SHALLOW, "numTrees": "20", "maxDepth": "12", "featureSubsetStrategy": "auto"}
SPARK_MODEL = ("rf_model/MLmodel", "rf_model/sparkml/metadata/part-00000")
NOT_SPARK_MODEL = ("rf_model/MLmodel", "rf_model/model.pkl")


def attempt(number, auc, settings=SHALLOW, *, status="FINISHED", model=()):
    """A tuning attempt as the panel logs it."""
    return log_run(
        f"try-{number:02d}",
        params={"model_type": "RandomForest", **settings, "seed": "42"},
        tags={"source": "tuning-panel", "attempt": str(number), "duration_s": "1.20"},
        metrics={"AUC": auc, "average_precision": auc - 0.1, "accuracy": 0.75, "f1": 0.6},
        artifacts=model,
        status=status,
    )


def best_from_the_store():
    """The reference solution of exercise 2."""
    best = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string="tags.source = 'tuning-panel' and attributes.status = 'FINISHED'",
        order_by=["metrics.AUC DESC"],
        max_results=1,
    )
    return {name: best.loc[0, f"params.{name}"] for name in SETTINGS}


def test_settings_are_the_six_forest_settings():
    assert SETTINGS == ("numTrees", "maxDepth", "featureSubsetStrategy", "impurity", "subsamplingRate",
                        "minInstancesPerNode")


def test_fresh_store_is_not_attempted_everywhere():
    for result in (q1.result("0" * 32), q2.result(dict(SHALLOW)), q3.result()):
        assert_not_attempted(result, "No tuning attempt", EXPERIMENT, "Train & log")


def test_attempts_are_finished_tuning_runs_best_first():
    worse = attempt(1, 0.80, DEEP)
    best = attempt(2, 0.86)
    attempt(3, 0.95, status="FAILED")
    log_run("by-hand", params=SHALLOW, metrics={"AUC": 0.97})
    assert [r.info.run_id for r in lesson05.attempts()] == [best, worse]


def test_check_prints_the_verdict(capsys):
    q1.check(attempt(1, 0.86))
    assert capsys.readouterr().out.startswith(f"✅ Correct — q1: Beat AUC {TARGET_AUC}.")


# --- q1: beat the target ----------------------------------------------------------------------------


def test_q1_correct():
    attempt(1, 0.80, DEEP)
    winner = attempt(2, 0.86)
    result = q1.result(winner)
    assert result.outcome is Outcome.CORRECT
    assert "0.860" in result.message and "0.84" in result.message


@pytest.mark.parametrize("answer", [BLANK, None, ...])
def test_q1_blank_is_not_attempted(answer):
    attempt(1, 0.86)
    assert_not_attempted(q1.result(answer), "winning_run_id", "blank")


def test_q1_at_the_target_is_not_above_it():
    best = attempt(1, 0.85)
    at_target = attempt(2, TARGET_AUC, DEEP)
    assert_incorrect(q1.result(at_target), "AUC 0.840", "not above 0.84", "your best so far: 0.850")
    assert q1.result(best).correct


def test_q1_below_the_target():
    low = attempt(1, 0.79)
    assert_incorrect(q1.result(low), "AUC 0.790", "not above 0.84", "Keep trying")


def test_q1_run_that_is_not_an_attempt():
    attempt(1, 0.80)
    by_hand = log_run("by-hand", params=SHALLOW, metrics={"AUC": 0.97})
    assert_incorrect(q1.result(by_hand), "not a finished tuning attempt", "tuner.leaderboard()")


def test_q1_failed_or_running_attempt():
    attempt(1, 0.80)
    failed = attempt(2, 0.95, status="FAILED")
    running = attempt(3, 0.95, status=None)  # still RUNNING while q1 looks
    assert_incorrect(q1.result(failed), "not a finished tuning attempt")
    assert_incorrect(q1.result(running), "not a finished tuning attempt")
    mlflow.end_run()


def test_q1_attempt_of_another_experiment():
    attempt(1, 0.80)
    mlflow.set_experiment("lesson-05-scratch")
    elsewhere = attempt(1, 0.95)
    assert_incorrect(q1.result(elsewhere), "not a finished tuning attempt")


@pytest.mark.parametrize("made_up", ["0" * 32, "", "try-01"])
def test_q1_made_up_id(made_up):
    attempt(1, 0.86)
    assert_incorrect(q1.result(made_up), "not a finished tuning attempt")


def test_q1_not_a_string():
    from coursekit.tuning import AttemptResult

    winner = attempt(1, 0.86)
    frame = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=1)
    whole_attempt = AttemptResult(winner, "try-01", 1, {"AUC": 0.86}, 1.2)
    for answer, type_name in [(whole_attempt, "AttemptResult"), (frame, "DataFrame"), (frame["run_id"], "Series"),
                              (42, "int")]:
        assert_incorrect(q1.result(answer), f"is a {type_name}", "run_id string")


# --- q2: best settings from the store ------------------------------------------------------------------


def test_q2_correct_with_the_reference_solution():
    attempt(1, 0.80, DEEP)
    attempt(2, 0.86)
    attempt(3, 0.83, {**SHALLOW, "impurity": "entropy"})
    attempt(4, 0.99, DEEP, status="FAILED")  # better, but it never finished
    best_params = best_from_the_store()
    assert best_params == SHALLOW
    result = q2.result(best_params)
    assert result.outcome is Outcome.CORRECT
    assert "0.860" in result.message


def test_q2_accepts_numbers_instead_of_strings():
    attempt(1, 0.86)
    as_numbers = {"numTrees": 60, "maxDepth": 3, "featureSubsetStrategy": "sqrt", "impurity": "gini",
                  "subsamplingRate": 1, "minInstancesPerNode": 1}
    assert q2.result(as_numbers).correct


def test_q2_accepts_the_params_prefix_of_search_runs():
    attempt(1, 0.86)
    assert q2.result({f"params.{name}": value for name, value in SHALLOW.items()}).correct


def test_q2_accepts_either_of_two_tied_best_attempts():
    attempt(1, 0.86)
    attempt(2, 0.86, DEEP)
    attempt(3, 0.80, {**SHALLOW, "minInstancesPerNode": "5"})
    assert q2.result(dict(SHALLOW)).correct
    assert q2.result(dict(DEEP)).correct


@pytest.mark.parametrize("answer", [BLANK, None, ...])
def test_q2_blank_is_not_attempted(answer):
    attempt(1, 0.86)
    assert_not_attempted(q2.result(answer), "best_params", "blank")


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda: mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"]).iloc[0],
         ["best_params is a Series", "make it a dict"]),
        (lambda: mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=1),
         ["best_params is a DataFrame", "dict"]),
        (lambda: list(SHALLOW.values()), ["best_params is a list", "dict"]),
        (lambda: "numTrees=60, maxDepth=3", ["best_params is a str", "dict"]),
    ],
)
def test_q2_not_a_dict(answer, words):
    attempt(1, 0.86)
    assert_incorrect(q2.result(answer()), *words)


@pytest.mark.parametrize("left_out", ["impurity", "minInstancesPerNode", "subsamplingRate"])
def test_q2_missing_setting(left_out):
    attempt(1, 0.86)
    answer = {name: value for name, value in SHALLOW.items() if name != left_out}
    assert_incorrect(q2.result(answer), f"best_params has no {left_out!r}", "all six settings")


def test_q2_settings_of_a_worse_attempt():
    attempt(1, 0.80, DEEP)
    attempt(2, 0.86)
    assert_incorrect(
        q2.result(dict(DEEP)), "numTrees is '20'", "the best attempt used '60'", "order by metrics.AUC DESC"
    )


def test_q2_one_setting_off():
    attempt(1, 0.86)
    answer = {**SHALLOW, "featureSubsetStrategy": "log2"}
    assert_incorrect(q2.result(answer), "featureSubsetStrategy is 'log2'", "'sqrt'")


def test_q2_settings_of_the_better_failed_attempt():
    attempt(1, 0.86)
    attempt(2, 0.95, DEEP, status="FAILED")
    assert_incorrect(q2.result(dict(DEEP)), "the best attempt used")


def test_q2_without_attempts_is_not_attempted_even_with_a_dict():
    log_run("by-hand", params=SHALLOW, metrics={"AUC": 0.9})
    assert_not_attempted(q2.result(dict(SHALLOW)), "No tuning attempt")


# --- q3: the best attempt's model ------------------------------------------------------------------


def test_q3_correct():
    attempt(1, 0.80, DEEP)
    attempt(2, 0.86, model=SPARK_MODEL)
    result = q3.result()
    assert result.outcome is Outcome.CORRECT
    assert "best attempt" in result.message


def test_q3_model_on_one_of_two_tied_best_attempts():
    attempt(1, 0.86)
    attempt(2, 0.86, DEEP, model=SPARK_MODEL)
    assert q3.result().correct


def test_q3_no_model_yet():
    attempt(1, 0.86)
    attempt(2, 0.80, DEEP)
    assert_not_attempted(q3.result(), "No attempt has a logged model yet", "Log model for the best attempt")


def test_q3_model_of_a_worse_attempt():
    attempt(1, 0.80, DEEP, model=SPARK_MODEL)
    attempt(2, 0.86)  # a better attempt made after the model was logged
    assert_incorrect(q3.result(), "AUC 0.800", "now has 0.860", "log the model of the current best")


def test_q3_model_that_is_not_spark():
    attempt(1, 0.80, DEEP)
    attempt(2, 0.86, model=NOT_SPARK_MODEL)
    assert_incorrect(q3.result(), "not a Spark model", "mlflow.spark.log_model")


def test_q3_model_only_on_a_failed_attempt():
    attempt(1, 0.86)
    attempt(2, 0.95, DEEP, status="FAILED", model=SPARK_MODEL)
    assert_not_attempted(q3.result(), "No attempt has a logged model yet")


def test_q3_model_in_a_run_that_is_not_an_attempt():
    attempt(1, 0.86)
    log_run("by-hand", params=SHALLOW, metrics={"AUC": 0.86}, artifacts=SPARK_MODEL)
    assert_not_attempted(q3.result(), "No attempt has a logged model yet")


def test_hints_and_solutions_print(capsys):
    for exercise in (q1, q2, q3):
        exercise.hint()
        exercise.solution()
    out = capsys.readouterr().out
    assert out.count("💡") == 3 and out.count("📖") == 3
    assert "panel.log_best_model()" in out
