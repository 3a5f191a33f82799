"""Execute one submitted notebook in its sandbox: the child process the grader starts per submission.

``python -m coursekit.instructor.runner JOB.json`` is run by :mod:`coursekit.instructor.sandbox`, never by hand. It executes
the notebook with papermill (fresh course kernel, cwd = the sandbox) and, after every cell, appends one
JSON line to an events file the kernel is not told about: which cell ran, the check results it displayed,
its error, and whether the sandbox's copy of ``coursekit`` or a watched folder changed. The grader reads
those events even when it had to kill this process (time or memory limit), so progress is never lost.

Execution continues past cell errors (nbclient's ``allow_errors``): exercises are independent enough that
a mistake in exercise 2 should not zero exercises 3-5. A cell over the per-cell time limit is interrupted
and counts as an error; the following cells still run. An output that does not fit in what is left of the
size budget is dropped from the stored notebook (check results and clipped tracebacks are always kept) and
the run is marked "output too large". The stored notebook has exactly the submitted cells, in order: the
error banner and anchor cells papermill inserts are removed, so "cell 21" in a report is cell 21 there.

The runner makes itself a child subreaper (Linux): a process the notebook detaches with a double fork or
``setsid`` re-parents to the runner instead of init, so it stays in the process tree the grader watches
(and its memory counts), and the runner kills whatever is left of that tree before it exits.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import psutil
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from papermill.execute import ERROR_MARKER_TAG

from coursekit.engine import MAX_MESSAGE_CHARS, TIMEOUT_ENAME, CourseEngine, execute_notebook
from coursekit.exercises.checks import CHECK_MIMETYPE
from coursekit.instructor.fingerprint import changed_paths, content_digest, stat_snapshot
from coursekit.instructor.processes import OrphanReaper, become_subreaper, kill_descendants

log = logging.getLogger(__name__)

#: papermill removes cells with its error tag before executing; a submitted cell's tag is hidden meanwhile.
HIDDEN_MARKER_TAG = "coursekit-submitted-" + ERROR_MARKER_TAG


@dataclass
class Job:
    """Everything the child needs to run one submission (written as JSON by the grader)."""

    notebook: str
    output: str
    events: str
    workdir: str
    package_dir: str
    kernel_name: str
    cell_timeout: int
    max_output_bytes: int
    watch_roots: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Write the job as JSON to ``path``."""
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Job:
        """Read a job written by :meth:`save`."""
        return cls(**json.loads(path.read_text(encoding="utf-8")))




def _kernel_pid() -> int | None:
    """The pid of the kernel the current run started, once it is known."""
    client = CourseEngine.client
    provisioner = getattr(getattr(client, "km", None), "provisioner", None)
    pid = getattr(provisioner, "pid", None)
    return pid if isinstance(pid, int) else None




def checks_in_outputs(outputs: list[Any]) -> list[dict[str, str]]:
    """The check results (exercise, outcome, message) displayed in one cell's outputs, in order."""
    found = []
    for out in outputs:
        data = out.get("data", {}) if isinstance(out, dict) else {}
        payload = data.get(CHECK_MIMETYPE)
        if not payload:
            continue
        try:
            record = json.loads(payload) if isinstance(payload, str) else dict(payload)
            exercise, outcome = str(record["exercise"]), str(record["outcome"])
        except (ValueError, KeyError, TypeError):
            continue
        message = data.get("text/plain", "")
        message = "".join(message) if isinstance(message, list) else str(message)
        found.append({"exercise": exercise, "outcome": outcome, "message": message[:MAX_MESSAGE_CHARS]})
    return found


