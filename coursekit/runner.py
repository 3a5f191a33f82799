"""Execute one submitted notebook in its sandbox: the child process the grader starts per submission.

``python -m coursekit.runner JOB.json`` is run by :mod:`coursekit.sandbox`, never by hand. It executes
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

import ctypes
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import nbformat
import papermill
import psutil
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbformat.v4 import output_from_msg
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError
from papermill.execute import ERROR_MARKER_TAG
from traitlets import Float, Integer

from coursekit.checks import CHECK_MIMETYPE
from coursekit.fingerprint import changed_paths, content_digest, stat_snapshot

log = logging.getLogger(__name__)

ENGINE_NAME = "coursekit-grader"
TIMEOUT_ENAME = "CellTimeout"
MAX_MESSAGE_CHARS = 2000
#: An error output (traceback) is always stored, clipped to this many characters.
MAX_TRACEBACK_CHARS = 20_000
TRUNCATION_NOTE = "[grader: output dropped here: it does not fit in what is left of the notebook's output limit ({kb} KB)]\n"
CLIPPED_NOTE = "[grader: {n} characters of this traceback dropped]"
#: Seconds between two looks at a kernel channel (:func:`polling`).
POLL_STEP = 1.0
#: prctl(2) option: orphaned descendants re-parent to this process instead of init.
PR_SET_CHILD_SUBREAPER = 36
#: Rounds of kill-then-look-again before giving up on a tree that keeps forking.
KILL_ROUNDS = 20
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


def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (Linux ``prctl``); False where unavailable.

    A process whose parent exits re-parents to its nearest subreaper ancestor instead of init, so a
    double fork or ``setsid`` cannot leave the tree rooted here while this process runs.
    """
    if not sys.platform.startswith("linux"):
        log.warning("not Linux: processes the notebook detaches are only found by the sandbox sweep, and their memory is not counted")
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0
    except (OSError, AttributeError) as exc:
        log.warning("prctl is not available (%s): detached processes are only found by the sandbox sweep", exc)
        return False
    if failed:
        log.warning("prctl(PR_SET_CHILD_SUBREAPER) failed: %s", os.strerror(ctypes.get_errno()))
        return False
    return True


def alive(proc: psutil.Process) -> bool:
    """True while ``proc`` runs (a zombie has exited: it only waits for its parent to read its status)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def describe(proc: psutil.Process) -> str:
    """``pid command line`` of a process, shortened, for the log."""
    try:
        command = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        command = "?"
    return f"{proc.pid} {command[:200]}"


def kill_processes(processes: list[psutil.Process], wait: float = 1.0) -> list[str]:
    """SIGKILL each process (psutil refuses a reused pid), then wait up to ``wait`` s until all are gone.

    Returns the killed processes, described for the log.
    """
    killed = []
    for proc in processes:
        text = describe(proc)
        try:
            proc.kill()
        except psutil.Error:
            continue
        killed.append(text)
    deadline = time.monotonic() + wait
    while any(alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.02)
    return killed


def kill_descendants(root: psutil.Process, rounds: int = KILL_ROUNDS) -> list[str]:
    """SIGKILL every live descendant of ``root`` (not ``root``), looking again until none is left.

    A process may fork between the look and the kill; while ``root`` is a running subreaper its new
    child re-parents to ``root`` and the next round finds it. Returns what was killed.
    """
    killed: list[str] = []
    for _ in range(rounds):
        try:
            found = [p for p in root.children(recursive=True) if alive(p)]
        except psutil.Error:
            return killed
        if not found:
            return killed
        killed += kill_processes(found)
    log.warning("the process tree of %d still grows after %d rounds of killing", root.pid, rounds)
    return killed


class OrphanReaper:
    """Reads the exit status of adopted processes that ended, so a subreaper's zombies do not pile up.

    A detached process that exits while the runner lives becomes the runner's zombie (it holds a
    pid until its status is read). Every ``interval`` seconds each zombie child is reaped, except the
    one ``spare()`` names (the kernel: jupyter_client reads its status); nothing is reaped while
    ``spare()`` is None (the kernel is not started yet).
    """

    def __init__(self, spare: Callable[[], int | None], interval: float = 1.0) -> None:
        self.spare = spare
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="orphan-reaper", daemon=True)

    def reap(self) -> int:
        """Reap the zombie children now; returns how many."""
        spared = self.spare()
        if spared is None:
            return 0
        reaped = 0
        for child in psutil.Process().children():
            try:
                if child.pid != spared and child.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(child.pid, os.WNOHANG)
                    reaped += 1
            except (psutil.Error, ChildProcessError):
                pass
        return reaped

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.reap()

    def start(self) -> None:
        """Reap in a background thread until :meth:`stop`."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._thread.join(timeout=5)


