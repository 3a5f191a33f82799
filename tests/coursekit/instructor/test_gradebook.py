"""The gradebook CSV: stable columns, exact rows, atomic writes."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from coursekit.instructor.gradebook import columns, exercise_keys, number, render_csv, write_atomic, write_gradebook
from coursekit.instructor.scoring import ExerciseResult, LessonResult


def _result(learner: str, lesson: str, outcomes: dict[str, str], status: str = "ok", reasons: list[str] | None = None) -> LessonResult:
    exercises = [ExerciseResult(k, o, 2.0 if o == "correct" else 0.0, 2.0) for k, o in outcomes.items()]
    return LessonResult(learner, lesson, status, exercises, reasons or [], "nb.ipynb", 12.34)


def test_columns_are_the_union_of_exercises_in_numeric_order() -> None:
    results = [_result("a", "05", {"q1": "correct", "q2": "incorrect"}), _result("a", "01", {"q10": "error", "q3": "correct"})]
    keys = exercise_keys(results)
    assert keys == ["q1", "q2", "q3", "q10"]
    assert columns(keys) == [
        "learner", "lesson", "q1", "q2", "q3", "q10", "q1 outcome", "q2 outcome", "q3 outcome", "q10 outcome",
        "total", "max", "status", "reason", "seconds", "file",
    ]


def test_rows_are_sorted_and_lessons_without_an_exercise_leave_it_empty() -> None:
    text = render_csv([
        _result("zoe", "01_first_run", {"q1": "correct", "q2": "not attempted"}),
        _result("amy", "04_compare_runs", {"q1": "incorrect"}, "cell errors", ["cell 3 raised X: y", 'a "quoted", reason']),
    ])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ["amy", "04_compare_runs", "0", "", "incorrect", "", "0", "2", "cell errors",
                       'cell 3 raised X: y; a "quoted", reason', "12.3", "nb.ipynb"]
    assert rows[2] == ["zoe", "01_first_run", "2", "0", "correct", "not attempted", "2", "4", "ok", "", "12.3", "nb.ipynb"]


def test_points_print_without_needless_decimals() -> None:
    assert [number(2.0), number(0.5), number(0), number(1.25)] == ["2", "0.5", "0", "1.25"]


def test_writes_are_atomic_and_leave_no_temporary_file(tmp_path: Path) -> None:
    path = write_gradebook([_result("a", "01", {"q1": "correct"})], tmp_path / "out")
    assert path == tmp_path / "out" / "gradebook.csv"
    assert path.read_text().startswith("learner,lesson,q1,q1 outcome,")
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(tmp_path / "out") == ["gradebook.csv"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "gradebook.csv"
    path.write_text("old\n")

    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "new\n")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["gradebook.csv"]
