"""Lessons are generated from solutions, and the committed ones are in sync."""

from __future__ import annotations

import nbformat
import pytest
from nbrun import LESSONS, SOLUTIONS

from coursekit.authoring.generate import DEFAULT_STUB, generated_text, lesson_from_solution, main


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_committed_lesson_is_the_freshly_generated_one(solution) -> None:
    lesson = solution.parent.parent / "lessons" / solution.name
    assert lesson.exists(), f"run: python -m coursekit.authoring.generate ({lesson.name} is missing)"
    assert lesson.read_text(encoding="utf-8") == generated_text(solution), "run: python -m coursekit.authoring.generate"


def test_check_mode_reports_in_sync() -> None:
    assert main(["--check"]) == 0


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lessons_ship_clean_without_answers(lesson) -> None:
    nb = nbformat.read(lesson, as_version=4)
    text = lesson.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in text and "#>" not in text
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert any("parameters" in c.metadata.get("tags", []) for c in code)
    assert nb.metadata.kernelspec.name == "mlflow-spark-course"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solutions_keep_their_validated_outputs(solution) -> None:
    nb = nbformat.read(solution, as_version=4)
    checked = [c for c in nb.cells if "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked, "nbval needs cells tagged nbval-check-output"
    assert all(c.outputs for c in checked)


def _solution(source: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_starter_lines_replace_the_solution_region_with_indentation() -> None:
    nb = _solution(
        'with run():\n    ### BEGIN SOLUTION\n    #> log(____)\n    log("answer")\n    ### END SOLUTION\ncheck()'
    )
    out = lesson_from_solution(nb)
    assert out.cells[0].source == "with run():\n    log(____)\ncheck()"


def test_region_without_starter_gets_the_default_stub() -> None:
    out = lesson_from_solution(_solution("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    assert out.cells[0].source == DEFAULT_STUB
    assert "raise NotImplementedError" not in out.cells[0].source


def test_cells_tagged_remove_from_lesson_are_dropped() -> None:
    nb = _solution("print('for instructors')")
    nb.cells[0].metadata["tags"] = ["remove-from-lesson"]
    nb.cells.append(nbformat.v4.new_markdown_cell("kept"))
    out = lesson_from_solution(nb)
    assert [c.source for c in out.cells] == ["kept"]
    assert out.metadata.kernelspec.name == "mlflow-spark-course"
