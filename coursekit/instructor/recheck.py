"""Re-check a graded notebook's store-only exercises in the grader, with the grader's own checks.

A check result is a display message; any cell can display one by hand. So after a submission ran,
the grader asks its own copy of the checks the same question again, against the sandbox's MLflow
store, for every exercise whose check reads only the store (``evaluate()`` takes no argument and the
exercise's ``recheckable`` is true). :mod:`coursekit.instructor.scoring` lets this re-check win wherever it
disagrees with what the notebook displayed.

Exercises whose check needs a value from the notebook (``q4.check(best_run_id)``) cannot be re-asked
outside the kernel: for them the displayed result counts, as before (:func:`needs_notebook_values`).

The re-checks run in one worker process per grading session (:class:`Rechecker`), never in a
learner's kernel. It starts a local Spark session only when a check re-scores a model
(:func:`coursekit.exercises.verdicts.rescore`), once per session; re-scored settings are cached across
submissions.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import inspect
import logging
import multiprocessing
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from coursekit.exercises.checks import Exercise, format_result

log = logging.getLogger(__name__)

#: Seconds one submission's re-check may take before the worker is replaced (a re-score fit is ~2 s).
RECHECK_TIMEOUT = 180
_LESSON_STEM = re.compile(r"^(\d\d)_")


def exercises(lesson: str) -> dict[str, Exercise]:
    """The exercises of a lesson (``"01_first_run"`` -> ``coursekit.exercises.lesson01``'s ``q1``, ``q2``, …) by key."""
    match = _LESSON_STEM.match(lesson)
    if match is None:
        return {}
    try:
        module = importlib.import_module(f"coursekit.exercises.lesson{match.group(1)}")
    except ModuleNotFoundError:
        return {}
    found = {name: value for name, value in vars(module).items() if re.fullmatch(r"q\d+", name) and isinstance(value, Exercise)}
    return dict(sorted(found.items(), key=lambda item: int(item[0][1:])))


def needs_notebook_values(exercise: Exercise) -> bool:
    """True when the check takes a value from the notebook (``q1.check(best_run_id)``)."""
    parameters = list(inspect.signature(exercise.evaluate).parameters.values())
    return any(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)


def recheckable(lesson: str) -> list[str]:
    """Keys of the lesson's exercises the grader re-checks from the store alone."""
    return [key for key, ex in exercises(lesson).items() if ex.recheckable and not needs_notebook_values(ex)]


@contextmanager
def _store(uri: str) -> Iterator[None]:
    """Point MLflow's default clients at ``uri`` for the duration, then put back exactly what was there.

    ``mlflow.set_tracking_uri`` and ``set_registry_uri`` also export ``MLFLOW_TRACKING_URI`` and
    ``MLFLOW_REGISTRY_URI`` to the environment, and a registry URI once set stays pinned; restoring them
    through the setters would leave both behind for every process started later (a kernel would then
    register models in another store). So the module globals and the variables are restored as they were.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    environment = {name: os.environ.get(name) for name in names}
    tracking, registry = tracking_utils._tracking_uri, registry_utils._registry_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(tracking)
        registry_utils._registry_uri = registry
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def recheck(lesson: str, data_dir: Path, workdir: Path | None = None) -> dict[str, dict[str, str]]:
    """Re-run every store-only check of ``lesson`` against the store in ``data_dir`` (its ``mlflow.db``).

    Returns ``{key: {"outcome": …, "message": …}}`` with the message as the learner would see it.
    No store file means nothing was logged: every store-only check then answers from an empty store.
    ``workdir`` is the folder the notebook ran in: a check that looks at it (lesson 3 asks git for the
    commit there) must see what the kernel saw. The previous working directory is restored afterwards.
    """
    from coursekit.tracking import disable_telemetry

    disable_telemetry()
    database = Path(data_dir) / "mlflow.db"
    with tempfile.TemporaryDirectory(prefix="coursekit-recheck-") as scratch:
        if not database.is_file():
            # Nothing was logged: ask an empty store (MLflow would create a new file at a missing path).
            database = Path(scratch) / "empty.db"
        found: dict[str, dict[str, str]] = {}
        all_exercises = exercises(lesson)
        with _store(f"sqlite:///{database}"), _working_directory(workdir):
            for key in recheckable(lesson):
                exercise = all_exercises[key]
                result = exercise.result()
                found[key] = {"outcome": result.outcome.value, "message": format_result(key, exercise.title, result)}
    return found


@contextmanager
def _working_directory(path: Path | None) -> Iterator[None]:
    """Run the block in ``path`` (when it is a folder), then go back."""
    previous = os.getcwd()
    if path is not None and Path(path).is_dir():
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _start_worker(data_dir: str) -> None:
    """Worker initializer: its own scratch folder for Spark, and a Spark starter for re-scoring."""
    os.environ["COURSE_DATA_DIR"] = data_dir
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("COURSE_LEARNER", None)  # the kernel had none: the grader drops COURSE_*, so names are plain
    os.environ.pop("SPARK_REMOTE", None)
    os.environ.setdefault("COURSE_SPARK_QUICK_JIT", "1")
    from coursekit.exercises import verdicts
    from coursekit.spark import get_spark

    verdicts.spark_starter = get_spark


class Rechecker:
    """One worker process that re-checks submissions, one at a time, for a whole grading session.

    Use as a context manager; call it with ``(lesson, data_dir)``. Thread-safe: the grader's
    threads queue their submissions. A re-check that hangs past :data:`RECHECK_TIMEOUT` raises
    ``TimeoutError`` and the worker is replaced.
    """

    def __init__(self, scratch: Path, timeout: float = RECHECK_TIMEOUT) -> None:
        self.scratch = scratch
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self.scratch.mkdir(parents=True, exist_ok=True)
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker, initargs=(str(self.scratch),),
                )
            return self._pool

    def __call__(self, lesson: str, data_dir: Path) -> dict[str, Any]:
        """Re-check one submission's store: ``{"exercises": …}`` (see :func:`recheck`) or ``{"error": why}``.

        ``{}`` when the lesson has no store-only exercise.
        """
        if not recheckable(lesson):
            return {}
        pool = self._executor()
        try:
            # The sandbox's notebook folder sits next to its data folder (coursekit.instructor.sandbox).
            future = pool.submit(recheck, lesson, data_dir, Path(data_dir).parent / "work")
            return {"exercises": future.result(timeout=self.timeout)}
        except concurrent.futures.TimeoutError:
            log.warning("re-checking %s took over %s s: replacing the worker", lesson, self.timeout)
            self._replace(pool)
            return {"error": f"the re-check took over {self.timeout:.0f} s"}
        except Exception as exc:  # noqa: BLE001 - a failed re-check is reported, never fatal to grading
            log.warning("re-checking %s failed: %s", lesson, exc, exc_info=True)
            self._replace(pool)
            return {"error": f"{type(exc).__name__}: {exc}"[:300]}

    def _replace(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        _terminate(pool)

    def close(self) -> None:
        """Stop the worker (and its Spark session)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            _terminate(pool)

    def __enter__(self) -> Rechecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _terminate(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Kill the pool's worker and everything it started (its Spark JVM), then shut the pool down."""
    import psutil

    for process in list(getattr(pool, "_processes", {}).values()):
        try:
            worker = psutil.Process(process.pid)
            for proc in [*worker.children(recursive=True), worker]:
                proc.kill()
        except psutil.Error:
            pass
    pool.shutdown(wait=True, cancel_futures=True)
