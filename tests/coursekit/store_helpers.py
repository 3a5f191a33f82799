"""What the exercise tests share: a lesson's experiment made active, runs logged with the real fluent API,
and assertions on a check's verdict (``from store_helpers import log_run, assert_incorrect``)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import fluent

from coursekit import Outcome, tracking
from coursekit.exercises.lesson07 import MODEL_NAME


def use_experiment(name: str) -> str:
    """The experiment ``name``, created the course's way and made active; returns its id."""
    experiment_id = tracking.ensure_experiment(name)
    mlflow.set_experiment(name)
    return experiment_id


def log_run(run_name=None, *, params=None, tags=None, metrics=None, artifacts=(), texts=None, dicts=None,
            status="FINISHED", nested=False):
    """One run built with the real fluent API; ``status=None`` leaves it RUNNING. Returns its id.

    ``metrics`` go in one log_metrics call; ``artifacts`` are paths written with a placeholder text,
    ``texts`` maps paths to their text and ``dicts`` paths to a dict written with log_dict.
    """
    run = mlflow.start_run(run_name=run_name, nested=nested)
    if params:
        mlflow.log_params(params)
    if tags:
        mlflow.set_tags(tags)
    if metrics:
        mlflow.log_metrics(metrics)
    for path in artifacts:
        mlflow.log_text("fake artifact", path)
    for path, text in (texts or {}).items():
        mlflow.log_text(text, path)
    for path, value in (dicts or {}).items():
        mlflow.log_dict(value, path)
    if status:
        mlflow.end_run(status=status)
    return run.info.run_id


def assert_outcome(result, outcome, *words):
    """The check's verdict is ``outcome`` and its message names every one of ``words``."""
    assert result.outcome is outcome, result
    for word in words:
        assert word in result.message, f"{word!r} not in {result.message!r}"


def assert_incorrect(result, *words):
    assert_outcome(result, Outcome.INCORRECT, *words)


def assert_not_attempted(result, *words):
    assert_outcome(result, Outcome.NOT_ATTEMPTED, *words)


def set_aliases(client, **aliases):
    """Point each alias of the course's registered model at a version number (lessons 7 and 8)."""
    for alias, version in aliases.items():
        client.set_registered_model_alias(MODEL_NAME, alias, str(version))


# --- store templates: a scenario built once per test module, copied for each test -------------------------------

_TEMPLATE_FIXTURES: set[str] = set()


@dataclass(frozen=True, eq=False)
class StoreTemplate:
    """A course data folder (``mlflow.db`` and ``artifacts/``) built once, copied for every test that uses it.

    ``value`` is what the build returned (run ids, version numbers: a copy keeps every id); ``base`` is the
    template it was built on, if any; ``path_columns`` are the ``(table, column)`` pairs that hold paths into
    ``folder`` (artifact locations and model sources are absolute), which a copy points at its own folder;
    ``last_active_run_id`` is the run ``mlflow.last_active_run()`` named right after the build.
    """

    name: str
    folder: Path
    value: Any
    base: StoreTemplate | None = None
    path_columns: tuple[tuple[str, str], ...] = ()
    last_active_run_id: str | None = None

    def layers(self) -> list[StoreTemplate]:
        """This template and the ones it was built on, this one first."""
        return [self, *(self.base.layers() if self.base else [])]

    def copy_to(self, folder: Path) -> None:
        """Make ``folder`` a course data folder like this one: the artifacts copied, and the database copied with
        every path into this template's folder rewritten to ``folder``, as if the store had been built there."""
        shutil.copytree(self.folder, folder, dirs_exist_ok=True)
        old, new = f"{self.folder.resolve()}/", f"{folder.resolve()}/"
        with closing(sqlite3.connect(folder / "mlflow.db")) as db, db:
            for table, column in self.path_columns:
                db.execute(f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?)', (old, new))

    def restore_last_active_run(self) -> None:
        """Make ``mlflow.last_active_run()`` name the run it named right after the build, as it would had the test
        built the store itself (MLflow keeps that id in a private per-thread variable)."""
        fluent._last_active_run_id.set(self.last_active_run_id)


