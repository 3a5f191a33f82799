"""Instant feedback for exercises, in the spirit of Kaggle Learn's ``q1.check()``.

Every check has three outcomes: correct, incorrect (with a hint that names
what is missing or wrong, without giving the answer away), and not attempted.
A check never lets a traceback reach the learner: anything unexpected while
reading their answer becomes an "incorrect" result with a plain sentence.
"""

from __future__ import annotations

import enum
import html
import json
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

CHECK_MIMETYPE = "application/vnd.coursekit.check+json"


class _Blank:
    """The ``____`` placeholder in starter code; a check treats it as "not attempted"."""

    _instance: _Blank | None = None

    def __new__(cls) -> _Blank:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "____"

    def __bool__(self) -> bool:
        return False


BLANK = _Blank()


def is_blank(value: object) -> bool:
    """True for the starter placeholder, ``None`` and ``...``: the learner has not answered."""
    return value is BLANK or value is None or value is Ellipsis


class Outcome(str, enum.Enum):
    """What a check concluded."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    NOT_ATTEMPTED = "not attempted"
    #: The exercise needs something MLflow cannot do in this setup (a Spark model over Spark Connect):
    #: neither right nor wrong, and the message says why. Never happens on local Spark, where grading runs.
    UNSUPPORTED = "unsupported"


_BADGES = {
    Outcome.CORRECT: "✅ Correct",
    Outcome.INCORRECT: "❌ Not yet",
    Outcome.NOT_ATTEMPTED: "⏳ Not attempted",
    Outcome.UNSUPPORTED: "⚪ Not checkable here",
}

#: The coloured label of the HTML result: a symbol every common font has, the words, and a solid
#: background with white text (contrast 5:1 or more on both), so it reads the same in JupyterLab's
#: light and dark themes; the message beside it keeps the theme's own text colour.
HTML_BADGES: dict[Outcome, tuple[str, str, str]] = {
    Outcome.CORRECT: ("✓", "Correct", "#1a7f37"),
    Outcome.INCORRECT: ("✗", "Not yet", "#b42318"),
    Outcome.NOT_ATTEMPTED: ("…", "Not attempted", "#57606a"),
    Outcome.UNSUPPORTED: ("–", "Not checkable here", "#0550ae"),
}


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict and the sentence shown to the learner."""

    outcome: Outcome
    message: str

    @property
    def correct(self) -> bool:
        return self.outcome is Outcome.CORRECT


def correct(message: str = "") -> CheckResult:
    """A correct result, optionally with a sentence that reinforces the idea."""
    return CheckResult(Outcome.CORRECT, message)


def incorrect(message: str) -> CheckResult:
    """An incorrect result; the message names what is missing or wrong."""
    return CheckResult(Outcome.INCORRECT, message)


def not_attempted(message: str) -> CheckResult:
    """Nothing to grade yet; the message says what the check looked for."""
    return CheckResult(Outcome.NOT_ATTEMPTED, message)


def unsupported(message: str) -> CheckResult:
    """Not judged: the exercise needs an operation MLflow cannot do here; the message says which, in one line."""
    return CheckResult(Outcome.UNSUPPORTED, message)


def close_to(value: float, expected: float, tolerance: float = 1e-6) -> bool:
    """Float comparison with an absolute tolerance (never ``==`` on metrics)."""
    return math.isfinite(value) and abs(value - expected) <= tolerance


class Exercise(ABC):
    """One exercise: ``check()``, graded ``hint(level)`` and ``solution()``.

    Subclasses implement :meth:`evaluate`, which inspects real state (the MLflow
    store, a value the learner passes in) and returns a :class:`CheckResult`.
    """

    #: Short id shown in messages and used by the grader, e.g. ``"q1"``.
    key: str = ""
    #: One-line title of the exercise.
    title: str = ""
    #: Hints from gentle to explicit; ``hint(2)`` shows the second one.
    hints: Sequence[str] = ()
    #: The reference answer, shown by ``solution()``.
    solution_code: str = ""
    #: Whether the grader may re-ask this check against the store after the whole notebook ran
    #: (:mod:`coursekit.instructor.recheck`). Only for checks that read the store alone; set False where a
    #: later step of the lesson legitimately changes what the check reads.
    recheckable: bool = True

    @abstractmethod
    def evaluate(self, *args: Any) -> CheckResult:
        """Inspect the learner's state and return the verdict (no printing)."""

    def result(self, *args: Any) -> CheckResult:
        """Like :meth:`evaluate`, but an unexpected error becomes a friendly "incorrect"."""
        try:
            return self.evaluate(*args)
        except Exception as exc:  # noqa: BLE001 - a learner must never see a traceback here
            log.debug("check %s raised", self.key, exc_info=True)
            return incorrect(
                f"The check could not read your answer ({type(exc).__name__}: {exc}). "
                "Re-run the cells above this one from top to bottom, then check again."
            )

    def check(self, *args: Any) -> None:
        """Show whether the exercise is solved (correct / not yet / not attempted)."""
        show_result(self.key, self.title, self.result(*args))

    def hint(self, level: int = 1) -> None:
        """Show hint number ``level`` (1 = gentlest)."""
        if not self.hints:
            _emit_text(f"💡 {self.key}: no hint for this one; re-read the step above.")
            return
        level = max(1, min(level, len(self.hints)))
        more = f" (more: {self.key}.hint({level + 1}))" if level < len(self.hints) else ""
        _emit_text(f"💡 {self.key} hint {level}/{len(self.hints)}: {self.hints[level - 1]}{more}")

    def solution(self) -> None:
        """Show the reference answer."""
        _emit_text(f"📖 {self.key} solution:\n{self.solution_code.strip()}")


def format_result(key: str, title: str, result: CheckResult) -> str:
    """The one-line text a learner sees for a result."""
    text = f"{_BADGES[result.outcome]} — {key}: {title}."
    return f"{text} {result.message}".rstrip()


def format_result_html(key: str, title: str, result: CheckResult) -> str:
    """The result as a small HTML block: a coloured label with a symbol and words, then the message.

    The words carry the outcome (colour is never the only signal); the block's tint is
    translucent, so it suits light and dark themes alike.
    """
    symbol, words, colour = HTML_BADGES[result.outcome]
    message = html.escape(result.message)
    return (
        f'<div class="coursekit-check" data-outcome="{result.outcome.value}" role="status" '
        f'style="border-left:4px solid {colour};background:{colour}1f;padding:6px 10px;margin:2px 0;border-radius:3px">'
        f'<span style="background:{colour};color:#ffffff;font-weight:bold;padding:1px 8px;border-radius:10px;'
        f'white-space:nowrap">{symbol} {words}</span> '
        f"<b>{html.escape(key)}: {html.escape(title)}.</b> {message}</div>"
    )


def show_result(key: str, title: str, result: CheckResult) -> None:
    """Display a result as HTML and text, plus a machine-readable copy the grader and tests read."""
    text = format_result(key, title, result)
    payload = {"exercise": key, "outcome": result.outcome.value}
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(
                {"text/plain": text, "text/html": format_result_html(key, title, result), CHECK_MIMETYPE: json.dumps(payload)},
                raw=True,
            )
            return
    except ImportError:  # pragma: no cover - IPython ships with the course
        pass
    _emit_text(text)


def _emit_text(text: str) -> None:
    # Checks are the notebook's voice: their output is meant for the learner.
    print(text)  # noqa: T201
