"""coursekit.classroom: what the setup cell prints about the MLflow UI (Spark itself is replaced here)."""

from __future__ import annotations

import os
import shlex
import sys
from types import SimpleNamespace

from coursekit import classroom, tracking


def test_setup_prints_the_ui_command_and_switches_telemetry_off(mlflow_store, monkeypatch, capsys):
    monkeypatch.setattr(classroom, "verify_dataset", lambda settings: None)
    monkeypatch.setattr(classroom, "require_java", lambda: None)
    monkeypatch.setattr(classroom, "get_spark", lambda settings: SimpleNamespace(version="4.x"))
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY")
    room = classroom.start("lesson-xx-setup")
    out = capsys.readouterr().out.splitlines()
    assert out[3] == (
        "MLflow UI:    paste this into a terminal, then open the link it prints for lesson-xx-setup (Ctrl+C stops it):"
    )
    command = out[4].strip()
    assert command == tracking.ui_command(room.settings)
    assert shlex.split(command)[:3] == [sys.executable, "-m", "coursekit.ui"]
    assert "mlflow ui" not in command, "a bare `mlflow` is not on a terminal's PATH"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_on_databricks_setup_uses_the_notebooks_session_and_says_what_it_chose(
    mlflow_store, monkeypatch, capsys, registry_restored,
):
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "client.4.9")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{mlflow_store}/mlflow.db")
    monkeypatch.setattr("coursekit.settings._notebook_dbutils", lambda: None)
    monkeypatch.setattr(classroom, "verify_dataset", lambda settings: None)
    monkeypatch.setattr(classroom, "require_java", lambda: (_ for _ in ()).throw(AssertionError("no Java check")))
    monkeypatch.setattr(classroom, "get_spark", lambda settings: SimpleNamespace(version="4.0.0"))
    monkeypatch.setattr(tracking, "make_workspace_folder", lambda folder: None)
    monkeypatch.setattr(classroom, "use_dfs_tmp", lambda settings, spark: "Spark models: MLFLOW_DFS_TMP=/Volumes/x (…)")
    room = classroom.start("/Users/ada@example.com/mlflow-course/lesson-xx")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Spark 4.0.0 (Databricks serverless, runtime client.4.9, the notebook's own session)")
    assert out[2] == f"Registry URI: sqlite:///{mlflow_store}/mlflow.db"
    assert out[3] == "Experiment:   /Users/ada@example.com/mlflow-course/lesson-xx"
    assert out[4] == "Spark models: MLFLOW_DFS_TMP=/Volumes/x (…)"
    assert out[5].startswith("MLflow UI:    built into Databricks") and "coursekit.ui" not in "\n".join(out)
    assert room.settings.databricks and room.settings.serverless and not room.connect
