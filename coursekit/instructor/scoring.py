"""Turn what happened in a sandbox into points: each exercise's outcome, the lesson's status and reasons.

The grading truth is the check output every ``qN.check()`` displays (mimetype
``application/vnd.coursekit.check+json``), read from the runner's per-cell events; the last one per
exercise counts (a learner may re-run). An exercise whose check never displayed is "not attempted" when
its cell ran cleanly (or no cell calls it and the notebook ran to the end), and "error" when its cell
raised or was never reached because execution stopped.

The exercises of a lesson are the ``qN.check(`` calls of its solution notebook; points default to 1 per
exercise and can be changed in a TOML file (:func:`load_points`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from coursekit.engine import TIMEOUT_ENAME
from coursekit.instructor.recheck import recheckable
from coursekit.instructor.sandbox import Execution

CORRECT, INCORRECT, NOT_ATTEMPTED, ERROR = "correct", "incorrect", "not attempted", "error"
OUTCOMES = (CORRECT, INCORRECT, NOT_ATTEMPTED, ERROR)

# Lesson statuses, most serious first: a row's ``status`` is the first that applies.
STATUSES = (
    "not submitted", "invalid notebook", "tampered", "forged check output", "wrote outside its folder", "suspicious code",
    "memory limit", "timeout", "kernel died", "output too large", "cell errors", "changed after check", "missing exercise",
    "re-check failed", "ok",
)
_CHECK_CALL = re.compile(r"\b(q\d+)\.check\(")
# Code no lesson needs, but code forging or patching a check result would: flagged for review, points kept.
_SUSPICIOUS = re.compile(
    r"vnd\.coursekit|show_result|CheckResult|\.(?:evaluate|result|check)\s*=(?!=)|__file__|coursekit\.exercises\.(?:checks|verdicts)"
    r"|setattr\(\s*(?:q\d+|coursekit)"
)


class PointsError(ValueError):
    """The points file names a lesson or exercise that does not exist, or a value that is not a number."""


def suspicious(cells: list[str]) -> list[tuple[int, str]]:
    """(cell index, matched text) for code that reaches into the checks' machinery (see ``_SUSPICIOUS``)."""
    return [(i, m.group(0).strip()) for i, source in enumerate(cells) for m in _SUSPICIOUS.finditer(source)]


def check_calls(source: str) -> list[str]:
    """Exercise keys whose ``.check(`` is called in ``source``, in order of first call."""
    return list(dict.fromkeys(_CHECK_CALL.findall(source)))


def exercises_of(solution: Path) -> list[str]:
    """The exercise keys of a lesson: every ``qN.check(`` in its solution's code cells, sorted by N."""
    nb = nbformat.read(solution, as_version=4)
    keys = check_calls("\n".join(c.source for c in nb.cells if c.cell_type == "code"))
    return sorted(keys, key=lambda k: int(k[1:]))


def load_points(path: Path | None, exercises: Mapping[str, list[str]]) -> dict[str, dict[str, float]]:
    """Points per lesson and exercise: 1 each, overridden by ``path`` (TOML: ``[01_first_run]`` ``q1 = 2``)."""
    points = {lesson: {key: 1.0 for key in keys} for lesson, keys in exercises.items()}
    if path is None:
        return points
    with path.open("rb") as handle:
        table = tomllib.load(handle)
    for lesson, values in table.items():
        if lesson not in points or not isinstance(values, dict):
            raise PointsError(f"{path}: [{lesson}] is not a lesson (known: {', '.join(sorted(points))})")
        for key, value in values.items():
            if key not in points[lesson]:
                raise PointsError(f"{path}: [{lesson}] has no exercise {key} (known: {', '.join(points[lesson])})")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise PointsError(f"{path}: [{lesson}] {key} = {value!r} is not a non-negative number")
            points[lesson][key] = float(value)
    return points


@dataclass
class ExerciseResult:
    """One exercise of one submission."""

    key: str
    outcome: str
    points: float
    max_points: float
    message: str = ""


@dataclass
class LessonResult:
    """One learner's submission for one lesson, graded."""

    learner: str
    lesson: str
    status: str
    exercises: list[ExerciseResult]
    reasons: list[str] = field(default_factory=list)
    source: str = ""
    seconds: float = 0.0

    @property
    def total(self) -> float:
        """Points earned."""
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> float:
        """Points available."""
        return sum(e.max_points for e in self.exercises)

    @property
    def reason(self) -> str:
        """All reasons in one line (the gradebook's ``reason`` column)."""
        return "; ".join(self.reasons)


def unexecuted(learner: str, lesson: str, status: str, reason: str, points: Mapping[str, float], source: str = "") -> LessonResult:
    """A result for a submission that never ran (missing, or not a notebook): every exercise scores 0."""
    outcome = NOT_ATTEMPTED if status == "not submitted" else ERROR
    exercises = [ExerciseResult(key, outcome, 0.0, value, reason) for key, value in points.items()]
    return LessonResult(learner, lesson, status, exercises, [reason] if reason else [], source)


