"""The one Spark fixture of the unit tests, shared by test_tuning.py and test_tuning_panel.py.

Import the fixtures into a test module (``from spark_fixtures import course_spark, tuner``).
``course_spark`` is module-scoped: it points the course at a temporary data folder and
MLflow store, starts (or reuses) the local SparkSession and prepares the lesson 5 split
once; ``tuner`` gives each test a fresh experiment in that store, so tests stay
independent while Spark starts once per process.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from coursekit import tracking
from coursekit.data import load_pima
from coursekit.spark import get_spark
from coursekit.tuning import Tuner, prepare_data

SEED = 42
# mlflow.set_experiment also exports MLFLOW_EXPERIMENT_ID, so it is put back with the others.
_ENV = ("COURSE_DATA_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")


@dataclass(frozen=True)
class CourseSpark:
    """The running session, the cached 70/30 split of lesson 5 and the module's data folder."""

    spark: object
    train: object
    test: object
    data_dir: Path


@pytest.fixture(scope="module")
def course_spark(
    tmp_path_factory: pytest.TempPathFactory, empty_db: Path, request: pytest.FixtureRequest
) -> Iterator[CourseSpark]:
    data_dir = tmp_path_factory.mktemp("course-data")
    shutil.copy(empty_db, data_dir / "mlflow.db")
    saved_env = {name: os.environ.get(name) for name in _ENV}
    previous_uri = mlflow.get_tracking_uri()
    previous_experiment = mlflow.tracking.fluent._active_experiment_id  # no public getter that does not create one
    os.environ["COURSE_DATA_DIR"] = str(data_dir)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{data_dir / 'mlflow.db'}"
    spark = train = test = None
    try:
        tracking.configure_tracking()
        spark = get_spark()  # reused if an earlier module started it: one JVM per test process
        train, test = prepare_data(load_pima(spark), seed=SEED)
        yield CourseSpark(spark, train, test, data_dir)
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        for frame in (train, test):
            if frame is not None:
                frame.unpersist()
        # set_tracking_uri exports MLFLOW_TRACKING_URI, so the environment is restored after it.
        mlflow.set_tracking_uri(previous_uri)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        mlflow.tracking.fluent._active_experiment_id = previous_experiment
        if spark is not None and not _needed_later(request):
            spark.stop()


def _needed_later(request: pytest.FixtureRequest) -> bool:
    """Whether a test collected after this module still uses Spark (then the JVM is kept for it)."""
    items = request.session.items
    last = max((i for i, item in enumerate(items) if item.path == request.path), default=len(items))
    return any("course_spark" in getattr(item, "fixturenames", ()) for item in items[last + 1:])


@pytest.fixture
def tuner(course_spark: CourseSpark, request: pytest.FixtureRequest) -> Tuner:
    """A Tuner on the shared split, logging into an experiment of its own (named after the test)."""
    name = "tune-" + re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)
    tracking.ensure_experiment(name)
    # As the lesson's setup cell does (log_best_model resumes runs of the active experiment only).
    mlflow.set_experiment(name)
    return Tuner(course_spark.train, course_spark.test, name, seed=SEED)
