"""Run one submission in its own folder, with its own copy of ``coursekit``, under time and memory limits.

Layout of a sandbox (a fresh temporary folder per submission)::

    <sandbox>/work/<lesson>.ipynb   the submission (the kernel's cwd)
    <sandbox>/pkg/coursekit/        a private copy of the checks, first on the kernel's PYTHONPATH
    <sandbox>/pkg/datasets/         a private copy of the course data
    <sandbox>/data/                 COURSE_DATA_DIR: its own MLflow store and Spark scratch space
    <sandbox>/home/, <sandbox>/tmp/ HOME and TMPDIR

A child process (:mod:`coursekit.instructor.runner`) executes the notebook; this module watches it from the
grader's side: the whole notebook's wall clock, and the resident memory of the child's process tree
(kernel, Spark JVM, anything they start), summed with psutil. Virtual-memory limits (RLIMIT_AS) are not
used: the JVM reserves far more address space than it touches. Over a limit, every process of the tree is
killed; the events written so far still count.

No process outlives its grading. The runner is a child subreaper, so a process the notebook detaches
(double fork, ``setsid``, ``nohup``) re-parents to it and stays in the watched tree, memory included. And
every process the kernel starts inherits the marker variable ``COURSEKIT_SANDBOX=<sandbox>``: after
every execution (normal end, a limit, interrupted grading) the sandbox is swept: every process of this
user whose environment carries the marker, or whose working directory is inside the sandbox (which
catches ``env -i``), is killed, again and again until none is found, before the folder is deleted.

This is detection and containment, not a security boundary: the kernel runs as the grader's user and
can reach any file that user can.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

import coursekit
from coursekit.instructor.fingerprint import content_digest
from coursekit.instructor.processes import KILL_ROUNDS, kill_descendants, kill_processes, kill_until_gone
from coursekit.instructor.runner import Job
from coursekit.settings import KERNEL_NAME

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(coursekit.__file__).resolve().parent
DATASETS_DIR = PACKAGE_DIR.parent / "datasets"
POLL_SECONDS = 0.5
#: Set by the grader when it is interrupted (Ctrl+C, SIGTERM): every watchdog kills its tree and returns.
STOP = threading.Event()
INTERRUPTED = "grading was interrupted before this notebook finished"
_MB = 1024 * 1024
#: The environment variable every process of a sandbox inherits; its value is the sandbox's path.
MARKER = "COURSEKIT_SANDBOX"
#: Course variables a sandbox keeps: machine-wide choices that cannot reach the grader's store.
_PASSED_ON = ("COURSE_UI_PORT", "COURSE_SPARK_CLASS_ARCHIVE")
# Variables a kernel must not inherit from the grader: they would point it at another store or package.
_DROPPED_PREFIXES = ("MLFLOW_", "COURSE_", "PYTHON", "SPARK_REMOTE", "JUPYTER_", "IPYTHON", "MPLCONFIGDIR")


@dataclass(frozen=True)
class Limits:
    """Per-submission limits; every one is a command-line option of the grader."""

    cell_timeout: int = 300
    notebook_timeout: int = 1200
    memory_mb: int = 6144
    max_output_kb: int = 2048


@dataclass
class Execution:
    """What happened while one submission ran (raw facts; :mod:`coursekit.instructor.scoring` turns them into points)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    killed: str | None = None
    tampered: bool = False
    seconds: float = 0.0
    notebook: Path | None = None
    peak_mb: int = 0
    #: Last line of the runner's own log when it stopped without its final event (a crash, or it was killed).
    runner_error: str = ""
    #: What the ``after`` hook of :func:`execute` returned (empty without a hook, or when it failed).
    rechecked: dict[str, Any] = field(default_factory=dict)


