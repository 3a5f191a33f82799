"""coursekit.tracking: where the store lives and how course experiments are created."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import mlflow
import mlflow.telemetry
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


def test_ui_command_runs_the_course_interpreter_on_the_course_store(mlflow_store):
    command = shlex.split(tracking.ui_command())
    assert command[:3] == [sys.executable, "-m", "coursekit.ui"]
    assert Path(command[0]).is_absolute(), "a terminal's PATH has no .venv/bin: the interpreter is named in full"
    pairs = dict(zip(command[3::2], command[4::2]))
    assert pairs == {
        "--backend-store-uri": f"sqlite:///{mlflow_store}/mlflow.db",
        "--default-artifact-root": (mlflow_store / "artifacts").as_uri(),
    }


def test_ui_command_quotes_paths_with_spaces(mlflow_store, tmp_path, monkeypatch):
    spaced = tmp_path / "my course"
    monkeypatch.setenv("COURSE_DATA_DIR", str(spaced))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{spaced}/mlflow.db")
    command = shlex.split(tracking.ui_command())
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{spaced}/mlflow.db"


def test_telemetry_off_defaults_the_switch_and_keeps_an_opt_in():
    assert tracking.telemetry_off({"PATH": "/bin"}) == {"PATH": "/bin", "MLFLOW_DISABLE_TELEMETRY": "true"}
    assert tracking.telemetry_off({"MLFLOW_DISABLE_TELEMETRY": "false"}) == {"MLFLOW_DISABLE_TELEMETRY": "false"}
    assert tracking.telemetry_off()["MLFLOW_DISABLE_TELEMETRY"] == os.environ["MLFLOW_DISABLE_TELEMETRY"]


def test_importing_the_gateway_switches_telemetry_off():
    # set before `import mlflow` in coursekit.tracking; nothing in the test run had set it otherwise
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_disable_telemetry_drops_a_client_made_before(monkeypatch):
    from mlflow.telemetry import client as telemetry_client

    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY")
    # As `import mlflow` leaves it when telemetry was on at import time (put back afterwards by monkeypatch).
    monkeypatch.setattr(telemetry_client, "_MLFLOW_TELEMETRY_CLIENT", telemetry_client.TelemetryClient())
    assert mlflow.telemetry.get_telemetry_client() is not None
    assert tracking.disable_telemetry() is True
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert mlflow.telemetry.get_telemetry_client() is None


def test_disable_telemetry_respects_an_opt_in(monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    assert tracking.disable_telemetry() is False
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"


def test_configure_tracking_switches_telemetry_off(mlflow_store, monkeypatch):
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY")
    tracking.configure_tracking()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_a_learners_experiment_carries_their_name(mlflow_store, monkeypatch):
    monkeypatch.setenv("COURSE_LEARNER", "ada")
    experiment_id = tracking.ensure_experiment("ada-lesson-xx")
    experiment = MlflowClient().get_experiment(experiment_id)
    assert experiment.tags[tracking.LEARNER_TAG] == "ada"
    assert experiment.artifact_location == (mlflow_store / "artifacts" / "ada-lesson-xx").as_uri()  # a private store


def test_require_server_accepts_a_server_that_answers(health_server):
    tracking.require_server(health_server)


def test_an_unreachable_server_is_one_line_with_the_fix():
    import pytest

    from coursekit.errors import TrackingServerError

    with pytest.raises(TrackingServerError) as caught:
        tracking.require_server("http://127.0.0.1:9", timeout=2)
    assert str(caught.value) == (
        "The tracking server http://127.0.0.1:9 does not answer: check the address with your instructor, "
        "or unset MLFLOW_TRACKING_URI to work on your own store."
    )


def test_the_setup_cell_links_a_servers_ui_and_prints_the_command_for_a_private_store(mlflow_store, monkeypatch):
    from coursekit.settings import load_settings

    local = tracking.ui_hint(load_settings(), "lesson-xx", "3")
    assert "paste this into a terminal" in local and tracking.ui_command() in local
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://10.1.2.3:5055/")
    remote = tracking.ui_hint(load_settings(), "ada-lesson-xx", "3")
    assert remote == (
        "MLflow UI:    the tracking server's page for ada-lesson-xx:\n"
        "              http://10.1.2.3:5055/#/experiments/3/runs?workflowType=machine_learning"
    )


# --- Databricks: registry, workspace folder, Unity Catalog volume ----------------------------------------------

import dataclasses  # noqa: E402

import pytest  # noqa: E402

from coursekit.errors import CourseSetupError  # noqa: E402
from coursekit.settings import load_settings  # noqa: E402


class _FakeWorkspace:
    """``databricks.sdk.WorkspaceClient`` as far as the course uses it: ``workspace.mkdirs``."""

    made: list[str] = []
    fail: Exception | None = None

    def __init__(self) -> None:
        self.workspace = self

    def mkdirs(self, path: str) -> None:
        if self.fail:
            raise self.fail
        self.made.append(path)


@pytest.fixture
def fake_sdk(monkeypatch):
    import databricks.sdk

    _FakeWorkspace.made, _FakeWorkspace.fail = [], None
    monkeypatch.setattr(databricks.sdk, "WorkspaceClient", _FakeWorkspace)
    return _FakeWorkspace


def test_configure_tracking_sets_the_registry_uri_when_there_is_one(mlflow_store, monkeypatch, registry_restored):
    settings = dataclasses.replace(load_settings(), registry_uri=f"sqlite:///{mlflow_store}/registry.db")
    tracking.configure_tracking(settings)
    assert mlflow.get_registry_uri() == settings.registry_uri


def test_on_databricks_the_experiment_folder_is_made_first_and_no_artifact_location_is_set(mlflow_store, fake_sdk):
    settings = dataclasses.replace(load_settings(), databricks=True)
    name = "/Users/ada@example.com/mlflow-course/lesson-xx"
    experiment_id = tracking.ensure_experiment(name, settings)
    assert fake_sdk.made == ["/Users/ada@example.com/mlflow-course"]
    experiment = MlflowClient().get_experiment(experiment_id)
    assert experiment.name == name
    assert not experiment.artifact_location.startswith(f"file://{mlflow_store}"), "the workspace decides"
    tracking.ensure_experiment(name, settings)
    assert fake_sdk.made == ["/Users/ada@example.com/mlflow-course"], "an existing experiment needs no folder"


def test_a_folder_the_workspace_refuses_is_one_line_with_the_fix(mlflow_store, fake_sdk):
    fake_sdk.fail = PermissionError("PERMISSION_DENIED: no write access\nsecond line of detail")
    settings = dataclasses.replace(load_settings(), databricks=True)
    with pytest.raises(CourseSetupError) as caught:
        tracking.ensure_experiment("/Users/ada@example.com/mlflow-course/lesson-xx", settings)
    message = str(caught.value)
    assert message.startswith("Could not create the workspace folder /Users/ada@example.com/mlflow-course (PermissionError")
    assert message.endswith("create it in the Workspace browser (Create > Folder) and run the cell again.")


class _SqlRecorder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.queries: list[str] = []
        self.fail = fail

    def sql(self, query: str) -> None:
        self.queries.append(query)
        if self.fail:
            raise self.fail


def _databricks_settings(**changes):
    return dataclasses.replace(load_settings(), databricks=True, **changes)


def test_the_course_volume_is_created_and_becomes_mlflow_dfs_tmp(mlflow_store):
    spark, env = _SqlRecorder(), {}
    line = tracking.use_dfs_tmp(_databricks_settings(catalog="main", schema="ml"), spark, env)
    assert spark.queries == ["CREATE VOLUME IF NOT EXISTS `main`.`ml`.`mlflow_course`"]
    assert env == {"MLFLOW_DFS_TMP": "/Volumes/main/ml/mlflow_course"}
    assert line == "Spark models: MLFLOW_DFS_TMP=/Volumes/main/ml/mlflow_course (Unity Catalog volume, created)"


def test_an_mlflow_dfs_tmp_the_learner_set_is_kept(mlflow_store):
    spark, env = _SqlRecorder(), {"MLFLOW_DFS_TMP": "/Volumes/main/ada/scratch"}
    line = tracking.use_dfs_tmp(_databricks_settings(), spark, env)
    assert spark.queries == [] and env == {"MLFLOW_DFS_TMP": "/Volumes/main/ada/scratch"}
    assert line == "Spark models: MLFLOW_DFS_TMP=/Volumes/main/ada/scratch (from your environment)"


def test_an_existing_volume_is_not_created_again(mlflow_store, monkeypatch):
    settings = _databricks_settings()
    monkeypatch.setattr(tracking.Path, "is_dir", lambda self: str(self) == "/Volumes/workspace/default/mlflow_course")
    spark, env = _SqlRecorder(), {}
    line = tracking.use_dfs_tmp(settings, spark, env)
    assert spark.queries == [] and line.endswith("(Unity Catalog volume, exists)")


def test_a_volume_that_cannot_be_created_is_one_line_with_the_fix(mlflow_store):
    spark = _SqlRecorder(fail=RuntimeError("[PERMISSION_DENIED] User does not have CREATE VOLUME on Schema"))
    with pytest.raises(CourseSetupError, match=r"^Could not create the volume workspace\.default\.mlflow_course "
                                               r"\(RuntimeError\): pick a catalog and schema you may write to"):
        tracking.use_dfs_tmp(_databricks_settings(), spark, {})


def test_on_databricks_the_setup_cell_points_at_the_built_in_ui(mlflow_store):
    hint = tracking.ui_hint(_databricks_settings(), "/Users/ada@example.com/mlflow-course/lesson-01-first-run", "7")
    assert "coursekit.ui" not in hint and "http" not in hint
    assert hint.endswith("/Users/ada@example.com/mlflow-course/lesson-01-first-run")
