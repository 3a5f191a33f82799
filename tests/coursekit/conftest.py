"""Shared fixtures: a throw-away MLflow store (SQLite) per test, never the learner's own."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from store_helpers import open_store, template_in_use, use_experiment

from coursekit.exercises import lesson01


@pytest.fixture(scope="session", autouse=True)
def schema_head_read_once():
    """Every new SQLite store is checked against MLflow's newest schema revision, which MLflow finds by parsing all
    its migration scripts (~0.1 s per store, so per test). They do not change during a session: the newest revision
    is read once; the check of each store against it still runs."""
    from mlflow.store.db import utils

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(utils, "_get_latest_schema_revision", functools.cache(utils._get_latest_schema_revision))
        yield


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, already migrated MLflow SQLite database; copying it saves ~1 s per test."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_db: Path, request: pytest.FixtureRequest):
    """Course data and a configured MLflow store in ``tmp_path`` (yielded): empty, or a copy of the store template
    the test uses (``store_helpers.store_template``).

    Afterwards: any run left open is ended and MLflow's tracking URI is put back.
    """
    previous = mlflow.get_tracking_uri()
    template = template_in_use(request)
    open_store(tmp_path, template, empty_db, monkeypatch)
    if template:
        template.restore_last_active_run()
    yield tmp_path
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def lesson_store(mlflow_store: Path) -> str:
    """The lesson 1 experiment, created the course's way and made active; returns its id."""
    return use_experiment(lesson01.EXPERIMENT)


@pytest.fixture
def lesson_experiment(mlflow_store: Path, request: pytest.FixtureRequest) -> str:
    """The experiment of the test module's lesson (its ``EXPERIMENT``), created the course's way and made active;
    returns its id."""
    return use_experiment(request.module.EXPERIMENT)


@pytest.fixture
def client(mlflow_store: Path) -> MlflowClient:
    """A client of the test's store."""
    return MlflowClient()


@pytest.fixture
def notebook_namespace(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The namespace of the notebook the code under test asks ``IPython.get_ipython()`` for (IPython's test shell).

    Put names in with ``monkeypatch.setitem(notebook_namespace, name, value)``, so they go away after the test.
    """
    from IPython.testing.globalipapp import get_ipython as test_shell

    shell = test_shell()
    monkeypatch.setattr("IPython.get_ipython", lambda: shell)
    return shell.user_ns


@pytest.fixture
def health_server():
    """A stand-in tracking server on 127.0.0.1 that answers ``/health`` (yields its URL)."""
    import http.server
    import threading

    from coursekit.ports import first_free

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", first_free(5210)), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def registry_restored():
    """MLflow's registry URI exactly as before the test: ``set_registry_uri`` keeps a module global and exports
    ``MLFLOW_REGISTRY_URI``, and ``get_registry_uri`` answers the tracking URI when none is set, so it cannot be
    used to save the previous state."""
    from mlflow.tracking._model_registry import utils as registry

    saved, env = registry._registry_uri, os.environ.get("MLFLOW_REGISTRY_URI")
    yield
    registry._registry_uri = saved
    if env is None:
        os.environ.pop("MLFLOW_REGISTRY_URI", None)
    else:
        os.environ["MLFLOW_REGISTRY_URI"] = env