class EventLog:
    """Appends one JSON object per line to the events file and flushes at once."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")

    def write(self, **event: Any) -> None:
        """Append one event (with a wall-clock timestamp)."""
        event["t"] = time.time()
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class Watcher:
    """Per-cell hooks: log each cell's start and result, notice tampering and outside writes."""

    def __init__(self, job: Job, events: EventLog) -> None:
        self.job = job
        self.events = events
        self.package_digest = content_digest(Path(job.package_dir) / "coursekit")
        self.roots = [Path(root) for root in job.watch_roots]
        self.baseline = stat_snapshot(self.roots)
        self.tampered = False
        self.reported: set[str] = set()

    def on_cell_start(self, cell: NotebookNode, cell_index: int, **_: Any) -> None:
        """Record that a code cell is about to run."""
        if cell.cell_type == "code" and cell.source.strip():
            self.events.write(event="start", cell=cell_index)

    def on_cell_executed(self, cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any] | None = None, **_: Any) -> None:
        """Record the cell's checks and error, then look for tampering and outside writes."""
        content = (execute_reply or {}).get("content", {})
        error = f"{content.get('ename')}: {content.get('evalue')}"[:MAX_MESSAGE_CHARS // 4] if content.get("status") == "error" else None
        self.events.write(
            event="executed", cell=cell_index, checks=checks_in_outputs(cell.get("outputs", [])), error=error,
            **self.inspect(),
        )

    def inspect(self) -> dict[str, Any]:
        """Compare the package copy and the watched folders with their state before the run."""
        newly_tampered = False
        if not self.tampered and content_digest(Path(self.job.package_dir) / "coursekit") != self.package_digest:
            self.tampered = newly_tampered = True
        outside = [p for p in changed_paths(self.baseline, stat_snapshot(self.roots)) if p not in self.reported]
        self.reported.update(outside)
        truncated = bool(CourseEngine.client and CourseEngine.client.output_truncated)
        return {"tampered": newly_tampered, "outside": outside, "truncated": truncated}


def _replace_tag(nb: NotebookNode, old: str, new: str) -> bool:
    changed = False
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags")
        if isinstance(tags, list) and old in tags:
            cell.metadata["tags"] = [new if tag == old else tag for tag in tags]
            changed = True
    return changed


def hide_submitted_markers(path: Path) -> None:
    """Rename papermill's error tag on submitted cells: papermill deletes such cells before it executes."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - papermill reports an unreadable notebook itself
        return
    if _replace_tag(nb, ERROR_MARKER_TAG, HIDDEN_MARKER_TAG):
        nbformat.write(nb, path)


def restore_submitted_cells(path: Path) -> int:
    """Make the executed notebook's cells exactly the submitted ones again; returns how many cells were removed.

    papermill inserts two markdown cells when a cell raised (an error banner at the top, an anchor
    before the failing cell), which would shift every cell number a report gives. The file is
    replaced atomically (the watchdog may kill this process at any time).
    """
    if not path.is_file():
        return 0
    nb = nbformat.read(path, as_version=4)
    kept = [cell for cell in nb.cells if ERROR_MARKER_TAG not in (cell.get("metadata", {}).get("tags") or [])]
    removed = len(nb.cells) - len(kept)
    nb.cells = kept
    if _replace_tag(nb, HIDDEN_MARKER_TAG, ERROR_MARKER_TAG) or removed:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False) as handle:
            nbformat.write(nb, handle)
        os.replace(handle.name, path)
    return removed


def run(job: Job) -> None:
    """Execute the job's notebook, writing events; never raises for anything the notebook does."""
    events = EventLog(Path(job.events))
    watcher = Watcher(job, events)
    status, detail = "completed", ""
    # The kernel (started below) imports the sandbox's own copy of coursekit first.
    os.environ["PYTHONPATH"] = job.package_dir
    hide_submitted_markers(Path(job.notebook))
    reaper = OrphanReaper(_kernel_pid)
    reaper.start()
    try:
        execute_notebook(
            job.notebook, job.output, kernel_name=job.kernel_name, cwd=job.workdir, cell_timeout=job.cell_timeout,
            start_timeout=120, allow_errors=True, interrupt_on_timeout=True, raise_errors=False,
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": f"the cell ran longer than {job.cell_timeout} s", "traceback": []},
            max_output_bytes=job.max_output_bytes,
            on_cell_start=watcher.on_cell_start, on_cell_executed=watcher.on_cell_executed,
        )
    except DeadKernelError:
        status, detail = "kernel died", "the kernel process exited during a cell"
    except CellTimeoutError as exc:
        status, detail = "timeout", f"the kernel did not respond after the per-cell limit ({str(exc).splitlines()[0]})"
    except Exception as exc:  # noqa: BLE001 - anything a notebook can provoke is a grading result
        status, detail = "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    reaper.stop()
    # The kernel is shut down: anything still below this subreaper was detached by the notebook.
    for leftover in kill_descendants(psutil.Process()):
        log.warning("killed a process the notebook left running: %s", leftover)
    try:
        restore_submitted_cells(Path(job.output))
    except Exception:  # noqa: BLE001 - the events are the grading truth; the stored notebook is for reading
        log.exception("could not remove papermill's error cells from %s", job.output)
    final = watcher.inspect()
    events.write(event="end", status=status, detail=detail, **final)
    events.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child process: ``python -m coursekit.instructor.runner JOB.json``."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING)
    # Before the kernel starts: whatever it detaches re-parents here and stays in the watched tree.
    become_subreaper()
    run(Job.load(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
