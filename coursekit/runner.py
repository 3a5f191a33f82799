"""Execute one submitted notebook in its sandbox: the child process the grader starts per submission.

``python -m coursekit.runner JOB.json`` is run by :mod:`coursekit.sandbox`, never by hand. It executes
the notebook with papermill (fresh course kernel, cwd = the sandbox) and, after every cell, appends one
JSON line to an events file the kernel is not told about: which cell ran, the check results it displayed,
its error, and whether the sandbox's copy of ``coursekit`` or a watched folder changed. The grader reads
those events even when it had to kill this process (time or memory limit), so progress is never lost.

Execution continues past cell errors (nbclient's ``allow_errors``): exercises are independent enough that
a mistake in exercise 2 should not zero exercises 3-5. A cell over the per-cell time limit is interrupted
and counts as an error; the following cells still run. Outputs beyond the size budget are dropped from the
stored notebook (check results are always kept) and the run is marked "output too large".
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError
from traitlets import Integer

from coursekit.checks import CHECK_MIMETYPE
from coursekit.fingerprint import changed_paths, content_digest, stat_snapshot

log = logging.getLogger(__name__)

ENGINE_NAME = "coursekit-grader"
POLLING_ENGINE_NAME = "coursekit-polling"
TIMEOUT_ENAME = "CellTimeout"
MAX_MESSAGE_CHARS = 2000
TRUNCATION_NOTE = "[grader: output dropped here, the notebook's output limit ({kb} KB) is used up]\n"


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


def _content_size(content: dict[str, Any]) -> int:
    size = len(content.get("text", "") or "")
    size += sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in (content.get("data") or {}).values())
    size += sum(len(line) for line in content.get("traceback", []) or [])
    return size


def polling(get_msg: Callable[..., Awaitable[dict[str, Any]]], step: float = 1.0) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Wrap a channel's async ``get_msg`` so it looks for a message at least every ``step`` seconds.

    zmq's socket descriptor is edge-triggered: when nbclient sends on the shell socket (widget state
    sync, e.g. for an ``ipywidgets.Output``) while another task waits on it, the wake-up for the
    execute reply can be lost, and the wait then lasts the whole cell timeout (seen with lesson 5's panel).
    Short polls up to the same deadline find the message within ``step``.
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


class PollingClient(PapermillNotebookClient):  # type: ignore[misc]
    """papermill's client with channels that cannot miss a reply (:func:`polling`)."""

    async def async_start_new_kernel_client(self) -> Any:
        """Start the kernel client as nbclient does, then make its shell and IOPub reads poll."""
        kc = await super().async_start_new_kernel_client()
        for channel in (kc.shell_channel, kc.iopub_channel):
            channel.get_msg = polling(channel.get_msg)
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)


class BudgetedClient(PollingClient):
    """:class:`PollingClient` with a per-notebook output budget (check results always get through)."""

    max_output_bytes = Integer(1_000_000).tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.output_used = 0
        self.output_truncated = False
        self._noted_cells: set[int] = set()

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int) -> NotebookNode | None:
        """Store the output while the budget lasts; after that drop all but check results (one note per cell)."""
        content = msg.get("content", {})
        data = content.get("data") or {}
        if CHECK_MIMETYPE in data:
            text = data.get("text/plain", "")
            if isinstance(text, str) and len(text) > MAX_MESSAGE_CHARS:
                data["text/plain"] = text[:MAX_MESSAGE_CHARS] + "…"
            return super().output(outs, msg, display_id, cell_index)  # type: ignore[no-any-return]
        size = _content_size(content)
        if not self.output_truncated and self.output_used + size <= self.max_output_bytes:
            self.output_used += size
            return super().output(outs, msg, display_id, cell_index)  # type: ignore[no-any-return]
        self.output_truncated = True
        if cell_index not in self._noted_cells:
            self._noted_cells.add(cell_index)
            note = NotebookNode(output_type="stream", name="stderr", text=TRUNCATION_NOTE.format(kb=self.max_output_bytes // 1024))
            outs.append(note)
        return None


class PollingEngine(NBClientEngine):  # type: ignore[misc]
    """papermill's nbclient engine, running :class:`PollingClient` (tests and benchmarks use it too)."""

    client_class: type[PollingClient] = PollingClient
    #: The client of the current run (one run per child process).
    client: PollingClient | None = None

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        """Execute like papermill's engine (same keyword handling), with this engine's client."""
        kwargs.pop("input_path", None)
        timeout = kwargs.pop("execution_timeout", None)
        start_timeout = kwargs.pop("start_timeout", 60)
        kwargs.pop("timeout", None)
        client = cls.client_class(
            nb_man, timeout=timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
            log=logging.getLogger("papermill"), **kwargs,
        )
        cls.client = client
        return client.execute()


class BudgetedEngine(PollingEngine):
    """:class:`PollingEngine` running :class:`BudgetedClient`, whose truncation flag the runner reads."""

    client_class = BudgetedClient
    client: BudgetedClient | None = None


papermill_engines.register(ENGINE_NAME, BudgetedEngine)
papermill_engines.register(POLLING_ENGINE_NAME, PollingEngine)


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


def run(job: Job) -> None:
    """Execute the job's notebook, writing events; never raises for anything the notebook does."""
    events = EventLog(Path(job.events))
    watcher = Watcher(job, events)
    status, detail = "completed", ""
    # The kernel (started below) imports the sandbox's own copy of coursekit first.
    os.environ["PYTHONPATH"] = job.package_dir
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
    final = watcher.inspect()
    events.write(event="end", status=status, detail=detail, **final)
    events.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child process: ``python -m coursekit.runner JOB.json``."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING)
    run(Job.load(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
