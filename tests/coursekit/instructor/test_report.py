"""HTML reports: readable, self-contained, and everything a learner wrote is escaped."""

from __future__ import annotations

from pathlib import Path

from coursekit.instructor.report import index_page, learner_page, page_name, write_reports
from coursekit.instructor.scoring import ExerciseResult, LessonResult

HOSTILE = '<script>alert("x")</script>'


def _results() -> list[LessonResult]:
    return [
        LessonResult("ann", "01_first_run", "cell errors", [
            ExerciseResult("q1", "correct", 1, 1, "✅ Correct — q1: Log parameters."),
            ExerciseResult("q2", "error", 0, 2, f"cell 5 raised ValueError: {HOSTILE}"),
        ], [f"cell 5 raised ValueError: {HOSTILE}"], "01_first_run.ipynb"),
        LessonResult(HOSTILE, "01_first_run", "ok", [ExerciseResult("q1", "not attempted", 0, 1, "⏳")]),
    ]


def test_page_names_are_safe_file_names() -> None:
    assert page_name("ann") == "ann.html"
    assert page_name("../../etc/passwd") == "_.._etc_passwd.html"
    assert page_name("index") == "learner-index.html"
    assert page_name("") == "_.html"


def test_learner_page_shows_outcomes_points_messages_and_reasons() -> None:
    page = learner_page("ann", [_results()[0]], {"01_first_run": "notebooks/ann/01_first_run.ipynb"})
    assert "<h1>ann — 1 / 3 points</h1>" in page
    assert "✅ Correct — q1: Log parameters." in page
    assert "0 / 2" in page and "⚠ error" in page
    assert "cell 5 raised ValueError: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<script" not in page
    assert 'href="notebooks/ann/01_first_run.ipynb"' in page


def test_pages_are_self_contained_and_escape_learner_names(tmp_path: Path) -> None:
    written = write_reports(_results(), tmp_path)
    assert sorted(p.name for p in written) == sorted(["ann.html", page_name(HOSTILE), "index.html"])
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert "<script" not in text and "http" not in text and "<link" not in text
    index = index_page(_results())
    assert f'href="{page_name(HOSTILE)}"' in index
    assert "&lt;script&gt;" in index
    assert "1 / 3" in index
