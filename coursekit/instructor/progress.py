"""Class progress read from a tracking server: one row per learner, one column per exercise.

``python -m coursekit.instructor.progress --tracking-uri http://127.0.0.1:5055 --out progress/`` writes
``progress/progress.csv`` and ``progress/progress.html`` (the gradebook's style). Learners are found by the
``course.learner`` tag every course experiment carries on a tracking server (:mod:`coursekit.tracking`).

Every exercise whose check reads only the MLflow store is asked again, with the kit's own checks, for
each learner: the same question the grader re-checks (:mod:`coursekit.instructor.recheck`). The others cannot be
judged from the server, and the command says so: their checks need a value that exists only in the
learner's notebook (``q4.check(best_run_id)``), or, for lesson 3's reproducibility tags, the git
commit of the learner's own checkout.

Each learner is evaluated in a fresh worker process, because a lesson module names its experiment and
registered model for one learner when it is imported (:func:`coursekit.settings.course_name`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import io
import logging
import multiprocessing
import os
import sys
import tempfile
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from coursekit.instructor.gradebook import write_atomic
from coursekit.settings import REPO_ROOT

log = logging.getLogger(__name__)

#: Store-only exercises the server still cannot judge, with the reason.
SERVER_BLIND = {
    ("03_log_model", "q3"): "compares the git_commit tag with the git commit of the learner's own checkout",
}
VALUE_REASON = "its check needs a value from the learner's notebook ({key}.check(...))"


@dataclass
class Progress:
    """What the server shows: outcome and message per learner and (lesson, exercise)."""

    tracking_uri: str
    columns: list[tuple[str, str]]
    not_judged: dict[tuple[str, str], str]
    cells: dict[str, dict[tuple[str, str], tuple[str, str]]] = field(default_factory=dict)

    def done(self, learner: str) -> int:
        """How many judged exercises the learner has right."""
        return sum(1 for outcome, _ in self.cells.get(learner, {}).values() if outcome == "correct")


def lesson_stems(solutions: Path = REPO_ROOT / "solutions") -> list[str]:
    """The lessons, by their solution notebooks' stems (``01_first_run`` …)."""
    return sorted(path.stem for path in solutions.glob("[0-9][0-9]_*.ipynb"))


def plan(lessons: list[str]) -> tuple[list[tuple[str, str]], dict[tuple[str, str], str]]:
    """The (lesson, exercise) columns the server can judge, and every other exercise with why not."""
    from coursekit.instructor.recheck import exercises, recheckable

    judged: list[tuple[str, str]] = []
    not_judged: dict[tuple[str, str], str] = {}
    for lesson in lessons:
        store_only = set(recheckable(lesson))
        for key in exercises(lesson):
            if (lesson, key) in SERVER_BLIND:
                not_judged[(lesson, key)] = SERVER_BLIND[(lesson, key)]
            elif key in store_only:
                judged.append((lesson, key))
            else:
                not_judged[(lesson, key)] = VALUE_REASON.format(key=key)
    return judged, not_judged


def learners(tracking_uri: str) -> list[str]:
    """Every learner with a course experiment on the server, sorted."""
    from mlflow.tracking import MlflowClient

    from coursekit.tracking import COURSE_NAME, COURSE_TAG, LEARNER_TAG

    found = MlflowClient(tracking_uri=tracking_uri).search_experiments(filter_string=f"tags.{COURSE_TAG} = '{COURSE_NAME}'")
    return sorted({e.tags[LEARNER_TAG] for e in found if e.tags.get(LEARNER_TAG)})


