"""Finding submissions: folder and flat layouts, copies with suffixes, duplicates, stray files."""

from __future__ import annotations

import os
from pathlib import Path

from coursekit.instructor.submissions import discover, from_folder, lesson_of

LESSONS = ["01_first_run", "02_log_metrics", "10_first"]


def _touch(path: Path, text: str = "{}", mtime: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_lesson_names_tolerate_copy_suffixes_but_not_other_lessons() -> None:
    assert lesson_of("01_first_run", LESSONS) == "01_first_run"
    assert lesson_of("01_first_run-Copy1", LESSONS) == "01_first_run"
    assert lesson_of("01_first_run (1)", LESSONS) == "01_first_run"
    assert lesson_of("01_first_run_final", LESSONS) == "01_first_run"
    assert lesson_of("01_first_runner", LESSONS) is None
    assert lesson_of("10_first_run", LESSONS) == "10_first"
    assert lesson_of("my 01_first_run", LESSONS) is None


def test_both_layouts_are_found_with_bytes_read_up_front(tmp_path: Path) -> None:
    _touch(tmp_path / "ann" / "01_first_run.ipynb", "ann-1")
    _touch(tmp_path / "ann" / "nested" / "02_log_metrics-Copy1.ipynb", "ann-2")
    _touch(tmp_path / "bob__02_log_metrics (1).ipynb", "bob-2")
    _touch(tmp_path / "ann" / ".ipynb_checkpoints" / "01_first_run-checkpoint.ipynb", "old")
    found, ignored = discover(tmp_path, LESSONS)
    assert [(s.learner, s.lesson, s.data, s.note) for s in found] == [
        ("ann", "01_first_run", b"ann-1", ""), ("ann", "02_log_metrics", b"ann-2", ""), ("bob", "02_log_metrics", b"bob-2", ""),
    ]
    (tmp_path / "ann" / "01_first_run.ipynb").write_text("changed later")
    assert found[0].data == b"ann-1"
    assert ignored == []


def test_duplicates_prefer_the_exact_name_then_the_newest(tmp_path: Path) -> None:
    _touch(tmp_path / "ann" / "01_first_run-Copy1.ipynb", "copy", mtime=2_000_000_000)
    _touch(tmp_path / "ann" / "01_first_run.ipynb", "exact", mtime=1_000_000_000)
    _touch(tmp_path / "bob" / "01_first_run (1).ipynb", "older", mtime=1_000_000_000)
    _touch(tmp_path / "bob" / "01_first_run (2).ipynb", "newer", mtime=2_000_000_000)
    found, _ = discover(tmp_path, LESSONS)
    assert [(s.learner, s.data) for s in found] == [("ann", b"exact"), ("bob", b"newer")]
    assert found[0].note == "several files for this lesson: graded 01_first_run.ipynb, ignored 01_first_run-Copy1.ipynb"


def test_files_that_cannot_be_placed_are_reported_not_graded(tmp_path: Path) -> None:
    _touch(tmp_path / "01_first_run.ipynb")
    _touch(tmp_path / "ann" / "homework.ipynb")
    found, ignored = discover(tmp_path, LESSONS)
    assert found == []
    assert ignored == [
        "01_first_run.ipynb: put it in a folder named after the learner, or name it <learner>__<lesson>.ipynb",
        "ann/homework.ipynb: the name does not start with a lesson (01_first_run, 02_log_metrics, 10_first)",
    ]


def test_a_folder_of_lessons_is_one_learner(tmp_path: Path) -> None:
    for name in ("01_first_run.ipynb", "02_log_metrics.ipynb", "01_first_run-Copy1.ipynb", "notes.ipynb"):
        _touch(tmp_path / name, name)
    found = from_folder(tmp_path, "solutions", LESSONS)
    assert [(s.learner, s.lesson, s.path.name) for s in found] == [
        ("solutions", "01_first_run", "01_first_run.ipynb"), ("solutions", "02_log_metrics", "02_log_metrics.ipynb"),
    ]
