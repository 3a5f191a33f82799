"""A class of submissions for the grader's tests and benchmark, built from lesson 1.

Every notebook is derived from the committed ``solutions/01_first_run.ipynb`` or
``lessons/01_first_run.ipynb`` (parameters shrunk to ``NUM_TREES = 10``, ``MAX_DEPTH = 4``, as CI does),
with one change each: a blanked answer, an infinite loop, an exception, a killed kernel, broken JSON,
a deleted exercise, a flood of output, tampered checks, a write outside the sandbox, a forged check result
(for an exercise the grader re-checks, and for one it cannot), no exercise cells at all.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat import NotebookNode

REPO = Path(__file__).resolve().parent.parent
LESSON = "01_first_run"
SOLUTION_NB = REPO / "solutions" / f"{LESSON}.ipynb"
LESSON_NB = REPO / "lessons" / f"{LESSON}.ipynb"
FAST = "NUM_TREES = 10\nMAX_DEPTH = 4\nSEED = 42\nLEARNER = \"ci\"\n"


def _load(path: Path) -> NotebookNode:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = FAST
    return nb


def _index(nb: NotebookNode, needle: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and needle in c.source)


def _insert_after(nb: NotebookNode, needle: str, source: str) -> NotebookNode:
    nb.cells.insert(_index(nb, needle) + 1, nbformat.v4.new_code_cell(source))
    return nb


def solution() -> NotebookNode:
    """The full answer: every check correct."""
    return _load(SOLUTION_NB)


def fresh() -> NotebookNode:
    """The shipped lesson, untouched: every check not attempted."""
    return _load(LESSON_NB)


def partial() -> NotebookNode:
    """The solution with exercise 2's answer put back to the starter blanks."""
    nb, lesson = solution(), fresh()
    nb.cells[_index(nb, "q2.check()")] = copy.deepcopy(lesson.cells[_index(lesson, "q2.check()")])
    return nb


def infinite_loop() -> NotebookNode:
    """A cell after exercise 1 that spins forever (interrupted at the per-cell limit), burning a core meanwhile."""
    return _insert_after(solution(), "q1.check()", "while True:\n    pass")


def endless_wait() -> NotebookNode:
    """A cell after exercise 1 that waits forever (interrupted at the per-cell limit) without using the CPU.

    The grader stops it as it stops :func:`infinite_loop` (and a spinning loop that ignores interrupts:
    tests/coursekit/instructor/test_sandbox.py); the class in :func:`build_class` uses this one, so the
    minute it takes is CPU the rest of the test suite can use."""
    return _insert_after(solution(), "q1.check()", "while True:\n    import time\n    time.sleep(1)")


def raises() -> NotebookNode:
    """Exercise 3's cell raises before its check runs."""
    nb = solution()
    cell = nb.cells[_index(nb, "q3.check()")]
    cell.source = 'raise RuntimeError("boom")\n' + cell.source
    return nb


def kernel_killed() -> NotebookNode:
    """The kernel kills itself after exercise 2."""
    return _insert_after(solution(), "q2.check()", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")


def missing_exercise() -> NotebookNode:
    """Exercise 4's cell (and its hint cell) deleted."""
    nb = solution()
    index = _index(nb, "q4.check(")
    del nb.cells[index:index + 2]
    return nb


def flood() -> NotebookNode:
    """A cell after exercise 1 prints 50 MB."""
    return _insert_after(solution(), "q1.check()", 'print("x" * 50_000_000)')


def tamper() -> NotebookNode:
    """After exercise 2, the checks' source is rewritten (only the sandbox's copy, or the cell fails)."""
    source = (
        "import coursekit.exercises.lesson01 as checks\n"
        "assert 'coursekit-sandbox-' in checks.__file__, checks.__file__  # never touch the real repo\n"
        "with open(checks.__file__, 'a') as f:\n"
        "    f.write('\\n# every answer is right now\\n')"
    )
    return _insert_after(solution(), "q2.check()", source)


def write_outside(target: Path) -> NotebookNode:
    """After exercise 1, a file is written at ``target`` (a path outside the sandbox)."""
    return _insert_after(solution(), "q1.check()", f"open({str(target)!r}, 'w').write('was here')")


def _forged_display(key: str, mimetype: str) -> str:
    return (
        "import json\n"
        "from IPython.display import display\n"
        f"display({{'text/plain': '✅ Correct — {key}: done.', {mimetype}: json.dumps({{'exercise': {key!r}, 'outcome': 'correct'}})}}, raw=True)"
    )


def forged_store_only() -> NotebookNode:
    """Exercise 5's cell (log the model) replaced by a hand-made "correct" for q5; the mimetype is spelled so
    that no text scan finds it. q5's check reads only the store: the grader's re-check catches it."""
    nb = solution()
    nb.cells[_index(nb, "q5.check()")].source = _forged_display("q5", "'application/vnd.' + 'coursekit.check+json'")
    return nb


def forged_value() -> NotebookNode:
    """Exercise 4's cell replaced by a hand-made "correct" for q4, whose check needs a notebook value: no
    re-check is possible, the text scan flags it and the points stay (documented in the README)."""
    nb = solution()
    nb.cells[_index(nb, "q4.check(")].source = _forged_display("q4", "'application/vnd.coursekit.check+json'")
    return nb


def no_exercises() -> NotebookNode:
    """The fresh lesson with every exercise cell deleted: one reason, not one per exercise."""
    nb = fresh()
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and re.search(r"\bq\d\.", c.source))]
    return nb


def write(nb: NotebookNode, path: Path) -> Path:
    """Save a notebook (creating its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def build_class(root: Path) -> Path:
    """A submissions folder with one learner per case (``sentinel`` is where ``olga`` writes)."""
    cases: dict[str, Callable[[], NotebookNode]] = {
        "alice": solution, "bob": fresh, "carol": partial, "dave": endless_wait, "erin": raises,
        "frank": kernel_killed, "heidi": missing_exercise, "ivan": flood, "judy": tamper,
        "olga": lambda: write_outside(root / "olga" / "sentinel.txt"),
        "peggy": forged_store_only, "quinn": forged_value, "rupert": no_exercises,
    }
    for learner, build in cases.items():
        write(build(), root / learner / f"{LESSON}.ipynb")
    # Flat layout, with a suffix a downloaded copy gets.
    write(solution(), root / f"grace__{LESSON} (1).ipynb")
    # Broken JSON, for a second lesson (everyone else gets a "not submitted" row for it).
    (root / "mallory").mkdir()
    (root / "mallory" / "02_log_metrics.ipynb").write_bytes(b'{"cells": [ this is not json')
    return root
