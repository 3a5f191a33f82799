"""Shared verdicts, against runs in a real throw-away store."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from coursekit.exercises import verdicts
from coursekit.exercises.checks import Outcome
from coursekit.exercises.verdicts import missing_run, same_param, scored_on_wrong_rows, unfinished_run


def _run_with_status(status: str | None) -> mlflow.entities.Run:
    mlflow.set_experiment("verdicts")
    run = mlflow.start_run(run_name="attempt")
    if status is not None:
        mlflow.end_run(status)
    return MlflowClient().get_run(run.info.run_id)


def test_missing_run_is_not_attempted_and_names_the_run_and_experiment() -> None:
    result = missing_run("lesson-01-first-run", "ex1-params")
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "'ex1-params'" in result.message
    assert "'lesson-01-first-run'" in result.message
    assert 'mlflow.start_run(run_name="ex1-params")' in result.message


def test_finished_run_has_no_verdict(mlflow_store) -> None:
    assert unfinished_run(_run_with_status("FINISHED")) is None


def test_running_run_says_how_to_end_it(mlflow_store) -> None:
    result = unfinished_run(_run_with_status(None))
    assert result is not None and result.outcome is Outcome.INCORRECT
    assert "still RUNNING" in result.message and "mlflow.end_run()" in result.message


@pytest.mark.parametrize("status", ["FAILED", "KILLED"])
def test_failed_or_killed_run_names_its_status(mlflow_store, status: str) -> None:
    result = unfinished_run(_run_with_status(status))
    assert result is not None and result.outcome is Outcome.INCORRECT
    assert f"ended as {status}, not FINISHED" in result.message


@pytest.mark.parametrize(
    ("given", "stored", "same"),
    [
        (5, "5", True), (5.0, "5", True), ("5", "5", True), (0.8, "0.8", True),
        ("sqrt", "sqrt", True), ("SQRT", "sqrt", False), (6, "5", False), (5, None, False), ("auto", "5", False),
    ],
)
def test_same_param_compares_numbers_as_numbers_and_text_exactly(given: object, stored: str | None, same: bool) -> None:
    assert same_param(given, stored) is same


def _run_with(params: dict[str, object], auc: float) -> mlflow.entities.Run:
    mlflow.set_experiment("verdicts")
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        mlflow.log_metric("AUC", auc)
    return MlflowClient().get_run(run.info.run_id)


@pytest.mark.parametrize("params", [{}, {"numTrees": 20}, {"numTrees": "twenty", "maxDepth": 5}])
def test_wrong_rows_needs_the_forest_params(mlflow_store, params: dict[str, object]) -> None:
    assert scored_on_wrong_rows(_run_with(params, 0.95)) is None


def test_wrong_rows_never_starts_spark(mlflow_store, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyspark.sql import SparkSession

    monkeypatch.setattr(verdicts, "_RESCORED", {})
    monkeypatch.setattr(SparkSession, "getActiveSession", classmethod(lambda cls: None))
    monkeypatch.setattr(verdicts, "_rescore", lambda *args: pytest.fail("re-scored without a Spark session"))
    assert scored_on_wrong_rows(_run_with({"numTrees": 20, "maxDepth": 5}, 0.95)) is None


def test_not_a_result_names_deleted_and_unfinished_runs(mlflow_store) -> None:
    assert verdicts.not_a_result(_run_with_status("FINISHED")) is None
    failed = _run_with_status("FAILED")
    result = verdicts.not_a_result(failed)
    assert result is not None and "FAILED, not FINISHED" in result.message and "mlflow.delete_run" in result.message
    mlflow.delete_run(failed.info.run_id)
    result = verdicts.not_a_result(MlflowClient().get_run(failed.info.run_id))
    assert result is not None and "was deleted" in result.message


def test_still_blank_names_the_first_blank_key_or_value() -> None:
    assert verdicts.still_blank({"env": "dev"}) is None
    result = verdicts.still_blank({"user": "____", "env": "dev"}, "Tag")
    assert result.outcome is Outcome.NOT_ATTEMPTED and result.message.startswith("Tag 'user' is still the blank ____")
    assert "'____' is still the blank" in verdicts.still_blank({"____": "dev"}).message


@pytest.mark.parametrize("answer", [None, ..., verdicts.BLANK])
def test_a_blank_run_id_is_not_attempted(answer) -> None:
    result = verdicts.run_id_problem(answer, "best_run_id", "set it.", "take one.")
    assert result.outcome is Outcome.NOT_ATTEMPTED and result.message == "best_run_id is still blank: set it."


def test_a_run_id_that_is_not_a_string_is_incorrect() -> None:
    result = verdicts.run_id_problem(42, "best_run_id", "set it.", "take one from the run_id column.")
    assert result.outcome is Outcome.INCORRECT
    assert result.message == "best_run_id is a int, not a string: take one from the run_id column."
    assert verdicts.run_id_problem("abc", "best_run_id", "set it.", "take one.") is None


def test_run_in_finds_the_run_or_says_why_not(mlflow_store) -> None:
    run = _run_with_status("FINISHED")
    assert verdicts.run_in("verdicts", run.info.run_id, "search there.").info.run_id == run.info.run_id
    assert "No run has the id 'nope'" in verdicts.run_in("verdicts", "nope", "search there.").message
    mlflow.set_experiment("elsewhere")
    other = verdicts.run_in("elsewhere", run.info.run_id, "search only 'elsewhere'.")
    assert other.outcome is Outcome.INCORRECT and other.message == "That run belongs to another experiment: search only 'elsewhere'."
