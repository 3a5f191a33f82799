"""The one notebook-execution engine: papermill with a client that polls the kernel and can bound outputs.

Every path that executes a notebook uses it: the tests, the benchmarks, the grader's child process
(:mod:`coursekit.instructor.runner`), the in-place refresh of the solutions and the screenshot script.
:func:`execute_notebook` is the call; ``python -m coursekit.engine SOURCE OUTPUT -p NAME VALUE`` is the same
from a shell (for runs in another process with their own environment). It is papermill's nbclient engine,
registered as :data:`ENGINE_NAME`, with :class:`CourseClient`:

- it reads the kernel's shell and IOPub channels by short polls (:func:`polling`), so a lost wake-up costs
  about a second instead of the whole cell timeout;
- it merges consecutive stream outputs as JupyterLab shows them;
- with ``max_output_bytes`` (the grader) it keeps a notebook's outputs within a budget.

The learner runtime never imports it (``tests/test_layout.py``).
"""

from __future__ import annotations

import coursekit.quick_imports  # noqa: F401  # isort: skip - before nbformat and papermill

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from typing import Any

import nbformat
import papermill
import yaml
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbformat.v4 import output_from_msg
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError
from traitlets import Bool, Float, Integer

from coursekit.exercises.checks import CHECK_MIMETYPE
from coursekit.settings import KERNEL_NAME

log = logging.getLogger(__name__)

ENGINE_NAME = "coursekit"
#: papermill's own per-cell limit when the caller sets none, s.
CELL_TIMEOUT = 600
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


class CourseClient(PapermillNotebookClient):  # type: ignore[misc]
    """papermill's client reading the kernel channels by short polls, with an optional output budget.

    Polling guards every run: code may capture output into an ``ipywidgets.Output`` (``with out: print(...)``);
    nbclient then sends the widget's state on the shell socket while it awaits the cell's reply there, and
    the reply's wake-up can be lost (nbclient #312, jupyter_client #1059): without polling the cell would
    wait out its whole time limit. The kit's own notebooks never capture output
    (``tests/test_no_output_capture.py``), so they also run under stock papermill and nbval; learners'
    code is untrusted.

    Budget (``max_output_bytes``, the grader; ``None`` keeps everything): an output is stored when it fits in
    what is left; one that does not fit is dropped (a note says so, once per cell) and later outputs that fit
    are stored again. Check results are always stored, and so are error outputs (tracebacks), clipped to
    :data:`MAX_TRACEBACK_CHARS`: within the budget while they fit, and beyond it at most one per cell.
    """

    max_output_bytes = Integer(None, allow_none=True, help="output budget of the notebook, bytes (None: no limit)").tag(config=True)
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
        if self.max_output_bytes is None:
            return super().output(outs, msg, display_id, cell_index)  # type: ignore[no-any-return]
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


class CourseEngine(NBClientEngine):  # type: ignore[misc]
    """papermill's nbclient engine running :class:`CourseClient` (whose truncation flag the grader reads)."""

    #: The client of the current run.
    client: CourseClient | None = None

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        """Execute like papermill's engine (same keyword handling), with :class:`CourseClient`."""
        kwargs.pop("input_path", None)
        timeout = kwargs.pop("execution_timeout", None)
        start_timeout = kwargs.pop("start_timeout", 60)
        kwargs.pop("timeout", None)
        client = CourseClient(
            nb_man, timeout=timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
            log=logging.getLogger("papermill"), **kwargs,
        )
        cls.client = client
        return client.execute()


papermill_engines.register(ENGINE_NAME, CourseEngine)


@contextmanager
def kernel_environment(env: Mapping[str, str | None]) -> Iterator[None]:
    """Set (``None``: remove) variables for a kernel started inside the block; restore them afterwards."""
    before = {name: os.environ.get(name) for name in env}
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute_notebook(
    source: str | Path, output: str | Path, *, parameters: Mapping[str, Any] | None = None,
    cwd: str | Path | None = None, env: Mapping[str, str | None] | None = None, kernel_name: str = KERNEL_NAME,
    cell_timeout: int | None = CELL_TIMEOUT, raise_errors: bool = True, **options: Any,
) -> NotebookNode:
    """Execute ``source`` in a fresh kernel with this engine, write it to ``output`` and return it.

    ``parameters`` go to the notebook's ``parameters`` cell (papermill), ``cwd`` defaults to the source's
    folder, ``env`` is what the kernel inherits on top of this process's environment (``None`` removes a
    variable). A cell error stops the run (papermill marks the cell in ``output``): it raises
    ``PapermillExecutionError`` unless ``raise_errors`` is false. ``options`` reach papermill and the client
    (``allow_errors``, ``max_output_bytes``, ``on_cell_executed`` …).
    """
    source, output = Path(source), Path(output)
    try:
        with kernel_environment(env or {}):
            papermill.execute_notebook(
                str(source), str(output), parameters=dict(parameters or {}), engine_name=ENGINE_NAME,
                kernel_name=kernel_name, language="python", cwd=str(cwd or source.parent), progress_bar=False, log_output=False,
                execution_timeout=cell_timeout, **options,
            )
    except PapermillExecutionError:
        if raise_errors:
            raise
    return nbformat.read(output, as_version=4)


def without_run_metadata(nb: NotebookNode) -> NotebookNode:
    """Drop what a run adds besides outputs (papermill's and nbclient's timings, papermill's empty tag lists),
    in place: for notebooks that are stored."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
    return nb


def main(argv: list[str] | None = None) -> int:
    """``python -m coursekit.engine SOURCE OUTPUT [-p NAME VALUE]...``: execute one notebook; 1 if a cell failed."""
    parser = argparse.ArgumentParser(prog="python -m coursekit.engine", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a parameters-cell value, read as YAML (10, 'text', [1, 2]); repeatable")
    parser.add_argument("--cwd", type=Path, help="the kernel's working folder (default: the notebook's)")
    parser.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT, help=f"seconds per cell (default {CELL_TIMEOUT})")
    parser.add_argument("-k", "--kernel", default=KERNEL_NAME, help=f"kernel name (default {KERNEL_NAME})")
    args = parser.parse_args(argv)
    parameters = {name: yaml.safe_load(value) for name, value in args.parameter}
    try:
        execute_notebook(args.source, args.output, parameters=parameters, cwd=args.cwd, kernel_name=args.kernel,
                         cell_timeout=args.cell_timeout)
    except PapermillExecutionError as exc:
        print(f"{args.source.name}: cell {exc.cell_index} raised {exc.ename}: {exc.evalue}", file=sys.stderr)  # noqa: T201 - CLI
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
