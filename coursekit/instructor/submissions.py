"""Find the submitted notebooks in a folder and tell which learner and lesson each one is.

Two layouts are accepted, and can be mixed:

* ``SUBMISSIONS/<learner>/<NN_topic>.ipynb`` (a folder per learner; sub-folders are searched too);
* ``SUBMISSIONS/<learner>__<NN_topic>.ipynb`` (flat files, learner and lesson separated by two underscores).

The lesson is the solution stem the file name starts with, so ``01_first_run-Copy1.ipynb`` and
``01_first_run (1).ipynb`` are lesson ``01_first_run``. When a learner has several files for one lesson,
the exact name wins, else the most recently modified one; the others are named in the row's reason.
Every file's bytes are read here, before anything is executed, so no submission can change another.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FLAT_SEPARATOR = "__"


@dataclass(frozen=True)
class Submission:
    """One learner's notebook for one lesson, with its bytes as they were before grading started."""

    learner: str
    lesson: str
    path: Path
    data: bytes
    note: str = ""


def lesson_of(stem: str, lessons: Iterable[str]) -> str | None:
    """The lesson whose stem ``stem`` starts with (not followed by a letter or digit), or None."""
    for lesson in sorted(lessons, key=len, reverse=True):
        if re.match(rf"{re.escape(lesson)}(?![A-Za-z0-9])", stem):
            return lesson
    return None


def _candidates(root: Path) -> list[tuple[str, Path, str]]:
    """(learner, path, stem without the learner) for every notebook under ``root``."""
    found = []
    for path in sorted(root.rglob("*.ipynb")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue  # .ipynb_checkpoints and other hidden folders
        if len(relative.parts) > 1:
            found.append((relative.parts[0], path, path.stem))
        elif FLAT_SEPARATOR in path.stem:
            learner, _, stem = path.stem.partition(FLAT_SEPARATOR)
            found.append((learner, path, stem))
        else:
            found.append(("", path, path.stem))
    return found


def _pick(lesson: str, files: list[tuple[Path, str]]) -> tuple[Path, str]:
    exact = [path for path, stem in files if stem == lesson]
    chosen = exact[0] if exact else max((path for path, _ in files), key=lambda p: p.stat().st_mtime)
    others = [path.name for path, _ in files if path != chosen]
    note = f"several files for this lesson: graded {chosen.name}, ignored {', '.join(others)}" if others else ""
    return chosen, note


def discover(root: Path, lessons: Iterable[str]) -> tuple[list[Submission], list[str]]:
    """Every submission under ``root`` (bytes read now) and the files that were ignored, with why."""
    lessons = list(lessons)
    grouped: dict[tuple[str, str], list[tuple[Path, str]]] = {}
    ignored: list[str] = []
    for learner, path, stem in _candidates(root):
        lesson = lesson_of(stem, lessons)
        if not learner:
            ignored.append(f"{path.name}: put it in a folder named after the learner, or name it <learner>__<lesson>.ipynb")
        elif lesson is None:
            ignored.append(f"{path.relative_to(root)}: the name does not start with a lesson ({', '.join(lessons)})")
        else:
            grouped.setdefault((learner, lesson), []).append((path, stem))
    submissions = []
    for (learner, lesson), files in sorted(grouped.items()):
        chosen, note = _pick(lesson, files)
        submissions.append(Submission(learner, lesson, chosen, chosen.read_bytes(), note))
    for line in ignored:
        log.warning("ignored %s", line)
    return submissions, ignored


def from_folder(folder: Path, learner: str, lessons: Iterable[str]) -> list[Submission]:
    """Every lesson notebook in ``folder`` (e.g. ``solutions/``) as one learner's submissions."""
    lessons = list(lessons)
    return [
        Submission(learner, lesson, path, path.read_bytes())
        for path in sorted(folder.glob("*.ipynb")) if (lesson := lesson_of(path.stem, lessons)) == path.stem
    ]
