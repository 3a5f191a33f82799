"""Grade a small hostile class end to end: the exact gradebook, the reports, and a repo left untouched.

The class (tests/grading_fixtures.py) is lesson 1 submitted eleven broken ways: a blanked exercise, an endless
loop, an exception, a killed kernel, a deleted exercise, a flood of output, tampered checks, a write outside
the sandbox, a forged check result the re-check catches, one it cannot, no exercise cells; plus a file that
is not JSON. Two run at once. (The full solution and the fresh lesson: the answer key's runs.)
"""

from __future__ import annotations

import csv
import html
import re
import shutil
from pathlib import Path

import grading_fixtures
import nbformat
import pytest

from coursekit.instructor.grade import Options, grade
from coursekit.instructor.sandbox import Limits
from coursekit.instructor.submissions import discover

pytestmark = pytest.mark.notebook

REPO = Path(__file__).resolve().parent.parent
LIMITS = Limits(cell_timeout=60, notebook_timeout=600, memory_mb=6144, max_output_kb=256)

C, I, N, E = "correct", "incorrect", "not attempted", "error"
# learner -> (points q1..q5, outcomes q1..q5, status, reason) for lesson 01.
EXPECTED_01 = {
    "carol": ([1, 0, 1, 1, 1], [C, N, C, C, C], "ok", ""),
    "dave": ([1, 1, 1, 1, 1], [C, C, C, C, C], "timeout",
             "cell 12 (`while True:`) timed out (the cell ran longer than 60 s) and was interrupted; later cells still ran"),
    "erin": ([1, 1, 0, 1, 1], [C, C, E, C, C], "cell errors", 'cell 21 (`raise RuntimeError("boom")`) raised RuntimeError: boom'),
    "frank": ([1, 1, 0, 0, 0], [C, C, E, E, E], "kernel died",
              "kernel died in cell 15 (`import os, signal`): the kernel process exited during a cell"),
    "heidi": ([1, 1, 1, 0, 1], [C, C, C, N, C], "missing exercise", "missing exercise: no cell calls q4.check()"),
    "ivan": ([1, 1, 1, 1, 1], [C, C, C, C, C], "output too large",
             "output too large: outputs beyond the limit were dropped from the stored notebook"),
    "judy": ([1, 1, 0, 0, 0], [C, C, E, E, E], "tampered",
             "tampered checks: cell 15 (`import coursekit.exercises.lesson01 as checks`) changed the grader's copy of coursekit; "
             "only checks before it count; suspicious code: cell 15 (`import coursekit.exercises.lesson01 as checks`) contains `__file__`; "
             "review the executed notebook"),
    "mallory": ([0, 0, 0, 0, 0], [N, N, N, N, N], "not submitted", "no notebook for this lesson"),
    "olga": ([1, 1, 1, 1, 1], [C, C, C, C, C], "wrote outside its folder", "wrote outside its folder: <class>/olga/sentinel.txt"),
    "peggy": ([1, 1, 1, 1, 0], [C, C, C, C, N], "forged check output",
              "forged check output: cell 35 (`import json`) displayed 'correct' for q5, but the grader's re-check of the "
              "MLflow store at the end says 'not attempted'; the re-check counts"),
    "quinn": ([1, 1, 1, 1, 1], [C, C, C, C, C], "suspicious code",
              "suspicious code: cell 30 (`import json`) contains `vnd.coursekit`; points kept, review the executed notebook"),
    "rupert": ([0, 0, 0, 0, 0], [N, N, N, N, N], "missing exercise",
               "missing exercises: no cell calls any of this lesson's checks (q1.check(), q2.check(), q3.check(), q4.check(), "
               "q5.check()); is this the right lesson's notebook, or were its exercise cells deleted?"),
}
MALLORY_02 = ([0, 0, 0, 0, 0], [E, E, E, E, E], "invalid notebook",
              "invalid notebook: not valid notebook JSON (Notebook does not appear to be JSON: '{\"cells\": [ this is not json')")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, str]]]:
    """Grade the class once for every test here: (class folder, gradebook folder, CSV rows)."""
    root = tmp_path_factory.mktemp("grading")
    klass = grading_fixtures.build_class(root / "class")
    (klass / f"grace__{grading_fixtures.LESSON} (1).ipynb").unlink()  # discovery tests cover the flat layout
    # The full solution and the fresh lesson are the answer key's (tests/test_notebooks.py, tests/test_answer_key.py,
    # the same grader): here only the learners who break something, two executions fewer.
    for learner in ("alice", "bob"):
        shutil.rmtree(klass / learner)
    out = root / "gradebook"
    submissions, ignored = discover(klass, ["01_first_run", "02_log_metrics"])
    assert ignored == []
    # judy's cell refuses to write unless the kernel imported the sandbox's copy of the checks, so
    # "tampered" (not "cell errors") proves the copy was used and the repository's file was not touched.
    # The repository itself is not watched here: people edit it while tests run.
    grade(submissions, Options(out=out, limits=LIMITS, jobs=2, watch_roots=[]), [klass])
    with (out / "gradebook.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return klass, out, rows


def _sanitize(text: str, klass: Path) -> str:
    return text.replace(str(klass), "<class>")


def test_the_gradebook_is_exact(graded: tuple[Path, Path, list[dict[str, str]]]) -> None:
    klass, _, rows = graded
    keys = ["q1", "q2", "q3", "q4", "q5"]
    assert list(rows[0]) == ["learner", "lesson", *keys, *(f"{k} outcome" for k in keys),
                             "total", "max", "status", "reason", "seconds", "file"]
    got = {
        (r["learner"], r["lesson"]): ([int(r[k]) for k in keys], [r[f"{k} outcome"] for k in keys], r["status"], _sanitize(r["reason"], klass))
        for r in rows
    }
    expected = {(learner, "01_first_run"): value for learner, value in EXPECTED_01.items()}
    not_submitted = ([0] * 5, [N] * 5, "not submitted", "no notebook for this lesson")
    expected.update({(learner, "02_log_metrics"): not_submitted for learner in EXPECTED_01 if learner != "mallory"})
    expected[("mallory", "02_log_metrics")] = MALLORY_02
    assert got == expected
    assert [(r["learner"], r["lesson"]) for r in rows] == sorted(expected)
    for r in rows:
        assert int(r["total"]) == sum(int(r[k]) for k in keys) and r["max"] == "5"
        assert re.fullmatch(r"\d+\.\d", r["seconds"])


def test_each_learner_has_a_report_naming_the_failure(graded: tuple[Path, Path, list[dict[str, str]]]) -> None:
    klass, out, rows = graded
    index = (out / "index.html").read_text(encoding="utf-8")
    for learner, (_, _, status, reason) in EXPECTED_01.items():
        page = (out / f"{learner}.html").read_text(encoding="utf-8")
        assert f'href="{learner}.html"' in index
        assert f">{status}<" in page
        for part in filter(None, reason.replace("<class>", str(klass)).split("; ")):
            assert html.escape(part) in page, part
        assert "<script" not in page and "http" not in page
    # What the learner saw is what the instructor reads.
    assert "✅ Correct — q1: Log parameters." in (out / "carol.html").read_text(encoding="utf-8")


def test_outputs_are_bounded_and_executed_notebooks_kept(graded: tuple[Path, Path, list[dict[str, str]]]) -> None:
    _, out, _ = graded
    flood = out / "notebooks" / "ivan" / "01_first_run.ipynb"
    assert flood.stat().st_size < 1_000_000
    assert "output dropped here: it does not fit in what is left of the notebook's output limit (256 KB)" in flood.read_text(encoding="utf-8")
    assert (out / "notebooks" / "carol" / "01_first_run.ipynb").is_file()
    assert not (out / "notebooks" / "mallory").exists()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporary files left


def test_the_stored_notebook_numbers_cells_as_the_report_does(graded: tuple[Path, Path, list[dict[str, str]]]) -> None:
    """erin's report says cell 21 raised: cell 21 of the executed notebook it links to holds that error
    (papermill's inserted error banner and anchor cells are gone)."""
    klass, out, _ = graded
    submitted = nbformat.read(klass / "erin" / "01_first_run.ipynb", as_version=4)
    executed = nbformat.read(out / "notebooks" / "erin" / "01_first_run.ipynb", as_version=4)
    assert [c.source for c in executed.cells] == [c.source for c in submitted.cells]
    assert [o.get("ename") for o in executed.cells[21 - 1].outputs if o.output_type == "error"] == ["RuntimeError"]
    assert not any("papermill-error-cell-tag" in c.metadata.get("tags", []) for c in executed.cells)


def test_forged_check_output_loses_to_the_re_check_and_the_report_says_so(graded: tuple[Path, Path, list[dict[str, str]]]) -> None:
    """peggy displayed a hand-made "correct" for q5 (store-only) without logging a model: the grader's own
    re-check of her store wins, and her page shows the re-check's message, not the forged one. quinn forged
    q4, which needs a notebook value: no re-check is possible, the scan flags it and the points stay."""
    _, out, rows = graded
    peggy = next(r for r in rows if r["learner"] == "peggy" and r["lesson"] == "01_first_run")
    assert (peggy["q5 outcome"], peggy["q5"], peggy["status"]) == (N, "0", "forged check output")
    page = (out / "peggy.html").read_text(encoding="utf-8")
    assert "✅ Correct — q5: done." not in page
    assert "⏳ Not attempted — q5: Log the Spark model. No run named &#x27;ex5-model&#x27;" in page
    quinn = next(r for r in rows if r["learner"] == "quinn" and r["lesson"] == "01_first_run")
    assert (quinn["q4 outcome"], quinn["total"], quinn["status"]) == (C, "5", "suspicious code")