def _cell_label(index: int, cells: list[str] | None = None) -> str:
    """``cell 12`` (counting every cell from 1, as it appears in Jupyter), plus its first line when known."""
    label = f"cell {index + 1}"
    if cells and 0 <= index < len(cells) and cells[index].strip():
        first = cells[index].strip().splitlines()[0]
        label += f" (`{first[:60]}{'…' if len(first) > 60 else ''}`)"
    return label


class _Run:
    """The runner's events, indexed by cell."""

    def __init__(self, execution: Execution) -> None:
        self.started: list[int] = []
        self.executed: dict[int, dict[str, Any]] = {}
        self.end: dict[str, Any] | None = None
        self.tamper_cell: int | None = None
        self.outside: list[tuple[str, int | None]] = []
        for event in execution.events:
            kind, cell = event.get("event"), event.get("cell")
            if kind == "start" and isinstance(cell, int):
                self.started.append(cell)
            elif kind == "executed" and isinstance(cell, int):
                self.executed[cell] = event
            elif kind == "end":
                self.end = event
            if event.get("tampered") and self.tamper_cell is None:
                self.tamper_cell = cell if isinstance(cell, int) else (self.started[-1] if self.started else -1)
            self.outside.extend((path, cell if isinstance(cell, int) else None) for path in event.get("outside", []))
        if execution.tampered and self.tamper_cell is None:
            # Changed in a cell whose completion was never recorded (killed mid-cell): blame the last started cell.
            self.tamper_cell = self.started[-1] if self.started else -1
        self.stopped_in = self.started[-1] if self.started and self.started[-1] not in self.executed else None

    def counted_checks(self) -> dict[str, dict[str, Any]]:
        """Last check result per exercise (with the ``cell`` that displayed it), ignoring cells from the tampering one on."""
        last: dict[str, dict[str, Any]] = {}
        for cell in sorted(self.executed):
            if self.tamper_cell is not None and cell >= self.tamper_cell:
                break
            for check in self.executed[cell].get("checks", []):
                last[check["exercise"]] = {**check, "cell": cell}
        return last