def open_store(folder: Path, template: StoreTemplate | None, empty_db: Path, patch: pytest.MonkeyPatch) -> None:
    """Make ``folder`` a course data folder (a copy of ``template``, else the empty migrated database) and point
    ``COURSE_DATA_DIR``, MLflow's tracking URI and the course's tracking set-up at it, through ``patch``."""
    if template:
        template.copy_to(folder)
    else:
        shutil.copy(empty_db, folder / "mlflow.db")
    patch.setenv("COURSE_DATA_DIR", str(folder))
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
    tracking.configure_tracking()


def _path_columns(db_path: Path, folder: Path) -> tuple[tuple[str, str], ...]:
    """The ``(table, column)`` pairs of the SQLite database at ``db_path`` with a value that contains ``folder``."""
    needle = str(folder.resolve())
    found = []
    with closing(sqlite3.connect(db_path)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]:
                query = f'SELECT 1 FROM "{table}" WHERE instr(CAST("{column}" AS TEXT), ?) > 0 LIMIT 1'
                if db.execute(query, (needle,)).fetchone():
                    found.append((table, column))
    return tuple(found)


def store_template(build: Callable | None = None, *, base: str | None = None):
    """Decorator: a module-scoped fixture, named like ``build``, that runs ``build`` once in a store of its own.

    The store is made the way ``mlflow_store`` and ``lesson_experiment`` make a test's store (the test module's
    ``EXPERIMENT`` created the course's way and active); with ``base`` (the name of another template fixture) it
    starts as a copy of that template and ``build`` gets the base's value. The fixture's value is a
    :class:`StoreTemplate`. A test that asks for the fixture (or for one that depends on it) gets, from
    ``mlflow_store``, a store of its own that starts as a copy of the template: what the test changes stays in
    its copy. Keep what the test needs from ``template.value`` (ids); read entities again from the copy.
    """

    def decorate(build: Callable) -> Any:
        name = build.__name__
        _TEMPLATE_FIXTURES.add(name)

        def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, empty_db: Path):
            parent = request.getfixturevalue(base) if base else None
            folder = tmp_path_factory.mktemp(f"template-{name}")
            previous = mlflow.get_tracking_uri()
            with pytest.MonkeyPatch.context() as patch:
                open_store(folder, parent, empty_db, patch)
                try:
                    use_experiment(request.module.EXPERIMENT)
                    value = build(parent.value) if parent else build()
                    left_open = mlflow.active_run()
                finally:
                    while mlflow.active_run():
                        mlflow.end_run()
                    mlflow.set_tracking_uri(previous)
            assert left_open is None, f"{name} left run {left_open.info.run_id} open: a copy could not keep it active"
            columns = _path_columns(folder / "mlflow.db", folder)
            return StoreTemplate(name, folder, value, parent, columns, fluent._last_active_run_id.get())

        template.__doc__ = build.__doc__
        return pytest.fixture(template, scope="module", name=name)

    return decorate(build) if build else decorate


def template_in_use(request: pytest.FixtureRequest) -> StoreTemplate | None:
    """The store template a test's store starts from: of the template fixtures the test uses (directly or through
    other fixtures), the one built on all the others; None if it uses none."""
    used = [request.getfixturevalue(name) for name in request.fixturenames if name in _TEMPLATE_FIXTURES]
    used = [template for template in used if isinstance(template, StoreTemplate)]
    if not used:
        return None
    top = max(used, key=lambda template: len(template.layers()))
    layers = [id(template) for template in top.layers()]
    stray = [template.name for template in used if id(template) not in layers]
    assert not stray, f"{request.node.nodeid}: store templates {stray} are not layers of {top.name!r}"
    return top
