"""Grade a folder of submitted lesson notebooks: ``python -m coursekit.instructor.grade SUBMISSIONS --out GRADEBOOK``.

Every submission runs in its own sandbox (:mod:`coursekit.instructor.sandbox`) with the same checks learners see;
up to ``--jobs`` run at once. Afterwards the grader's own checks re-read each sandbox's MLflow store
(:mod:`coursekit.instructor.recheck`): where they disagree with what the notebook displayed, they count. Nothing is written to the gradebook folder until every submission has
run: then ``gradebook.csv``, one ``<learner>.html`` per learner, ``index.html`` and the executed
notebooks (``notebooks/<learner>/<lesson>.ipynb``) are written, each file atomically.

``--solutions`` grades ``solutions/*.ipynb`` as the learner ``solutions`` (exit status 1 unless every
exercise is correct); ``--lessons`` grades the fresh ``lessons/*.ipynb`` as the learner ``lessons``
(exit status 1 unless every exercise is "not attempted" and nothing failed).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from coursekit.instructor import sandbox
from coursekit.instructor.fingerprint import changed_paths, stat_snapshot
from coursekit.instructor.gradebook import number, write_atomic, write_gradebook
from coursekit.instructor.recheck import Rechecker
from coursekit.instructor.report import page_name, write_reports
from coursekit.instructor.sandbox import Execution, Limits, execute
from coursekit.instructor.scoring import LessonResult, PointsError, exercises_of, load_points, score, unexecuted
from coursekit.instructor.submissions import Submission, discover, from_folder
from coursekit.settings import KERNEL_NAME, REPO_ROOT

log = logging.getLogger(__name__)

SOLUTIONS_LEARNER = "solutions"
LESSONS_LEARNER = "lessons"


@dataclass
class Options:
    """How to grade: where the answer key is, the limits, parallelism, and what to watch."""

    out: Path
    solutions_dir: Path = REPO_ROOT / "solutions"
    limits: Limits = field(default_factory=Limits)
    jobs: int = os.cpu_count() or 1
    points_file: Path | None = None
    #: Folders no submission may change; the submissions and gradebook folders are added by :func:`grade`.
    watch_roots: list[Path] = field(default_factory=lambda: [REPO_ROOT / d for d in ("coursekit", "solutions", "lessons", "datasets")])
    kernel_name: str = KERNEL_NAME
    #: An MLflow database every submission starts from (a copy each); None: an empty store. Its experiments keep
    #: their artifact folders, so the runs write their files there.
    start_store: Path | None = None


def lesson_exercises(solutions_dir: Path) -> dict[str, list[str]]:
    """Lesson stem -> its exercise keys, from every solution notebook."""
    return {path.stem: exercises_of(path) for path in sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb"))}


def _code_cells(nb: nbformat.NotebookNode) -> list[str]:
    return [cell.source if cell.cell_type == "code" else "" for cell in nb.cells]


def _read(submission: Submission) -> nbformat.NotebookNode | str:
    """The parsed notebook, or why it is not one."""
    try:
        return nbformat.reads(submission.data.decode("utf-8"), as_version=4)
    except UnicodeDecodeError:
        return "invalid notebook: the file is not UTF-8 text"
    except Exception as exc:  # noqa: BLE001 - nbformat raises several types for broken files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"invalid notebook: not valid notebook JSON ({first[:200]})"


def _blame_outside(executions: dict[int, Execution]) -> dict[int, list[str]]:
    """Changed outside paths per submission: each path is blamed on the run that noticed it first.

    Runs check after every cell, so the writer notices its own write at the end of the writing cell;
    a run executing in parallel notices it at the end of its current cell, usually later. With
    ``--jobs 1`` the attribution is exact.
    """
    first: dict[str, tuple[float, int]] = {}
    for index, execution in executions.items():
        for event in execution.events:
            for path in event.get("outside", []):
                seen = (float(event.get("t", 0.0)), index)
                first[path] = min(first.get(path, seen), seen)
    blamed: dict[int, list[str]] = {}
    for path, (_, index) in sorted(first.items()):
        blamed.setdefault(index, []).append(path)
    return blamed


def grade(submissions: list[Submission], options: Options, roots: Sequence[Path] = ()) -> list[LessonResult]:
    """Run and score every submission, then write the gradebook, reports and executed notebooks."""
    exercises = lesson_exercises(options.solutions_dir)
    points = load_points(options.points_file, exercises)
    watch = [*options.watch_roots, *roots, options.out]
    results: dict[int, LessonResult] = {}
    runnable: dict[int, tuple[Submission, nbformat.NotebookNode]] = {}
    for index, sub in enumerate(submissions):
        parsed = _read(sub)
        if isinstance(parsed, str):
            results[index] = unexecuted(sub.learner, sub.lesson, "invalid notebook", parsed, points[sub.lesson], sub.path.name)
        else:
            runnable[index] = (sub, parsed)

    before = stat_snapshot(watch)
    workspace = Path(tempfile.mkdtemp(prefix="coursekit-grade-"))
    template = options.start_store or sandbox.empty_store(workspace / "empty-mlflow.db")
    executions: dict[int, Execution] = {}
    sandbox.STOP.clear()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, options.jobs))
    # The grader's own checks re-read each sandbox's store after its notebook ran (coursekit.instructor.recheck).
    rechecker = Rechecker(workspace / "recheck")
    try:
        futures = {
            pool.submit(
                execute, sub.lesson, sub.data, workspace / str(index), options.limits, watch, options.kernel_name, template,
                after=functools.partial(rechecker, sub.lesson),
            ): index
            for index, (sub, _) in runnable.items()
        }
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            sub = runnable[index][0]
            try:
                executions[index] = future.result()
            except Exception:  # noqa: BLE001 - a grader bug must not lose the other results
                log.exception("grading %s/%s failed", sub.learner, sub.lesson)
                executions[index] = Execution(killed="grader error: see the log")
            log.info("graded %s / %s in %.0f s", sub.learner, sub.lesson, executions[index].seconds)
        pool.shutdown()
        blamed = _blame_outside(executions)
        unexplained = [p for p in changed_paths(before, stat_snapshot(watch)) if not any(p in b for b in blamed.values())]
        for path in unexplained:
            log.warning("changed during grading, no submission noticed it (a killed run?): %s", path)
        for index, (sub, nb) in runnable.items():
            result = score(sub.learner, sub.lesson, points[sub.lesson], _code_cells(nb), executions[index], blamed.get(index))
            result.source = sub.path.name
            results[index] = result
        final = _with_missing(list(results.values()), points, submissions)
        for index, sub in enumerate(submissions):
            if sub.note:
                results[index].reasons.append(sub.note)
        _write(final, executions, runnable, options.out)
    except BaseException:
        # Ctrl+C or SIGTERM: stop queued runs, let every watchdog kill its process tree, write nothing.
        sandbox.STOP.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        rechecker.close()
        shutil.rmtree(workspace, ignore_errors=True)
    return final


def _with_missing(results: list[LessonResult], points: dict[str, dict[str, float]], submissions: list[Submission]) -> list[LessonResult]:
    """Add "not submitted" rows: every learner gets a row for every lesson anyone submitted."""
    lessons = sorted({s.lesson for s in submissions})
    have = {(r.learner, r.lesson) for r in results}
    missing = [
        unexecuted(learner, lesson, "not submitted", "no notebook for this lesson", points[lesson])
        for learner in sorted({s.learner for s in submissions}) for lesson in lessons if (learner, lesson) not in have
    ]
    return sorted(results + missing, key=lambda r: (r.learner, r.lesson))


def _write(results: list[LessonResult], executions: dict[int, Execution],
           runnable: dict[int, tuple[Submission, nbformat.NotebookNode]], out: Path) -> None:
    links: dict[tuple[str, str], str] = {}
    for index, (sub, _) in runnable.items():
        executed = executions[index].notebook
        if executed is not None and executed.is_file():
            relative = f"notebooks/{page_name(sub.learner)[:-5]}/{sub.lesson}.ipynb"
            write_atomic(out / relative, executed.read_text(encoding="utf-8", errors="replace"))
            links[(sub.learner, sub.lesson)] = relative
    write_gradebook(results, out)
    write_reports(results, out, links)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring and the README's "For instructors")."""
    defaults = Limits()
    parser = argparse.ArgumentParser(prog="python -m coursekit.instructor.grade", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", nargs="?", type=Path, help="folder of <learner>/<NN_topic>.ipynb or <learner>__<NN_topic>.ipynb")
    parser.add_argument("--out", type=Path, required=True, help="gradebook folder (created; files in it are replaced)")
    parser.add_argument("--solutions", action="store_true", help="also grade solutions/*.ipynb as learner 'solutions' (must get full marks)")
    parser.add_argument("--lessons", action="store_true", help="also grade lessons/*.ipynb as learner 'lessons' (must get 0, not attempted)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions run at once (default: cores)")
    parser.add_argument("--timeout", type=int, default=defaults.cell_timeout, help=f"seconds per cell (default {defaults.cell_timeout})")
    parser.add_argument("--notebook-timeout", type=int, default=defaults.notebook_timeout, help=f"seconds per notebook (default {defaults.notebook_timeout})")
    parser.add_argument("--memory-mb", type=int, default=defaults.memory_mb, help=f"RSS of kernel + Spark, MB (default {defaults.memory_mb})")
    parser.add_argument("--max-output-kb", type=int, default=defaults.max_output_kb, help=f"stored output per notebook, KB (default {defaults.max_output_kb})")
    parser.add_argument("--points", type=Path, help="TOML file: [01_first_run] q1 = 2 (default: 1 point per exercise)")
    parser.add_argument("--start-store", type=Path, metavar="MLFLOW_DB",
                        help="start every submission from a copy of this MLflow database, e.g. the store after a first run "
                             "to grade a re-run (default: an empty store)")
    args = parser.parse_args(argv)
    if args.submissions is None and not (args.solutions or args.lessons):
        parser.error("give a submissions folder, --solutions or --lessons")
    if args.submissions is not None and not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    if args.start_store is not None and not args.start_store.is_file():
        parser.error(f"--start-store: {args.start_store} is not a file (give the mlflow.db of a course data folder)")
    if args.jobs < 1 or min(args.timeout, args.notebook_timeout, args.memory_mb, args.max_output_kb) < 1:
        parser.error("--jobs and the limits must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Grade, write the gradebook, print a summary; exit 1 if ``--solutions``/``--lessons`` self-checks fail."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    options = Options(
        out=args.out.resolve(), jobs=args.jobs, points_file=args.points,
        start_store=args.start_store.resolve() if args.start_store else None,
        limits=Limits(args.timeout, args.notebook_timeout, args.memory_mb, args.max_output_kb),
    )
    lessons = list(lesson_exercises(options.solutions_dir))
    submissions: list[Submission] = []
    roots: list[Path] = []
    ignored: list[str] = []
    if args.submissions is not None:
        found, ignored = discover(args.submissions, lessons)
        submissions += found
        roots.append(args.submissions.resolve())
    if args.solutions:
        submissions += from_folder(REPO_ROOT / "solutions", SOLUTIONS_LEARNER, lessons)
    if args.lessons:
        submissions += from_folder(REPO_ROOT / "lessons", LESSONS_LEARNER, lessons)
    if not submissions:
        print("No submissions found.", file=sys.stderr)  # noqa: T201 - CLI output
        return 2
    started = time.monotonic()
    # SIGTERM (e.g. a CI job cancelled) unwinds like Ctrl+C, so no kernel or Spark JVM is left behind.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        results = grade(submissions, options, roots)
    except PointsError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    return _summary(results, options.out, time.monotonic() - started, ignored)


def _summary(results: list[LessonResult], out: Path, seconds: float, ignored: list[str]) -> int:
    status = 0
    for line in ignored:
        print(f"skipped {line}")  # noqa: T201 - CLI summary
    for learner in sorted({r.learner for r in results}):
        mine = [r for r in results if r.learner == learner]
        problems = sorted({r.status for r in mine} - {"ok"})
        line = f"{learner}: {number(sum(r.total for r in mine))} / {number(sum(r.max_points for r in mine))}"
        print(line + (f" ({', '.join(problems)})" if problems else ""))  # noqa: T201 - CLI summary
        if learner == SOLUTIONS_LEARNER and any(e.outcome != "correct" for r in mine for e in r.exercises):
            print("  ✗ the solutions do not get full marks", file=sys.stderr)  # noqa: T201
            status = 1
        if learner == LESSONS_LEARNER and any(r.status != "ok" or e.outcome != "not attempted" for r in mine for e in r.exercises):
            print("  ✗ the fresh lessons are not all 'not attempted' without errors", file=sys.stderr)  # noqa: T201
            status = 1
    print(f"Graded {len(results)} rows in {seconds:.0f} s → {out / 'gradebook.csv'}, {out / 'index.html'}")  # noqa: T201
    return status


if __name__ == "__main__":
    sys.exit(main())