def score(learner: str, lesson: str, points: Mapping[str, float], cells: list[str], execution: Execution,
          blamed_outside: list[str] | None = None) -> LessonResult:
    """Grade one executed submission. ``cells`` are the submitted code cells' sources by cell index
    (non-code cells as empty strings); ``blamed_outside`` are outside paths this submission changed."""
    run = _Run(execution)
    checks = run.counted_checks()
    completed = run.end is not None and run.end.get("status") == "completed" and execution.killed is None
    stop = _stop_reason(run, execution, cells)
    reasons: list[str] = []
    statuses: set[str] = set()

    if run.tamper_cell is not None:
        statuses.add("tampered")
        where = _cell_label(run.tamper_cell, cells) if run.tamper_cell >= 0 else "the notebook"
        reasons.append(f"tampered checks: {where} changed the grader's copy of coursekit; only checks before it count")
    if blamed_outside:
        statuses.add("wrote outside its folder")
        shown = ", ".join(blamed_outside[:3]) + (f" and {len(blamed_outside) - 3} more" if len(blamed_outside) > 3 else "")
        reasons.append(f"wrote outside its folder: {shown}")
    flagged: dict[int, list[str]] = {}
    for cell, token in suspicious(cells):
        if token not in flagged.setdefault(cell, []):
            flagged[cell].append(token)
    for cell, tokens in flagged.items():
        statuses.add("suspicious code")
        shown = ", ".join(f"`{t}`" for t in tokens)
        # With tampering, checks from the tampering cell on are already void: "points kept" would contradict that.
        verdict = "review the executed notebook" if run.tamper_cell is not None else "points kept, review the executed notebook"
        reasons.append(f"suspicious code: {_cell_label(cell, cells)} contains {shown}; {verdict}")
    if execution.killed:
        statuses.add("memory limit" if execution.killed.startswith("memory") else "timeout")
        reasons.append(execution.killed + (f" (in {_cell_label(run.stopped_in, cells)})" if run.stopped_in is not None else ""))
    elif run.end is None:
        statuses.add("kernel died")
        reasons.append("the runner stopped without finishing" + (f" ({execution.runner_error})" if execution.runner_error else ""))
    elif run.end.get("status") != "completed":
        statuses.add("kernel died" if run.end.get("status") == "kernel died" else "timeout" if run.end.get("status") == "timeout" else "cell errors")
        reasons.append(_stop_reason(run, execution, cells))
    for cell, event in sorted(run.executed.items()):
        error = event.get("error")
        if error and error.startswith(TIMEOUT_ENAME):
            statuses.add("timeout")
            reasons.append(f"{_cell_label(cell, cells)} timed out ({error.split(': ', 1)[-1]}) and was interrupted; later cells still ran")
        elif error:
            statuses.add("cell errors")
            reasons.append(f"{_cell_label(cell, cells)} raised {error}")
    if any(e.get("truncated") for e in execution.events):
        statuses.add("output too large")
        reasons.append("output too large: outputs beyond the limit were dropped from the stored notebook")

    results = []
    missing: list[str] = []
    # {"exercises": {...}} from the grader's re-check, {"error": why} when it failed, {} when none was asked for.
    recheck_report = execution.rechecked or {}
    rechecked: Mapping[str, Mapping[str, Any]] = recheck_report.get("exercises") or {}
    if recheck_report.get("error") and any(key in checks for key in recheckable(lesson)):
        statuses.add("re-check failed")
        reasons.append(f"re-check failed: the grader could not re-read this notebook's MLflow store ({recheck_report['error']}); "
                       "the check results the notebook displayed count")
    for key, value in points.items():
        where = [i for i, source in enumerate(cells) if re.search(rf"\b{key}\.check\(", source)]
        if key in checks:
            outcome = checks[key]["outcome"] if checks[key]["outcome"] in OUTCOMES[:3] else INCORRECT
            message = checks[key].get("message", "")
            again = rechecked.get(key)
            if again and again.get("outcome") in OUTCOMES[:3] and again["outcome"] != outcome:
                status, reason = _disagreement(key, checks[key], again, cells, flagged)
                statuses.add(status)
                reasons.append(reason)
                outcome, message = again["outcome"], str(again.get("message", ""))
        elif not where:
            outcome = NOT_ATTEMPTED if completed else ERROR
            message = f"no cell calls {key}.check()" + ("" if completed else f"; execution stopped: {stop}")
            missing.append(key)
            statuses.add("missing exercise")
        elif run.tamper_cell is not None and max(where) >= run.tamper_cell:
            outcome, message = ERROR, "not counted: the checks were changed before this exercise's check ran"
        elif any(i in run.executed and not run.executed[i].get("error") for i in where):
            outcome, message = NOT_ATTEMPTED, f"{_cell_label(where[-1])} ran but {key}.check() displayed nothing"
        elif any(i in run.executed for i in where):
            cell = next(i for i in where if i in run.executed)
            outcome, message = ERROR, f"{_cell_label(cell)} raised {run.executed[cell].get('error')} before {key}.check() ran"
        else:
            outcome, message = ERROR, f"{_cell_label(where[0])} never ran: {stop}"
        results.append(ExerciseResult(key, outcome, value if outcome == CORRECT else 0.0, value, message))
    if missing:
        reasons.append(_missing_reason(missing, len(points)))

    status = next((s for s in STATUSES if s in statuses), "ok")
    return LessonResult(learner, lesson, status, results, reasons, seconds=execution.seconds)


def _stop_reason(run: _Run, execution: Execution, cells: list[str] | None = None) -> str:
    if execution.killed:
        return execution.killed
    if run.end is None:
        return "the runner stopped without finishing"
    status, detail = run.end.get("status"), run.end.get("detail", "")
    where = f" in {_cell_label(run.stopped_in, cells)}" if run.stopped_in is not None else ""
    if status == "completed":
        return "it ran to the end"
    return f"{status}{where}" + (f": {detail}" if detail else "")


def _disagreement(key: str, claimed: Mapping[str, Any], again: Mapping[str, Any], cells: list[str],
                  flagged: Mapping[int, list[str]]) -> tuple[str, str]:
    """Status and reason when the grader's re-check of ``key`` disagrees with what the notebook displayed.

    "forged check output" when the displaying cell never calls ``key.check(`` or reaches into the checks'
    machinery; otherwise the store changed after the check ran ("changed after check"). Either way the
    re-check counts.
    """
    cell = int(claimed.get("cell", -1))
    source = cells[cell] if 0 <= cell < len(cells) else ""
    shown = f"{_cell_label(cell, cells)} displayed '{claimed.get('outcome')}' for {key}"
    store = f"the grader's re-check of the MLflow store at the end says '{again['outcome']}'; the re-check counts"
    if key not in check_calls(source) or cell in flagged:
        return "forged check output", f"forged check output: {shown}, but {store}"
    return "changed after check", f"changed after check: {shown}, but {store} (a later cell changed or replaced the run?)"


def _missing_reason(missing: list[str], total: int) -> str:
    """One reason for every exercise whose check no cell calls."""
    calls = ", ".join(f"{key}.check()" for key in missing)
    if len(missing) == total and total > 1:
        return (f"missing exercises: no cell calls any of this lesson's checks ({calls}); "
                "is this the right lesson's notebook, or were its exercise cells deleted?")
    return f"missing exercise{'s' if len(missing) > 1 else ''}: no cell calls {calls}"