def kernel_environment(sandbox: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the grader's, minus MLflow/course/Python overrides, plus the sandbox's folders."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith(_DROPPED_PREFIXES)}
    # Kept from the grader's environment: where the UI's first port is, and the JVM's class archive (read only).
    env.update({k: source[k] for k in _PASSED_ON if source.get(k)})
    env.update({
        "HOME": str(sandbox / "home"),
        "TMPDIR": str(sandbox / "tmp"),
        # Inherited by every process the notebook starts: the sweep finds them by it (see sweep()).
        MARKER: str(sandbox),
        "COURSE_DATA_DIR": str(sandbox / "data"),
        "COURSE_DATASETS_DIR": str(sandbox / "pkg" / "datasets"),
        # Several notebooks run at once: the quick JIT spends less CPU compiling (see coursekit.spark).
        "COURSE_SPARK_QUICK_JIT": "1",
        # Bytecode caches would change the package copy's fingerprint on every import.
        "PYTHONDONTWRITEBYTECODE": "1",
        # The child itself imports the grader's coursekit; it gives the kernel the sandbox's copy.
        "PYTHONPATH": str(PACKAGE_DIR.parent),
    })
    return env


def empty_store(path: Path) -> Path:
    """Create an empty, fully migrated MLflow database at ``path``, to copy into every sandbox.

    A new SQLite store runs MLflow's schema migrations first, about 2 s of CPU per notebook;
    copying a migrated file costs milliseconds.
    """
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments(max_results=1)
    return path


def prepare(sandbox: Path, lesson: str, notebook_bytes: bytes, store_template: Path | None = None) -> Path:
    """Fill an empty sandbox folder (see the module docstring) and return the notebook's path in it.

    ``store_template`` (from :func:`empty_store`) becomes the sandbox's MLflow database.
    """
    for name in ("work", "pkg", "data", "home", "tmp"):
        (sandbox / name).mkdir(parents=True, exist_ok=True)
    if store_template is not None:
        shutil.copyfile(store_template, sandbox / "data" / "mlflow.db")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PACKAGE_DIR, sandbox / "pkg" / "coursekit", ignore=ignore)
    shutil.copytree(DATASETS_DIR, sandbox / "pkg" / "datasets", ignore=ignore)
    notebook = sandbox / "work" / f"{lesson}.ipynb"
    notebook.write_bytes(notebook_bytes)
    return notebook


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def _rss(processes: list[psutil.Process]) -> int:
    total = 0
    for proc in processes:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def kill_tree(root: psutil.Process, seen: dict[int, psutil.Process]) -> None:
    """Kill ``root``'s descendants until none is left, then ``root``, then every process in ``seen``.

    The runner (``root``) dies last: while it lives, a child forked by a process being killed
    re-parents to it (it is a subreaper) and the next round of :func:`kill_descendants` finds it.
    """
    for text in kill_descendants(root):
        log.info("killed %s", text)
    kill_processes([root, *seen.values()], wait=0)


def sandbox_processes(sandbox: Path) -> list[psutil.Process]:
    """Running processes of this user that belong to ``sandbox``: its marker in their environment
    (:data:`MARKER`), or their working directory inside it. The grader and its ancestors never count."""
    sandbox = sandbox.resolve()
    marker, inside = str(sandbox), str(sandbox) + os.sep
    uid = os.getuid()
    mine = psutil.Process()
    spared = {mine.pid, *(p.pid for p in mine.parents())}
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        uids = proc.info["uids"]
        if proc.pid in spared or uids is None or uids.real != uid or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if proc.environ().get(MARKER) == marker:
                found.append(proc)
                continue
        except psutil.Error:
            pass
        try:
            cwd = proc.cwd()
        except psutil.Error:
            continue
        if cwd == marker or cwd.startswith(inside):
            found.append(proc)
    return found


def sweep(sandbox: Path, rounds: int = KILL_ROUNDS) -> list[str]:
    """SIGKILL every process of ``sandbox`` (:func:`sandbox_processes`), looking again until none is found.

    A process may fork while it is swept; its child carries the marker too and the next round kills it.
    Returns the killed processes, described; logged at WARNING.
    """
    killed, gone = kill_until_gone(lambda: sandbox_processes(sandbox), rounds)
    for text in killed:
        log.warning("killed a process left running by the notebook in %s: %s", sandbox, text)
    if not gone:
        log.warning("processes of %s still appear after %d sweeps", sandbox, rounds)
    return killed


def watch(child: subprocess.Popen[bytes], limits: Limits) -> tuple[str | None, int]:
    """Wait for ``child`` while enforcing the wall-clock and memory limits; returns (kill reason, peak MB).

    The tree watched is the child's: it is a subreaper (:func:`coursekit.instructor.processes.become_subreaper`), so
    processes detached by the notebook stay in it and their memory counts. Over a limit the tree is
    killed (:func:`kill_tree`); every process ever seen in it is killed at the end if still alive.
    :func:`sweep` catches what the tree cannot show (e.g. after the notebook killed the runner itself).
    """
    root = psutil.Process(child.pid)
    seen: dict[int, psutil.Process] = {}
    started, peak, reason = time.monotonic(), 0, None
    while child.poll() is None:
        tree = _tree(root)
        for proc in tree:
            seen.setdefault(proc.pid, proc)
        rss = _rss(tree)
        peak = max(peak, rss)
        if rss > limits.memory_mb * _MB:
            reason = f"memory limit: the kernel's processes used {rss // _MB} MB (limit {limits.memory_mb} MB)"
        elif time.monotonic() - started > limits.notebook_timeout:
            reason = f"notebook time limit: still running after {limits.notebook_timeout} s"
        elif STOP.is_set():
            reason = INTERRUPTED
        if reason:
            log.warning("killing a submission: %s", reason)
            kill_tree(root, seen)
            break
        time.sleep(POLL_SECONDS)
    child.wait()
    seen.pop(child.pid, None)
    kill_processes(list(seen.values()), wait=0)
    return reason, peak // _MB


