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
