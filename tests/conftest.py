"""Fixtures shared by the top-level tests."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import cpu_usage
import mlflow
import pytest

# mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI, which every kernel started later
# would inherit (and write into the wrong store). Each test leaves these as it found them.
_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "COURSE_DATA_DIR")

#: Test files that run longest (several notebook executions each). They are collected first, so that with
#: pytest-xdist (scripts/test.sh runs two workers) they start at once and the short files fill in around them.
LONG_POLES = ("test_notebooks.py", "test_grading.py", "test_mode_class_server.py", "test_answer_key.py",
              "test_mode_databricks.py", "test_mode_connect.py", "test_ui_journey.py",
              "test_mode_cluster.py")


def pytest_configure(config: pytest.Config) -> None:
    """Give each pytest-xdist worker its own scratch store and its own MLflow UI ports.

    Two workers run at once (``scripts/test.sh``). Each worker's kernels and UI servers start from its own
    first UI port (``COURSE_UI_PORT``: 6100, 6300, …), so two of them never race for the same port. Port 5000,
    the default, stays free for what the tests run in a plain shell, where no course variable is set.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    cpu_usage.configure(config, worker)  # COURSE_TEST_CPU=1 (scripts/test.sh): CPU time per test file
    if not worker:
        return
    index = int(worker.removeprefix("gw"))
    os.environ["COURSE_UI_PORT"] = str(6100 + 200 * index)
    if base := os.environ.get("COURSE_DATA_DIR"):
        own = Path(base) / worker
        own.mkdir(parents=True, exist_ok=True)
        os.environ["COURSE_DATA_DIR"] = str(own)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the :data:`LONG_POLES` first, in that order; everything else keeps its order."""
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_POLES.index(name) if name in LONG_POLES else len(LONG_POLES)

    items.sort(key=rank)


_archive_build: subprocess.Popen[bytes] | None = None
_archive_lock: IO[str] | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start building the Spark class archive ``scripts/test.sh`` names (``COURSE_SPARK_CLASS_ARCHIVE``) if it is missing.

    The first worker to get here builds it in the background (:mod:`coursekit.class_archive`) while the tests start;
    drivers started before it appears load their classes as usual. The file is kept for later runs (test.sh names it
    after the Java and package versions), and an older one next to it is deleted.
    """
    global _archive_build, _archive_lock
    archive = os.environ.get("COURSE_SPARK_CLASS_ARCHIVE")
    if session.config.option.collectonly or not archive or Path(archive).exists():
        return
    target = Path(archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = open(target.with_name(target.name + ".lock"), "w")  # noqa: SIM115 - held until the session ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the kernel even if this run is killed
    except BlockingIOError:
        lock.close()
        return  # the other worker, or another run, is building it
    if target.exists():  # finished by another run meanwhile
        lock.close()
        return
    for older in target.parent.glob("spark-classes-*.jsa"):
        older.unlink(missing_ok=True)
    _archive_lock = lock
    with open(target.with_name(target.name + ".log"), "wb") as log:
        _archive_build = subprocess.Popen([sys.executable, "-m", "coursekit.class_archive", archive],
                                          stdout=log, stderr=subprocess.STDOUT)
    logging.getLogger(__name__).info("building the Spark class archive %s in the background", archive)


def pytest_sessionfinish() -> None:
    """Stop an archive build still running: it writes its file only when complete, so nothing is left half-made."""
    if _archive_build is not None and _archive_build.poll() is None:
        _archive_build.terminate()
        _archive_build.wait(timeout=60)
    if _archive_lock is not None:
        _archive_lock.close()


@pytest.fixture(scope="session", autouse=True)
def repository_gets_no_mlruns_folder() -> Iterator[None]:
    """No test may write MLflow files into the checkout: a new experiment's default artifact folder is ./mlruns."""
    stray = Path(__file__).resolve().parent.parent / "mlruns"
    existed = stray.exists()
    yield
    assert existed or not stray.exists(), f"a test wrote MLflow files into {stray}: give its experiment an artifact_location"


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