def learner_progress(tracking_uri: str, learner: str, columns: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """Run in a fresh worker: ask every judged check for ``learner``; (lesson, key) -> (outcome, message)."""
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    os.environ["COURSE_LEARNER"] = learner
    os.environ.pop("SPARK_REMOTE", None)
    os.environ.setdefault("COURSE_SPARK_QUICK_JIT", "1")
    with tempfile.TemporaryDirectory(prefix="coursekit-progress-") as scratch:
        # Outside any checkout, with its own Spark scratch space (a check may re-score a model).
        os.environ["COURSE_DATA_DIR"] = scratch
        os.chdir(scratch)
        from coursekit.exercises import verdicts
        from coursekit.exercises.checks import format_result
        from coursekit.instructor.recheck import exercises
        from coursekit.spark import get_spark
        from coursekit.tracking import disable_telemetry

        disable_telemetry()
        verdicts.spark_starter = get_spark
        cells: dict[tuple[str, str], tuple[str, str]] = {}
        for lesson, key in columns:
            exercise = exercises(lesson)[key]
            try:
                result = exercise.result()
                cells[(lesson, key)] = (result.outcome.value, format_result(key, exercise.title, result))
            except Exception as error:  # noqa: BLE001 - one learner's odd store must not stop the table
                cells[(lesson, key)] = ("error", f"{key}: the check failed: {type(error).__name__}: {error}")
        return cells


def collect(tracking_uri: str, only: list[str] | None = None, workers: int = 2, lessons: list[str] | None = None) -> Progress:
    """Evaluate every judged exercise for every learner on the server (or those in ``only``)."""
    columns, not_judged = plan(lessons or lesson_stems())
    progress = Progress(tracking_uri=tracking_uri, columns=columns, not_judged=not_judged)
    names = only or learners(tracking_uri)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {name: pool.submit(learner_progress, tracking_uri, name, columns) for name in names}
        for name, future in futures.items():
            progress.cells[name] = future.result()
    return progress


def column_name(lesson: str, key: str) -> str:
    """A column's header: ``01_first_run q1``."""
    return f"{lesson} {key}"


def render_csv(progress: Progress) -> str:
    """``learner``, one outcome column per judged exercise, then ``correct`` and ``judged``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["learner", *(column_name(*c) for c in progress.columns), "correct", "judged"])
    for learner in sorted(progress.cells):
        row = progress.cells[learner]
        writer.writerow([learner, *(row.get(c, ("", ""))[0] for c in progress.columns), progress.done(learner), len(progress.columns)])
    return buffer.getvalue()


def render_html(progress: Progress) -> str:
    """The same table as a self-contained page in the gradebook's style, each cell's check message on hover."""
    from coursekit.instructor.report import badge, page

    head = "".join(f'<th title="{escape(lesson)}">{escape(lesson[:2])} {escape(key)}</th>' for lesson, key in progress.columns)
    rows = [f"<table><tr><th>learner</th>{head}<th>correct</th></tr>"]
    for learner in sorted(progress.cells):
        cells = progress.cells[learner]
        tds = "".join(
            f'<td class="{escape(outcome.replace(" ", "-"))}" title="{escape(message)}">{escape(badge(outcome))}</td>'
            for outcome, message in (cells.get(c, ("", "")) for c in progress.columns)
        )
        rows.append(f"<tr><td>{escape(learner)}</td>{tds}<td>{progress.done(learner)} / {len(progress.columns)}</td></tr>")
    rows.append("</table>")
    blind = "".join(f"<li>{escape(lesson)} {escape(key)}: {escape(why)}</li>" for (lesson, key), why in progress.not_judged.items())
    body = (
        f"<h1>Class progress</h1>\n<p>Read from <code>{escape(progress.tracking_uri)}</code>: every exercise whose "
        "check needs only the MLflow store. Columns are lesson number and exercise (<code>01 q1</code>); hover a "
        "cell for the check's message.</p>\n" + "\n".join(rows)
        + f"\n<h2>Not judged from the server</h2>\n<ul>{blind}</ul>"
    )
    return page("Class progress", body)


def write(progress: Progress, out: Path) -> list[Path]:
    """Write ``progress.csv`` and ``progress.html`` into ``out`` (atomically); returns both paths."""
    paths = [out / "progress.csv", out / "progress.html"]
    write_atomic(paths[0], render_csv(progress))
    write_atomic(paths[1], render_html(progress))
    return paths


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m coursekit.instructor.progress",
        description="Read a class tracking server and write a learner x exercise progress table (CSV and HTML).",
    )
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                        help="the class tracking server (default: $MLFLOW_TRACKING_URI)")
    parser.add_argument("--out", type=Path, default=Path("progress"), help="output folder (default: %(default)s)")
    parser.add_argument("--learner", action="append", help="only this learner (repeatable; default: all on the server)")
    parser.add_argument("--workers", type=int, default=2, help="learners evaluated at once (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """``python -m coursekit.instructor.progress``: write the table, then say what it could not judge and why."""
    from coursekit.errors import CourseSetupError
    from coursekit.settings import is_server_uri
    from coursekit.tracking import require_server

    args = _parse_args(argv)
    if not args.tracking_uri or not is_server_uri(args.tracking_uri):
        print("ERROR: give the class tracking server: --tracking-uri http://host:port (or set MLFLOW_TRACKING_URI).",  # noqa: T201
              file=sys.stderr)
        return 2
    try:
        require_server(args.tracking_uri)
    except CourseSetupError as error:
        print(f"ERROR: {error}", file=sys.stderr)  # noqa: T201
        return 1
    progress = collect(args.tracking_uri, only=args.learner, workers=max(1, args.workers))
    paths = write(progress, args.out)
    lines = [f"{len(progress.cells)} learner(s), {len(progress.columns)} exercise(s) judged from {args.tracking_uri}:"]
    lines += [f"  {learner}: {progress.done(learner)} / {len(progress.columns)} correct" for learner in sorted(progress.cells)]
    lines.append(f"Not judged from the server ({len(progress.not_judged)}): the grader needs the notebook for these.")
    lines += [f"  {lesson} {key}: {why}" for (lesson, key), why in progress.not_judged.items()]
    lines += [f"Wrote {path}" for path in paths]
    print("\n".join(lines))  # noqa: T201 - CLI output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
