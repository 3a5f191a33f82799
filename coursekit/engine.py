"""The grader's notebook-execution engine: papermill's nbclient engine with an output budget and polling.

Registered with papermill as ``coursekit-grader`` (:data:`ENGINE_NAME`); :mod:`coursekit.instructor.runner` executes
each submission with it. The kit's own notebooks run with plain papermill (tests, benchmarks).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from queue import Empty
from typing import Any

from nbclient.util import run_sync
from nbformat import NotebookNode
from nbformat.v4 import output_from_msg
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from traitlets import Bool, Float, Integer

from coursekit.exercises.checks import CHECK_MIMETYPE

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
    #: A ``print`` may reach the client as several stream messages ("text", then "\n"); merge them as
    #: JupyterLab shows them, so the stored notebook does not depend on the kernel's flush timing.
    coalesce_streams = Bool(True).tag(config=True)
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
