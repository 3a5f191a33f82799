"""Readable HTML reports: one page per learner (``<learner>.html``) and an ``index.html`` overview.

Each learner's page lists, per lesson: total, status, the reasons a submission failed (timeout, kernel
died, tampered checks, …) and, per exercise, the outcome, the points and the check's message (the text
the learner saw). Everything that comes from a submission is escaped with :func:`html.escape`; the
pages are self-contained (inline CSS, no scripts, no external assets).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape
from pathlib import Path

from coursekit.instructor.gradebook import number, write_atomic
from coursekit.instructor.scoring import LessonResult

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.correct { color: #17692f; } .incorrect { color: #a32020; } .error { color: #a32020; font-weight: bold; }
.not-attempted { color: #777; } .status-ok { color: #17692f; } .status-bad { color: #a32020; font-weight: bold; }
ul.reasons { color: #a32020; } code { white-space: pre-wrap; }
"""
# Marks every common font has (DejaVu included): colour emoji show as empty boxes in a browser without an emoji font.
_BADGE = {
    "correct": "✓ correct", "incorrect": "✗ incorrect", "not attempted": "… not attempted", "error": "⚠ error",
    "unsupported": "– not checkable here",
}


def page_name(learner: str) -> str:
    """A safe file name for a learner's page (letters, digits, ``.``, ``_`` and ``-`` kept; never ``index.html``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", learner).lstrip(".") or "_"
    return ("learner-index" if stem == "index" else stem) + ".html"


def badge(outcome: str) -> str:
    """An outcome as the reports show it (``✓ correct``); unknown outcomes as they are."""
    return _BADGE.get(outcome, outcome)


def page(title: str, body: str) -> str:
    """A self-contained HTML page in the reports' style."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )


def _status(status: str) -> str:
    css = "status-ok" if status == "ok" else "status-bad"
    return f'<span class="{css}">{escape(status)}</span>'


def lesson_section(result: LessonResult, notebook_link: str | None = None) -> str:
    """One lesson's block: summary line, failure reasons, and a table of exercises."""
    parts = [
        f'<h2 id="{escape(result.lesson)}">{escape(result.lesson)} — {number(result.total)} / {number(result.max_points)}</h2>',
        f"<p>Status: {_status(result.status)}"
        + (f" · file <code>{escape(result.source)}</code>" if result.source else "")
        + (f' · <a href="{escape(notebook_link)}">executed notebook</a>' if notebook_link else "")
        + "</p>",
    ]
    if result.reasons:
        parts.append('<ul class="reasons">' + "".join(f"<li>{escape(r)}</li>" for r in result.reasons) + "</ul>")
    parts.append("<table><tr><th>exercise</th><th>outcome</th><th>points</th><th>message</th></tr>")
    for ex in result.exercises:
        css = ex.outcome.replace(" ", "-")
        parts.append(
            f"<tr><td>{escape(ex.key)}</td><td class=\"{escape(css)}\">{escape(badge(ex.outcome))}</td>"
            f"<td>{number(ex.points)} / {number(ex.max_points)}</td><td><code>{escape(ex.message)}</code></td></tr>"
        )
    parts.append("</table>")
    return "\n".join(parts)


def learner_page(learner: str, results: list[LessonResult], links: dict[str, str] | None = None) -> str:
    """The full HTML page for one learner."""
    results = sorted(results, key=lambda r: r.lesson)
    total = sum(r.total for r in results)
    available = sum(r.max_points for r in results)
    summary = ["<table><tr><th>lesson</th><th>points</th><th>status</th></tr>"]
    summary += [
        f'<tr><td><a href="#{escape(r.lesson)}">{escape(r.lesson)}</a></td>'
        f"<td>{number(r.total)} / {number(r.max_points)}</td><td>{_status(r.status)}</td></tr>"
        for r in results
    ]
    summary.append("</table>")
    body = (
        f"<h1>{escape(learner)} — {number(total)} / {number(available)} points</h1>\n"
        + '<p><a href="index.html">all learners</a></p>\n'
        + "\n".join(summary) + "\n"
        + "\n".join(lesson_section(r, (links or {}).get(r.lesson)) for r in results)
    )
    return page(f"{learner} — grades", body)


def index_page(results: Iterable[LessonResult]) -> str:
    """The overview: learners × lessons, each cell ``points/max`` and status, linked to the learner's page."""
    results = list(results)
    lessons = sorted({r.lesson for r in results})
    learners = sorted({r.learner for r in results})
    cell = {(r.learner, r.lesson): r for r in results}
    rows = ["<table><tr><th>learner</th>" + "".join(f"<th>{escape(x)}</th>" for x in lessons) + "<th>total</th></tr>"]
    for learner in learners:
        mine = [cell[(learner, lesson)] for lesson in lessons if (learner, lesson) in cell]
        cells = "".join(
            f"<td>{number(r.total)} / {number(r.max_points)} {_status(r.status)}</td>" if (r := cell.get((learner, lesson))) else "<td></td>"
            for lesson in lessons
        )
        total = f"{number(sum(r.total for r in mine))} / {number(sum(r.max_points for r in mine))}"
        rows.append(f'<tr><td><a href="{escape(page_name(learner))}">{escape(learner)}</a></td>{cells}<td>{total}</td></tr>')
    rows.append("</table>")
    return page("Gradebook", "<h1>Gradebook</h1>\n" + "\n".join(rows))


def write_reports(results: list[LessonResult], out: Path, links: dict[tuple[str, str], str] | None = None) -> list[Path]:
    """Write every learner's page and ``index.html`` into ``out`` (atomically); returns the paths."""
    written = []
    for learner in sorted({r.learner for r in results}):
        mine = [r for r in results if r.learner == learner]
        own_links = {lesson: link for (who, lesson), link in (links or {}).items() if who == learner}
        path = out / page_name(learner)
        write_atomic(path, learner_page(learner, mine, own_links))
        written.append(path)
    index = out / "index.html"
    write_atomic(index, index_page(results))
    return [*written, index]
