"""Fixtures shared by the top-level tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

# mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI, which every kernel started later
# would inherit (and write into the wrong store). Each test leaves these as it found them.
_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "COURSE_DATA_DIR")


@pytest.fixture(autouse=True)
def isolate_mlflow_state() -> Iterator[None]:
    """Restore MLflow's environment variables and tracking URI after every test."""
    saved = {name: os.environ.get(name) for name in _MLFLOW_ENV}
    uri = mlflow.get_tracking_uri()
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    mlflow.set_tracking_uri(uri)
    if saved["MLFLOW_TRACKING_URI"] is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture
def course_store(tmp_path: Path) -> Iterator[Path]:
    """A fresh course data folder; MLflow in the test process reads the same store."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield tmp_path
    mlflow.set_tracking_uri(previous)

