"""The shipped lessons, graded once by the documented command: every one runs clean, as shipped, in a fresh
store of its own, reporting "not attempted". (The solutions' full marks: tests/test_notebooks.py, whose second
run of every solution is the grader's.)"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from answer_key import REPO, AnswerKey, grade_answer_key
from nbrun import EXERCISES, LESSONS, check_outcomes, error_outputs

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def answer_key(tmp_path_factory: pytest.TempPathFactory) -> AnswerKey:
    """``python -m coursekit.instructor.grade --lessons``, once for this module."""
    return grade_answer_key(tmp_path_factory.mktemp("answer-key") / "key", "--lessons")


def test_fresh_lessons_score_zero(answer_key: AnswerKey) -> None:
    """The documented command on every shipped lesson, read back from the gradebook."""
    done, rows = answer_key.done, answer_key.rows
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    stems = sorted(p.stem for p in (REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))
    assert sorted((r["learner"], r["lesson"]) for r in rows) == [("lessons", stem) for stem in stems]
    for r in rows:
        keys = [k for k in ("q1", "q2", "q3", "q4", "q5") if r[f"{k} outcome"]]
        assert r["status"] == "ok", (r["learner"], r["lesson"], r["reason"])
        assert len(keys) == len(EXERCISES[r["lesson"]]), r["lesson"]
        assert {r[f"{k} outcome"] for k in keys} == {"not attempted"}, r["lesson"]
        assert float(r["total"]) == 0 and float(r["max"]) == len(keys), r["lesson"]
    assert (answer_key.out / "lessons.html").is_file()


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_shipped_lesson_runs_clean_and_reports_not_attempted(lesson: Path, answer_key: AnswerKey) -> None:
    """The lesson as shipped, executed by the answer-key run in a fresh store: no error, every check not attempted."""
    nb = nbformat.read(answer_key.executed("lessons", lesson.stem), as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in nbformat.read(lesson, as_version=4).cells]
    assert error_outputs(nb) == []
    assert check_outcomes(nb) == {key: "not attempted" for key in EXERCISES[lesson.stem]}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            assert "Traceback" not in str(out), cell.source