def read_events(path: Path) -> list[dict[str, Any]]:
    """The runner's events; a half-written last line (the runner was killed) is ignored."""
    events = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def execute(lesson: str, notebook_bytes: bytes, private: Path, limits: Limits, watch_roots: list[Path],
            kernel_name: str = KERNEL_NAME, store_template: Path | None = None, *,
            after: Callable[[Path], dict[str, Any]] | None = None) -> Execution:
    """Run one submission in a fresh sandbox; keep the executed notebook and events in ``private``.

    ``private`` is a folder the kernel is not told about. ``store_template`` is an empty MLflow
    database to start from (see :func:`empty_store`). When the runner has finished (or was killed) and
    the sandbox was swept (:func:`sweep`), ``after`` is called with the sandbox's ``COURSE_DATA_DIR``
    (its MLflow store is ``mlflow.db`` there); what it returns becomes :attr:`Execution.rechecked`
    (empty if it raised; the exception is logged). Then the sandbox is deleted.
    """
    private.mkdir(parents=True, exist_ok=True)
    sandbox = Path(tempfile.mkdtemp(prefix="coursekit-sandbox-")).resolve()
    child: subprocess.Popen[bytes] | None = None
    swept = False
    try:
        notebook = prepare(sandbox, lesson, notebook_bytes, store_template)
        digest = content_digest(sandbox / "pkg" / "coursekit")
        job = Job(
            notebook=str(notebook), output=str(private / "executed.ipynb"), events=str(private / "events.jsonl"),
            workdir=str(notebook.parent), package_dir=str(sandbox / "pkg"), kernel_name=kernel_name,
            cell_timeout=limits.cell_timeout, max_output_bytes=limits.max_output_kb * 1024,
            watch_roots=[str(root) for root in watch_roots],
        )
        job.save(private / "job.json")
        started = time.monotonic()
        with (private / "runner.log").open("wb") as runner_log:
            child = subprocess.Popen(
                [sys.executable, "-m", "coursekit.instructor.runner", str(private / "job.json")],
                cwd=private, env=kernel_environment(sandbox), stdin=subprocess.DEVNULL,
                stdout=runner_log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            killed, peak = watch(child, limits)
        seconds = time.monotonic() - started
        sweep(sandbox)
        swept = True
        output = Path(job.output)
        events = read_events(Path(job.events))
        runner_error = ""
        if not any(e.get("event") == "end" for e in events):
            lines = (private / "runner.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
            if killed is None and child.returncode is not None and child.returncode < 0:
                # Not by the watchdog: by the notebook itself, e.g. os.kill(os.getppid(), 9).
                runner_error = f"the runner process was killed by signal {-child.returncode}"
            else:
                runner_error = lines[-1][:300] if lines else f"exit status {child.returncode}"
            log.warning("the runner for %s stopped early: %s", lesson, "\n".join(lines[-20:]))
        return Execution(
            events=events, killed=killed, runner_error=runner_error,
            tampered=content_digest(sandbox / "pkg" / "coursekit") != digest,
            seconds=seconds, notebook=output if output.is_file() else None, peak_mb=peak,
            rechecked=_recheck(after, sandbox / "data", lesson),
        )
    finally:
        if child is not None and child.poll() is None:  # a grader error while the runner ran
            try:
                kill_tree(psutil.Process(child.pid), {})
            except psutil.Error:
                pass
            child.kill()
            child.wait()
        if not swept:
            sweep(sandbox)
        shutil.rmtree(sandbox, ignore_errors=True)


def _recheck(after: Callable[[Path], dict[str, Any]] | None, data_dir: Path, lesson: str) -> dict[str, Any]:
    """What ``after(data_dir)`` returns, or an empty dict when there is no hook or it raised (logged)."""
    if after is None:
        return {}
    try:
        return dict(after(data_dir))
    except Exception:  # noqa: BLE001 - a failing re-check must not lose the notebook's own results
        log.exception("re-checking the store of a %s submission failed", lesson)
        return {}
