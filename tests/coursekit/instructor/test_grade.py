"""The grading command without kernels: exercise lists, broken files, attribution, the gradebook it writes."""

from __future__ import annotations

import csv
import importlib
from pathlib import Path

import pytest

from coursekit.exercises.checks import Exercise
from coursekit.instructor.grade import Options, _blame_outside, _read, grade, lesson_exercises, main
from coursekit.instructor.sandbox import Execution
from coursekit.instructor.submissions import Submission
from coursekit.settings import REPO_ROOT


def test_each_lesson_s_exercises_are_the_checks_its_module_defines() -> None:
    exercises = lesson_exercises(REPO_ROOT / "solutions")
    assert exercises and all(keys for keys in exercises.values())
    for lesson, keys in exercises.items():
        module = importlib.import_module(f"coursekit.exercises.lesson{lesson[:2]}")
        defined = sorted({obj.key for obj in vars(module).values() if isinstance(obj, Exercise)}, key=lambda k: int(k[1:]))
        assert keys == defined, lesson


@pytest.mark.parametrize(("data", "reason"), [
    (b"\xff\xfe\x00", "invalid notebook: the file is not UTF-8 text"),
    (b'{"cells": [', "invalid notebook: not valid notebook JSON (Notebook does not appear to be JSON: '{\"cells\": [')"),
    (b"[1, 2]", "invalid notebook: not valid notebook JSON ("),
])
def test_broken_files_are_named_not_fatal(data: bytes, reason: str) -> None:
    result = _read(Submission("ann", "01_first_run", Path("x.ipynb"), data))
    assert isinstance(result, str) and result.startswith(reason)


def test_an_outside_write_is_blamed_on_the_run_that_noticed_it_first() -> None:
    executions = {
        0: Execution(events=[{"event": "executed", "cell": 3, "outside": ["/s/a"], "t": 20.0}]),
        1: Execution(events=[{"event": "executed", "cell": 9, "outside": ["/s/a", "/s/b"], "t": 10.0}]),
        2: Execution(events=[{"event": "executed", "cell": 1, "outside": [], "t": 5.0}]),
    }
    assert _blame_outside(executions) == {1: ["/s/a", "/s/b"]}


def test_a_class_of_broken_files_still_gets_a_complete_gradebook(tmp_path: Path) -> None:
    subs = [
        Submission("ann", "01_first_run", Path("01_first_run.ipynb"), b"not json"),
        Submission("bob", "04_compare_runs", Path("04_compare_runs.ipynb"), b"\xff", "several files for this lesson: graded x"),
    ]
    results = grade(subs, Options(out=tmp_path / "out", watch_roots=[]))
    assert [(r.learner, r.lesson, r.status, r.total, r.max_points) for r in results] == [
        ("ann", "01_first_run", "invalid notebook", 0, 5), ("ann", "04_compare_runs", "not submitted", 0, 4),
        ("bob", "01_first_run", "not submitted", 0, 5), ("bob", "04_compare_runs", "invalid notebook", 0, 4),
    ]
    assert results[3].reasons == ["invalid notebook: the file is not UTF-8 text", "several files for this lesson: graded x"]
    with (tmp_path / "out" / "gradebook.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["q5"] for r in rows] == ["0", "", "0", ""]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ann.html", "bob.html", "gradebook.csv", "index.html"]


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "class" / "ann").mkdir(parents=True)
    (tmp_path / "class" / "ann" / "01_first_run.ipynb").write_text("broken")
    (tmp_path / "class" / "ann" / "scratch.ipynb").write_text("{}")
    assert main([str(tmp_path / "class"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "ann: 0 / 5 (invalid notebook)" in out and "Graded 1 rows" in out
    assert "skipped ann/scratch.ipynb: the name does not start with a lesson" in out
    (tmp_path / "points.toml").write_text("[01_first_run]\nq9 = 1\n")
    assert main([str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--points", str(tmp_path / "points.toml")]) == 2
    assert "has no exercise q9" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    for argv in ([], ["--out", str(tmp_path / "out")], [str(tmp_path / "nope"), "--out", "x"],
                 [str(tmp_path / "class"), "--out", "x", "--jobs", "0"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2


def test_start_store_must_be_a_database_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--start-store`` names a file; a folder or a missing path is refused in one line, before anything runs."""
    (tmp_path / "class").mkdir()
    for wrong in (tmp_path, tmp_path / "missing.db"):
        with pytest.raises(SystemExit) as stop:
            main([str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--start-store", str(wrong)])
        assert stop.value.code == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error.endswith(f"--start-store: {wrong} is not a file (give the mlflow.db of a course data folder)")
    assert not (tmp_path / "out").exists()
