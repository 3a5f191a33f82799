"""Fixtures shared by the top-level tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest


@pytest.fixture
def course_store(tmp_path: Path) -> Iterator[Path]:
    """A fresh course data folder; MLflow in the test process reads the same store."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield tmp_path
    mlflow.set_tracking_uri(previous)
