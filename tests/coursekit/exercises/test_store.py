"""coursekit.exercises.store: the read-only questions the checks ask of the MLflow store."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from coursekit import tracking
from coursekit.exercises import store

NAME = "store-test"


@pytest.fixture
def experiment_id(mlflow_store) -> str:
    experiment_id = tracking.ensure_experiment(NAME)
    mlflow.set_experiment(NAME)
    return experiment_id


def make_run(experiment_id, run_name, start_time, auc=None):
    client = MlflowClient()
    run = client.create_run(experiment_id, start_time=start_time, run_name=run_name)
    if auc is not None:
        client.log_metric(run.info.run_id, "AUC", auc)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_find_latest_run_picks_the_most_recent_of_same_named_runs(experiment_id):
    older = make_run(experiment_id, "ex1-params", start_time=1_000)
    newer = make_run(experiment_id, "ex1-params", start_time=2_000)
    make_run(experiment_id, "other", start_time=3_000)
    assert store.find_latest_run(NAME, "ex1-params").info.run_id == newer
    assert older != newer


def test_find_latest_run_does_not_depend_on_creation_order(experiment_id):
    newer = make_run(experiment_id, "ex1-params", start_time=2_000)
    make_run(experiment_id, "ex1-params", start_time=1_000)
    assert store.find_latest_run(NAME, "ex1-params").info.run_id == newer


def test_find_latest_run_returns_none_when_absent(experiment_id):
    assert store.find_latest_run(NAME, "never-ran") is None
    assert store.find_latest_run("no-such-experiment", "ex1-params") is None


def test_best_run_by_metric(experiment_id):
    make_run(experiment_id, "a", 1_000, auc=0.70)
    best = make_run(experiment_id, "b", 2_000, auc=0.91)
    make_run(experiment_id, "c", 3_000, auc=0.85)
    make_run(experiment_id, "no-metric", 4_000)
    found = store.best_run_by_metric(NAME, "AUC")
    assert found.info.run_id == best
    assert found.data.metrics["AUC"] == pytest.approx(0.91)


def test_best_run_by_metric_none_without_metric_or_experiment(experiment_id):
    make_run(experiment_id, "no-metric", 1_000)
    assert store.best_run_by_metric(NAME, "AUC") is None
    assert store.best_run_by_metric("no-such-experiment", "AUC") is None


def test_user_tags_hides_mlflow_system_tags(experiment_id):
    with mlflow.start_run(run_name="tagged") as run:
        mlflow.set_tags({"env": "dev", "user": "ada"})
    fetched = mlflow.get_run(run.info.run_id)
    assert "mlflow.runName" in fetched.data.tags  # MLflow's own tags are there...
    assert store.user_tags(fetched) == {"env": "dev", "user": "ada"}  # ...but not shown


def test_artifact_paths_lists_files_recursively(experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_text("a", "rf_model/MLmodel")
        mlflow.log_text("b", "rf_model/sparkml/metadata/part-00000")
        mlflow.log_text("c", "top.txt")
    run_id = run.info.run_id
    assert sorted(store.artifact_paths(run_id)) == [
        "rf_model/MLmodel", "rf_model/sparkml/metadata/part-00000", "top.txt"]
    assert store.artifact_paths(run_id, path="rf_model/sparkml") == ["rf_model/sparkml/metadata/part-00000"]


@pytest.mark.parametrize(
    ("wanted", "present", "similar"),
    [
        ("model_type", ["modeltype", "ModelType", "model-type", "model_type", "numTrees"],
         ["ModelType", "model-type", "modeltype"]),
        ("AUC", {"auc": 0.8, "AUC": 0.9, "f1": 0.7}, ["auc"]),
        ("AUC", {"a.u.c", "Auc"}, ["Auc", "a.u.c"]),
        ("numTrees", {"numTrees", "maxDepth"}, []),
        ("env", [], []),
    ],
)
def test_similar_keys(wanted, present, similar):
    assert store.similar_keys(wanted, present) == similar


@pytest.mark.parametrize("name", ["ada's run", 'the "best" run', "both ' and \" quotes"])
def test_find_latest_run_handles_quotes_in_run_names(experiment_id, name):
    wanted = make_run(experiment_id, name, start_time=1_000)
    make_run(experiment_id, "plain", start_time=2_000)
    assert store.find_latest_run(NAME, name).info.run_id == wanted


def test_experiment_runs_searches_one_experiment_by_name(experiment_id):
    first = make_run(experiment_id, "a", 1_000, auc=0.7)
    make_run(experiment_id, "b", 2_000)
    found = store.experiment_runs(NAME, filter_string="metrics.AUC >= 0")
    assert [r.info.run_id for r in found] == [first]
    assert store.experiment_runs("no-such-experiment") == []


def test_in_experiment(experiment_id):
    run = MlflowClient().get_run(make_run(experiment_id, "a", 1_000))
    assert store.in_experiment(run, NAME)
    assert not store.in_experiment(run, "no-such-experiment")