def _kernel_pid() -> int | None:
    """The pid of the kernel the current run started, once it is known."""
    client = BudgetedEngine.client
    provisioner = getattr(getattr(client, "km", None), "provisioner", None)
    pid = getattr(provisioner, "pid", None)
    return pid if isinstance(pid, int) else None


def _content_size(content: dict[str, Any]) -> int:
    size = len(content.get("text", "") or "")
    size += sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in (content.get("data") or {}).values())
    size += sum(len(line) for line in content.get("traceback", []) or [])
    return size


def polling(get_msg: Callable[..., Awaitable[dict[str, Any]]], step: float = POLL_STEP) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Wrap a channel's async ``get_msg`` so it looks for a message at least every ``step`` seconds.

    zmq's socket descriptor is edge-triggered: when nbclient sends on the shell socket (the state of an
    ``ipywidgets.Output`` that a cell captures output into) while another task waits on it, the wake-up
    for the execute reply can be lost, and the wait then lasts the whole cell timeout (nbclient #312,
    jupyter_client #1059). Short polls up to the same deadline find the message within ``step``.
    """

    async def get(timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = step if deadline is None else max(0.0, min(step, deadline - time.monotonic()))
            try:
                return await get_msg(timeout=wait)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get


def poll_channels(kc: Any, step: float = POLL_STEP) -> Any:
    """Make a kernel client's shell and IOPub reads poll every ``step`` seconds (:func:`polling`); returns ``kc``."""
    for channel in (kc.shell_channel, kc.iopub_channel):
        channel.get_msg = polling(channel.get_msg, step)
    return kc


def clip_error(content: dict[str, Any], limit: int = MAX_TRACEBACK_CHARS) -> None:
    """Shorten an error message's traceback (and value) in place to about ``limit`` characters.

    Keeps the first and the last lines, where the failing call and the exception are.
    """
    if isinstance(content.get("evalue"), str) and len(content["evalue"]) > MAX_MESSAGE_CHARS:
        content["evalue"] = content["evalue"][:MAX_MESSAGE_CHARS] + "…"
    lines = [line if isinstance(line, str) else str(line) for line in content.get("traceback") or []]
    total = sum(len(line) for line in lines)
    if total <= limit:
        return
    half = limit // 2
    head: list[str] = []
    tail: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) > half:
            break
        head.append(line)
        used += len(line)
    used = 0
    for line in reversed(lines[len(head):]):
        if used + len(line) > half:
            break
        tail.insert(0, line)
        used += len(line)
    if not head and not tail:  # one giant line
        head, tail = [lines[0][:half]], [lines[-1][-half:]]
    dropped = total - sum(len(line) for line in head + tail)
    content["traceback"] = [*head, CLIPPED_NOTE.format(n=dropped), *tail]


