"""coursekit.tracking: where the store lives and how course experiments are created."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from coursekit import tracking
from coursekit.tracking import COURSE_NAME, COURSE_TAG, EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

NAME = "lesson-xx-test"


def test_configure_tracking_points_mlflow_at_the_course_store(mlflow_store):
    uri = f"sqlite:///{mlflow_store}/mlflow.db"
    assert tracking.configure_tracking() == uri
    assert mlflow.get_tracking_uri() == uri
    assert (mlflow_store / "mlflow.db").is_file()
    assert (mlflow_store / "artifacts").is_dir()


def test_ensure_experiment_creates_it_the_course_way(mlflow_store):
    experiment_id = tracking.ensure_experiment(NAME)
    experiment = MlflowClient().get_experiment(experiment_id)
    assert experiment.name == NAME
    assert experiment.lifecycle_stage == "active"
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"
    assert experiment.tags[COURSE_TAG] == COURSE_NAME
    assert experiment.artifact_location == (mlflow_store / "artifacts" / NAME).as_uri()


def test_runs_store_artifacts_under_the_course_data_dir(mlflow_store):
    tracking.ensure_experiment(NAME)
    mlflow.set_experiment(NAME)
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "notes/hello.txt")
    saved = mlflow_store / "artifacts" / NAME / run.info.run_id / "artifacts" / "notes" / "hello.txt"
    assert saved.read_text() == "hello"


def test_ensure_experiment_is_idempotent(mlflow_store):
    first = tracking.ensure_experiment(NAME)
    assert tracking.ensure_experiment(NAME) == first
    assert [e.experiment_id for e in MlflowClient().search_experiments(filter_string=f"name = '{NAME}'")] == [first]


def test_ensure_experiment_restores_a_deleted_one(mlflow_store):
    client = MlflowClient()
    first = tracking.ensure_experiment(NAME)
    client.delete_experiment(first)
    assert client.get_experiment(first).lifecycle_stage == "deleted"
    assert tracking.ensure_experiment(NAME) == first
    assert client.get_experiment(first).lifecycle_stage == "active"
    mlflow.set_experiment(NAME)  # would raise on a deleted experiment


def test_ensure_experiment_tags_an_experiment_created_elsewhere(mlflow_store):
    client = MlflowClient()
    made_by_hand = client.create_experiment(NAME)
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(made_by_hand).tags
    assert tracking.ensure_experiment(NAME) == made_by_hand
    assert client.get_experiment(made_by_hand).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_ensure_experiment_fixes_a_wrong_kind_tag(mlflow_store):
    client = MlflowClient()
    made_by_hand = client.create_experiment(NAME, tags={EXPERIMENT_KIND_TAG: "genai_development"})
    tracking.ensure_experiment(NAME)
    assert client.get_experiment(made_by_hand).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_ui_command_uses_the_course_store(mlflow_store):
    command = tracking.ui_command()
    assert command.startswith(f"mlflow ui --backend-store-uri sqlite:///{mlflow_store}/mlflow.db ")
    assert f"--default-artifact-root {(mlflow_store / 'artifacts').as_uri()}" in command
    assert command.endswith("--host 127.0.0.1 --port 5000")
