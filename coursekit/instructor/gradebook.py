"""The gradebook CSV: one row per learner and lesson, the same columns for every lesson.

Columns: ``learner, lesson``, then the points of every exercise key any lesson has (``q1`` … ``q5``;
empty where a lesson has no such exercise), then each exercise's outcome (``q1 outcome`` …: correct,
incorrect, not attempted, error), then ``total, max, status, reason, seconds, file``. Files are written
to a temporary name in the same folder and moved into place with :func:`os.replace`, so a reader (or
a crash) never sees half a gradebook.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from coursekit.instructor.scoring import LessonResult

FIXED_HEAD = ["learner", "lesson"]
FIXED_TAIL = ["total", "max", "status", "reason", "seconds", "file"]


def exercise_keys(results: Iterable[LessonResult]) -> list[str]:
    """Every exercise key of the graded lessons, sorted by number (q1, q2, … q10)."""
    keys = {e.key for result in results for e in result.exercises}
    return sorted(keys, key=lambda k: (len(k), k))


def columns(keys: list[str]) -> list[str]:
    """The header row for exercise ``keys``."""
    return [*FIXED_HEAD, *keys, *(f"{key} outcome" for key in keys), *FIXED_TAIL]


def number(value: float) -> str:
    """Points as text: ``2`` rather than ``2.0``, ``0.5`` stays."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def row(result: LessonResult, keys: list[str]) -> list[str]:
    """One gradebook row, aligned with :func:`columns`."""
    by_key = {e.key: e for e in result.exercises}
    return [
        result.learner, result.lesson,
        *(number(by_key[k].points) if k in by_key else "" for k in keys),
        *(by_key[k].outcome if k in by_key else "" for k in keys),
        number(result.total), number(result.max_points), result.status, result.reason,
        f"{result.seconds:.1f}", result.source,
    ]


def render_csv(results: list[LessonResult]) -> str:
    """The whole gradebook as CSV text, rows sorted by learner then lesson."""
    keys = exercise_keys(results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns(keys))
    for result in sorted(results, key=lambda r: (r.learner, r.lesson)):
        writer.writerow(row(result, keys))
    return buffer.getvalue()


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and :func:`os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; the gradebook is meant to be shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_gradebook(results: list[LessonResult], out: Path) -> Path:
    """Write ``out/gradebook.csv`` atomically and return its path."""
    path = out / "gradebook.csv"
    write_atomic(path, render_csv(results))
    return path