class BudgetedClient(PapermillNotebookClient):  # type: ignore[misc]
    """papermill's client with a per-notebook output budget, reading the kernel channels by short polls.

    Budget: an output is stored when it fits in what is left of ``max_output_bytes``; one that does not
    fit is dropped (a note says so, once per cell) and later outputs that fit are stored again. Check
    results are always stored, and so are error outputs (tracebacks), clipped to
    :data:`MAX_TRACEBACK_CHARS`: within the budget while they fit, and beyond it at most one per cell.

    Polling is a guard because learners' code is untrusted: it may capture output into an
    ``ipywidgets.Output`` (``with out: print(...)``). nbclient then sends the widget's state on the shell
    socket while it awaits the cell's reply there, and the reply's wake-up can be lost (nbclient #312,
    jupyter_client #1059): without polling the cell would wait out its whole time limit. The kit's own
    notebooks never capture output (``tests/test_no_output_capture.py``) and run with plain papermill.
    """

    max_output_bytes = Integer(1_000_000).tag(config=True)
    poll_step = Float(POLL_STEP, help="seconds between two looks at the shell and IOPub channels").tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.output_used = 0
        self.output_truncated = False
        self._noted_cells: set[int] = set()
        #: Per cell, the one error output stored beyond the budget (a later one replaces it).
        self._extra_errors: dict[int, NotebookNode] = {}

    async def async_start_new_kernel_client(self) -> Any:
        """Start the kernel client as nbclient does, then make its shell and IOPub reads poll."""
        return poll_channels(await super().async_start_new_kernel_client(), self.poll_step)

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int) -> NotebookNode | None:
        """Store the output if it fits in what is left of the budget; checks and (clipped) errors always."""
        content = msg.get("content", {})
        data = content.get("data") or {}
        if CHECK_MIMETYPE in data:
            text = data.get("text/plain", "")
            if isinstance(text, str) and len(text) > MAX_MESSAGE_CHARS:
                data["text/plain"] = text[:MAX_MESSAGE_CHARS] + "…"
            return super().output(outs, msg, display_id, cell_index)  # type: ignore[no-any-return]
        if msg.get("msg_type") == "error":
            clip_error(content)
        size = _content_size(content)
        if self.output_used + size <= self.max_output_bytes:
            self.output_used += size
            return super().output(outs, msg, display_id, cell_index)  # type: ignore[no-any-return]
        self.output_truncated = True
        if msg.get("msg_type") == "error":
            previous = self._extra_errors.get(cell_index)
            if previous is not None and any(o is previous for o in outs) and not self.clear_before_next_output:
                # In place, so later outputs keep their positions (display updates address them by index).
                previous.update(output_from_msg(msg))
                return previous
            out = super().output(outs, msg, display_id, cell_index)
            if out is not None:
                self._extra_errors[cell_index] = out
            return out  # type: ignore[no-any-return]
        if cell_index not in self._noted_cells:
            self._noted_cells.add(cell_index)
            note = NotebookNode(output_type="stream", name="stderr", text=TRUNCATION_NOTE.format(kb=self.max_output_bytes // 1024))
            outs.append(note)
        return None


class BudgetedEngine(NBClientEngine):  # type: ignore[misc]
    """papermill's nbclient engine running :class:`BudgetedClient`, whose truncation flag the runner reads."""

    #: The client of the current run (one run per child process).
    client: BudgetedClient | None = None

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        """Execute like papermill's engine (same keyword handling), with :class:`BudgetedClient`."""
        kwargs.pop("input_path", None)
        timeout = kwargs.pop("execution_timeout", None)
        start_timeout = kwargs.pop("start_timeout", 60)
        kwargs.pop("timeout", None)
        client = BudgetedClient(
            nb_man, timeout=timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
            log=logging.getLogger("papermill"), **kwargs,
        )
        cls.client = client
        return client.execute()


papermill_engines.register(ENGINE_NAME, BudgetedEngine)


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
        truncated = bool(BudgetedEngine.client and BudgetedEngine.client.output_truncated)
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
        papermill.execute_notebook(
            job.notebook, job.output, kernel_name=job.kernel_name, engine_name=ENGINE_NAME, cwd=job.workdir,
            progress_bar=False, log_output=False, start_timeout=120, execution_timeout=job.cell_timeout,
            allow_errors=True, interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": f"the cell ran longer than {job.cell_timeout} s", "traceback": []},
            max_output_bytes=job.max_output_bytes,
            on_cell_start=watcher.on_cell_start, on_cell_executed=watcher.on_cell_executed,
        )
    except PapermillExecutionError:
        pass  # cell errors are in the events; execution went on past them
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
    """Entry point of the child process: ``python -m coursekit.runner JOB.json``."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING)
    # Before the kernel starts: whatever it detaches re-parents here and stays in the watched tree.
    become_subreaper()
    run(Job.load(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
