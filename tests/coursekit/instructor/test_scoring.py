"""From a run's events to points: the last check counts, failures have reasons, tampering voids the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

from coursekit.instructor.sandbox import Execution
from coursekit.instructor.scoring import PointsError, check_calls, exercises_of, load_points, score, suspicious, unexecuted

POINTS = {"q1": 1.0, "q2": 2.0, "q3": 1.0}
# cell 0: markdown, 1: setup, 2: q1, 3: q2, 4: q3
CELLS = ["", "import x", "answer()\nq1.check()", "q2.check(best)", "q3.check()"]


def _check(key: str, outcome: str) -> dict[str, str]:
    return {"exercise": key, "outcome": outcome, "message": f"{key} said {outcome}"}


def _executed(cell: int, *checks: dict[str, str], error: str | None = None, **extra: Any) -> list[dict[str, Any]]:
    return [{"event": "start", "cell": cell}, {"event": "executed", "cell": cell, "checks": list(checks), "error": error, "t": cell, **extra}]


def _end(status: str = "completed", detail: str = "") -> dict[str, Any]:
    return {"event": "end", "status": status, "detail": detail}


def _score(events: list[dict[str, Any]], cells: list[str] = CELLS, **kwargs: Any) -> Any:
    return score("ann", "01_first_run", POINTS, cells, Execution(events=events, **kwargs))


def test_a_clean_run_scores_each_check_and_the_last_result_counts() -> None:
    events = [*_executed(1), *_executed(2, _check("q1", "incorrect"), _check("q1", "correct")),
              *_executed(3, _check("q2", "correct")), *_executed(4, _check("q3", "not attempted")), _end()]
    result = _score(events)
    assert [(e.key, e.outcome, e.points) for e in result.exercises] == [("q1", "correct", 1), ("q2", "correct", 2), ("q3", "not attempted", 0)]
    assert (result.status, result.reasons, result.total, result.max_points) == ("ok", [], 3, 4)
    assert result.exercises[0].message == "q1 said correct"


def test_a_cell_error_costs_only_its_own_exercise() -> None:
    events = [*_executed(1), *_executed(2, error="NameError: name 'x' is not defined"), *_executed(3, _check("q2", "correct")),
              *_executed(4, _check("q3", "correct")), _end()]
    result = _score(events)
    assert [e.outcome for e in result.exercises] == ["error", "correct", "correct"]
    assert result.status == "cell errors"
    assert result.reasons == ["cell 3 (`answer()`) raised NameError: name 'x' is not defined"]
    assert "raised NameError" in result.exercises[0].message


def test_a_dead_kernel_keeps_earlier_points_and_marks_the_rest_as_errors() -> None:
    events = [*_executed(1), *_executed(2, _check("q1", "correct")), {"event": "start", "cell": 3},
              _end("kernel died", "the kernel process exited during a cell")]
    result = _score(events)
    assert [e.outcome for e in result.exercises] == ["correct", "error", "error"]
    assert result.status == "kernel died"
    assert result.reasons == ["kernel died in cell 4 (`q2.check(best)`): the kernel process exited during a cell"]
    assert result.exercises[2].message.startswith("cell 5 never ran: kernel died in cell 4")


def test_a_run_killed_by_the_watchdog_names_the_limit() -> None:
    events = [*_executed(1), *_executed(2, _check("q1", "correct")), {"event": "start", "cell": 3}]
    result = _score(events, killed="memory limit: the kernel's processes used 7000 MB (limit 6144 MB)")
    assert result.status == "memory limit"
    assert result.reasons == ["memory limit: the kernel's processes used 7000 MB (limit 6144 MB) (in cell 4 (`q2.check(best)`))"]
    assert [e.outcome for e in result.exercises] == ["correct", "error", "error"]
    assert _score(events, killed="notebook time limit: still running after 10 s").status == "timeout"


def test_an_interrupted_cell_is_a_timeout_and_later_cells_still_count() -> None:
    events = [*_executed(1, error="CellTimeout: the cell ran longer than 5 s"), *_executed(2, _check("q1", "correct")),
              *_executed(3, _check("q2", "correct")), *_executed(4, _check("q3", "correct")), _end()]
    result = _score(events)
    assert (result.status, result.total) == ("timeout", 4)
    assert result.reasons == ["cell 2 (`import x`) timed out (the cell ran longer than 5 s) and was interrupted; later cells still ran"]


def test_tampering_voids_every_check_from_the_tampering_cell_on() -> None:
    events = [*_executed(1), *_executed(2, _check("q1", "correct")), *_executed(3, _check("q2", "correct"), tampered=True),
              *_executed(4, _check("q3", "correct")), _end()]
    result = _score(events, tampered=True)
    assert [e.outcome for e in result.exercises] == ["correct", "error", "error"]
    assert (result.status, result.total) == ("tampered", 1)
    assert result.reasons[0].startswith("tampered checks: cell 4 (`q2.check(best)`) changed the grader's copy")


def test_tampering_the_runner_did_not_pin_down_blames_the_last_started_cell() -> None:
    events = [*_executed(1), *_executed(2, _check("q1", "correct")), {"event": "start", "cell": 3}]
    result = _score(events, tampered=True, killed="notebook time limit: still running after 10 s")
    assert result.status == "tampered"
    assert [e.outcome for e in result.exercises] == ["correct", "error", "error"]


def test_a_missing_check_is_not_attempted_after_a_clean_run_and_an_error_after_a_crash() -> None:
    cells = ["", "import x", "q1.check()", "q2 = None", "q3.check()"]
    events = [*_executed(1), *_executed(2, _check("q1", "correct")), *_executed(3), *_executed(4, _check("q3", "correct")), _end()]
    result = _score(events, cells)
    assert [e.outcome for e in result.exercises] == ["correct", "not attempted", "correct"]
    assert (result.status, result.reasons) == ("missing exercise", ["missing exercise: no cell calls q2.check()"])
    crashed = _score([*_executed(1), _end("kernel died")], cells)
    assert [e.outcome for e in crashed.exercises] == ["error", "error", "error"]


def test_a_check_cell_that_ran_without_displaying_is_not_attempted() -> None:
    events = [*_executed(1), *_executed(2), *_executed(3, _check("q2", "correct")), *_executed(4, _check("q3", "bogus")), _end()]
    result = _score(events)
    assert [e.outcome for e in result.exercises] == ["not attempted", "correct", "incorrect"]  # unknown outcomes never score


def test_outside_writes_truncation_and_a_vanished_runner_are_reported() -> None:
    events = [*_executed(1, truncated=True), *_executed(2, _check("q1", "correct"))]
    result = score("ann", "01", POINTS, CELLS, Execution(events=events, runner_error="MemoryError"), ["/x/a", "/x/b", "/x/c", "/x/d"])
    assert result.status == "wrote outside its folder"
    assert result.reasons == [
        "wrote outside its folder: /x/a, /x/b, /x/c and 1 more",
        "the runner stopped without finishing (MemoryError)",
        "output too large: outputs beyond the limit were dropped from the stored notebook",
    ]


def test_unexecuted_rows() -> None:
    missing = unexecuted("ann", "02", "not submitted", "no notebook for this lesson", POINTS)
    assert [e.outcome for e in missing.exercises] == ["not attempted"] * 3 and missing.max_points == 4
    broken = unexecuted("ann", "02", "invalid notebook", "invalid notebook: not JSON", POINTS, "x.ipynb")
    assert [e.outcome for e in broken.exercises] == ["error"] * 3 and broken.reason == "invalid notebook: not JSON"


def test_exercises_come_from_the_check_calls_of_the_solution(tmp_path: Path) -> None:
    assert check_calls("q2.check()\nq10.check(run)\n# q2.hint()\nq2.check()\nxq3.check()") == ["q2", "q10"]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("q9.check() in prose does not count"),
        nbformat.v4.new_code_cell("q10.check()"), nbformat.v4.new_code_cell("q2.check(x)"),
    ])
    nbformat.write(nb, tmp_path / "s.ipynb")
    assert exercises_of(tmp_path / "s.ipynb") == ["q2", "q10"]


def test_points_default_to_one_and_a_toml_file_overrides_them(tmp_path: Path) -> None:
    exercises = {"01_first_run": ["q1", "q2"], "02_log_metrics": ["q1"]}
    assert load_points(None, exercises) == {"01_first_run": {"q1": 1.0, "q2": 1.0}, "02_log_metrics": {"q1": 1.0}}
    path = tmp_path / "points.toml"
    path.write_text("[01_first_run]\nq2 = 3\n\n[02_log_metrics]\nq1 = 0.5\n")
    assert load_points(path, exercises) == {"01_first_run": {"q1": 1.0, "q2": 3.0}, "02_log_metrics": {"q1": 0.5}}


@pytest.mark.parametrize(("text", "message"), [
    ("[01_frist_run]\nq1 = 2\n", r"\[01_frist_run\] is not a lesson"),
    ("[01_first_run]\nq7 = 2\n", r"has no exercise q7 \(known: q1, q2\)"),
    ("[01_first_run]\nq1 = \"two\"\n", r"q1 = 'two' is not a non-negative number"),
    ("[01_first_run]\nq1 = -1\n", "is not a non-negative number"),
    ("[01_first_run]\nq1 = true\n", "is not a non-negative number"),
])
def test_typos_in_the_points_file_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "points.toml"
    path.write_text(text)
    with pytest.raises(PointsError, match=message):
        load_points(path, {"01_first_run": ["q1", "q2"]})


def test_code_that_reaches_into_the_checks_is_flagged_but_keeps_its_points() -> None:
    cells = ["", "import x", "q1.evaluate = lambda: 1\nq1.check()\nprint(__file__, __file__)", "q2.check(best)", "q3.check()"]
    events = [*_executed(1), *_executed(2, _check("q1", "correct")), *_executed(3, _check("q2", "correct")),
              *_executed(4, _check("q3", "correct")), _end()]
    result = _score(events, cells)
    assert (result.status, result.total) == ("suspicious code", 4)
    assert result.reasons == ["suspicious code: cell 3 (`q1.evaluate = lambda: 1`) contains `.evaluate =`, `__file__`; points kept, review the executed notebook"]
    assert suspicious([
        "x == 1", "q1.check()", "a.result == b", "import coursekit.exercises.checks as c", 'display({"application/vnd.coursekit.check+json": 1}, raw=True)',
        "q2.check=f", 'setattr(q1, "evaluate", f)', "print(__file__)",
    ]) == [(3, "coursekit.exercises.checks"), (4, "vnd.coursekit"), (5, ".check="), (6, "setattr(q1"), (7, "__file__")]


def _rechecked(**outcomes: str) -> dict[str, Any]:
    return {"exercises": {key: {"outcome": outcome, "message": f"re-check of {key}: {outcome}"} for key, outcome in outcomes.items()}}


def _score_rechecked(events: list[dict[str, Any]], rechecked: dict[str, Any], cells: list[str] = CELLS) -> Any:
    execution = Execution(events=events)
    execution.rechecked = rechecked
    return score("ann", "01_first_run", POINTS, cells, execution)


def test_a_forged_check_output_loses_to_the_grader_re_check() -> None:
    cells = [*CELLS, 'display({"text/plain": "correct"}, raw=True)']
    events = [*_executed(1), *_executed(2, _check("q1", "correct")), *_executed(3, _check("q2", "correct")),
              *_executed(4, _check("q3", "not attempted")), *_executed(5, _check("q3", "correct")), _end()]
    result = _score_rechecked(events, _rechecked(q1="correct", q3="not attempted"), cells)
    assert [(e.key, e.outcome, e.points) for e in result.exercises] == [
        ("q1", "correct", 1), ("q2", "correct", 2), ("q3", "not attempted", 0)]
    assert result.exercises[2].message == "re-check of q3: not attempted"
    assert result.status == "forged check output"
    assert result.reasons == [
        "forged check output: cell 6 (`display({\"text/plain\": \"correct\"}, raw=True)`) displayed 'correct' for q3, but "
        "the grader's re-check of the MLflow store at the end says 'not attempted'; the re-check counts"]


def test_a_forged_output_in_the_check_cell_itself_is_still_forged_when_the_cell_reaches_into_the_checks() -> None:
    cells = ["", "import x", "q1.check()", "q2.check(best)", 'q3.check()\ndisplay({"application/vnd.coursekit.check+json": "{}"}, raw=True)']
    events = [*_executed(1), *_executed(2, _check("q1", "correct")), *_executed(4, _check("q3", "incorrect"), _check("q3", "correct")), _end()]
    result = _score_rechecked(events, _rechecked(q1="correct", q3="incorrect"), cells)
    assert (result.status, result.exercises[2].outcome) == ("forged check output", "incorrect")
    assert any(r.startswith("suspicious code: cell 5") and r.endswith("points kept, review the executed notebook") for r in result.reasons)


def test_a_store_changed_after_its_check_is_re_checked_without_calling_it_forged() -> None:
    events = [*_executed(1), *_executed(2, _check("q1", "incorrect")), *_executed(3, _check("q2", "correct")),
              *_executed(4, _check("q3", "correct")), _end()]
    result = _score_rechecked(events, _rechecked(q1="correct", q3="incorrect"))
    assert [(e.outcome, e.points) for e in result.exercises] == [("correct", 1), ("correct", 2), ("incorrect", 0)]
    assert result.status == "changed after check"
    assert [r.split(":")[0] for r in result.reasons] == ["changed after check", "changed after check"]
    assert "cell 5 (`q3.check()`) displayed 'correct' for q3" in result.reasons[1]


def test_agreement_and_exercises_needing_notebook_values_keep_the_displayed_result() -> None:
    # q2 needs a notebook value: the re-check never covers it, so its (possibly forged) display counts.
    events = [*_executed(1), *_executed(2, _check("q1", "correct")), *_executed(3, _check("q2", "correct")),
              *_executed(4, _check("q3", "correct")), _end()]
    result = _score_rechecked(events, _rechecked(q1="correct", q3="correct"))
    assert (result.status, result.reasons, result.total) == ("ok", [], 4)
    assert result.exercises[0].message == "q1 said correct"  # the learner's own message when they agree


def test_a_failed_re_check_is_reported_and_the_displayed_results_count() -> None:
    events = [*_executed(1), *_executed(2, _check("q1", "correct")), _end()]
    result = _score_rechecked(events, {"error": "TimeoutError: the re-check took over 180 s"})
    assert (result.status, result.exercises[0].outcome) == ("re-check failed", "correct")
    assert result.reasons[0].startswith("re-check failed: the grader could not re-read this notebook's MLflow store (TimeoutError")
    # No re-check asked for (a unit test, a lesson without store-only checks): nothing to report.
    assert not any(r.startswith("re-check") for r in _score_rechecked(events, {}).reasons)


def test_no_exercise_cells_at_all_is_one_reason_not_one_per_exercise() -> None:
    cells = ["", "import x", "print(1)", "", ""]
    result = _score([*_executed(1), *_executed(2), _end()], cells)
    assert result.status == "missing exercise"
    assert result.reasons == [
        "missing exercises: no cell calls any of this lesson's checks (q1.check(), q2.check(), q3.check()); "
        "is this the right lesson's notebook, or were its exercise cells deleted?"]
    two_missing = _score([*_executed(1), *_executed(2, _check("q1", "correct")), _end()], ["", "import x", "q1.check()", "", ""])
    assert two_missing.reasons == ["missing exercises: no cell calls q2.check(), q3.check()"]


def test_a_tampered_notebook_never_says_points_kept() -> None:
    cells = ["", "import coursekit.exercises.checks as c", "q1.check()", "open(c.__file__, 'a').write('#')\nq2.check(best)", "q3.check()"]
    events = [*_executed(1), *_executed(2, _check("q1", "correct")), *_executed(3, _check("q2", "correct"), tampered=True),
              *_executed(4, _check("q3", "correct")), _end()]
    result = _score(events, cells, tampered=True)
    assert result.status == "tampered" and result.total == 1
    assert not any("points kept" in r for r in result.reasons)
    assert [r.split(":")[0] for r in result.reasons] == ["tampered checks", "suspicious code", "suspicious code"]
