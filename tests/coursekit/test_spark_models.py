"""The Spark flavour gateway: mlflow.spark itself on classic Spark, the stand-in over Spark Connect.

The stand-in's real round trip (save over Connect, log, register, load by ``runs:/`` and ``models:/``) runs in
``tests/test_mode_connect.py`` against a real Connect server; here it runs against fakes of a Connect model.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import mlflow.spark
import pytest
import yaml

from coursekit import spark_models
from coursekit.spark_models import CONNECT_PREFIX, ConnectSparkFlavor, is_connect, spark_flavor, unsupported_line


class FakeConnectSession:
    """Looks like pyspark.sql.connect.session.SparkSession to is_connect."""


FakeConnectSession.__module__ = "pyspark.sql.connect.session"


class ClassicSession:
    """Any session whose class is not from pyspark.sql.connect."""


def test_classic_spark_gets_mlflow_spark_itself() -> None:
    assert spark_flavor(ClassicSession()) is mlflow.spark  # type: ignore[arg-type]
    assert not is_connect(ClassicSession())  # type: ignore[arg-type]


def test_connect_gets_the_stand_in_once_per_process() -> None:
    assert is_connect(FakeConnectSession())  # type: ignore[arg-type]
    flavor = spark_flavor(FakeConnectSession())  # type: ignore[arg-type]
    assert isinstance(flavor, ConnectSparkFlavor)
    assert spark_flavor(FakeConnectSession()) is flavor  # type: ignore[arg-type]


def test_databricks_connect_is_left_to_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "client.1")
    assert spark_flavor(FakeConnectSession()) is mlflow.spark  # type: ignore[arg-type]


def test_unsupported_line_is_one_line_naming_the_version() -> None:
    line = unsupported_line("loading a Spark model with mlflow.pyfunc")
    assert line.startswith(CONNECT_PREFIX) and "\n" not in line and mlflow.__version__ in line


class FakeWriter:
    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def overwrite(self) -> FakeWriter:
        return self

    def save(self, path: str) -> None:  # what the Connect server does on a shared disk
        Path(path, "metadata").mkdir(parents=True)
        for name, text in self.files.items():
            Path(path, "metadata", name).write_text(text)


class FakePipelineModel:
    """Stands for a Connect-fitted PipelineModel: only write() is used when saving."""

    def __init__(self) -> None:
        self.stages: list[Any] = []

    def write(self) -> FakeWriter:
        return FakeWriter({"part-0": "{}"})


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ConnectSparkFlavor:
    import pyspark.ml

    monkeypatch.setattr(pyspark.ml, "PipelineModel", FakePipelineModel)
    loaded: list[str] = []
    monkeypatch.setattr(FakePipelineModel, "load", staticmethod(lambda path: loaded.append(path) or SimpleNamespace(path=path)),
                        raising=False)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # Its own artifact folder: a new experiment's default is ./mlruns, in the repository the tests run from.
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("standin", artifact_location=(tmp_path / "artifacts").as_uri()))
    return ConnectSparkFlavor(scratch=tmp_path / "scratch")


def test_log_model_logs_sparkml_and_a_spark_only_mlmodel_then_registers(
        standin: ConnectSparkFlavor, capsys: pytest.CaptureFixture[str]) -> None:
    with mlflow.start_run() as run:
        info = standin.log_model(FakePipelineModel(), "rf_model", pip_requirements=["x==1"], registered_model_name="m")
        standin.log_model(FakePipelineModel(), "again")
    said = capsys.readouterr().out.splitlines()
    assert len([line for line in said if line.startswith(CONNECT_PREFIX)]) == 1
    assert "cannot log a Connect-fitted pyspark.ml model" in said[0] and "not recorded: pip_requirements" in said[0]
    assert (info.run_id, info.artifact_path, info.model_uri) == (run.info.run_id, "rf_model", f"runs:/{run.info.run_id}/rf_model")
    assert info.registered_model_version == 1 and info.model_id is None
    files = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "rf_model")}
    assert files == {"rf_model/MLmodel", "rf_model/sparkml"}
    mlmodel = yaml.safe_load(mlflow.artifacts.load_text(f"{info.model_uri}/MLmodel"))
    assert set(mlmodel["flavors"]) == {"spark"}
    assert mlmodel["flavors"]["spark"]["model_data"] == "sparkml"
    assert not list((standin.scratch).iterdir())  # the saved copy is gone once logged


def test_load_model_reads_the_downloaded_sparkml_folder(standin: ConnectSparkFlavor) -> None:
    with mlflow.start_run():
        info = standin.log_model(FakePipelineModel(), "rf_model", registered_model_name="m")
    for uri in (info.model_uri, "models:/m/1"):
        model = standin.load_model(uri)
        assert Path(model.path).name == "sparkml" and (Path(model.path) / "metadata" / "part-0").is_file()


def test_save_model_refuses_a_folder_with_files(standin: ConnectSparkFlavor, tmp_path: Path) -> None:
    standin.save_model(FakePipelineModel(), tmp_path / "saved")
    assert {p.name for p in (tmp_path / "saved").iterdir()} == {"MLmodel", "sparkml"}
    with pytest.raises(FileExistsError):
        standin.save_model(FakePipelineModel(), tmp_path / "saved")


def test_a_server_that_does_not_share_the_disk_is_one_clear_error(standin: ConnectSparkFlavor) -> None:
    class Elsewhere(FakePipelineModel):
        def write(self) -> Any:
            return SimpleNamespace(overwrite=lambda: SimpleNamespace(save=lambda path: None))

    with mlflow.start_run(), pytest.raises(FileNotFoundError, match="shared disk"):
        standin.log_model(Elsewhere(), "rf_model")


def test_activate_leaves_classic_sessions_alone() -> None:
    spark_models.activate(ClassicSession())  # type: ignore[arg-type]


def test_activate_makes_a_databricks_serverless_session_active_in_a_worker_thread(monkeypatch) -> None:
    """Serverless sessions are Connect sessions: the tuning panel's worker thread needs them active there too."""
    made_active = []

    class ServerlessSession(FakeConnectSession):
        @classmethod
        def getActiveSession(cls):  # noqa: N802 - PySpark's name
            return None

        @classmethod
        def _set_default_and_active_session(cls, session):
            made_active.append(session)

    ServerlessSession.__module__ = "pyspark.sql.connect.session"
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "client.4.9")
    session = ServerlessSession()
    assert not is_connect(session), "MLflow logs Databricks' Connect models itself: no stand-in"
    spark_models.activate(session)  # type: ignore[arg-type]
    assert made_active == [session]


class SessionWithoutSparkContext:
    """What MLflow's allowlist reader meets over Spark Connect: ``sparkContext`` raises."""

    @property
    def sparkContext(self) -> Any:  # noqa: N802 - PySpark's name
        from pyspark.errors import PySparkAttributeError

        raise PySparkAttributeError(errorClass="JVM_ATTRIBUTE_NOT_SUPPORTED", messageParameters={"attr_name": "sparkContext"})


def test_autolog_over_connect_falls_back_to_mlflows_builtin_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.pyspark.ml as autolog_module
    import mlflow.utils._spark_utils as spark_utils

    monkeypatch.setattr(autolog_module, "_read_log_model_allowlist", autolog_module._read_log_model_allowlist)
    builtin = autolog_module._read_log_model_allowlist()  # no session in this process: MLflow's own default
    assert "pyspark.ml.classification.RandomForestClassificationModel" in builtin
    monkeypatch.setattr(spark_utils, "_get_active_spark_session", lambda: SessionWithoutSparkContext())
    from pyspark.errors import PySparkAttributeError

    with pytest.raises(PySparkAttributeError, match="JVM_ATTRIBUTE_NOT_SUPPORTED"):
        autolog_module._read_log_model_allowlist()  # what autolog() hits over Connect without the kit
    spark_models.allow_autolog_over_connect()
    spark_models.allow_autolog_over_connect()  # idempotent: wraps once
    assert autolog_module._read_log_model_allowlist() == builtin
    assert getattr(autolog_module._read_log_model_allowlist, "course_fallback", False)


def test_autolog_fallback_leaves_other_errors_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.pyspark.ml as autolog_module

    def broken() -> set[str]:
        raise OSError("disk on fire")

    monkeypatch.setattr(autolog_module, "_read_log_model_allowlist", broken)
    spark_models.allow_autolog_over_connect()
    with pytest.raises(OSError, match="disk on fire"):
        autolog_module._read_log_model_allowlist()
