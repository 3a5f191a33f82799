"""The child that executes a submission: check outputs read back, output budget, job files, polling,
the subreaper, and the stored notebook's cells."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import types
from pathlib import Path
from queue import Empty
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from coursekit.checks import CHECK_MIMETYPE
from coursekit.runner import (
    HIDDEN_MARKER_TAG, MAX_TRACEBACK_CHARS, BudgetedClient, EventLog, Job, checks_in_outputs, clip_error, hide_submitted_markers,
    polling, restore_submitted_cells,
)
from coursekit.sandbox import Limits, execute


def _display(payload: Any, text: Any = "✅ Correct — q1: Log parameters.") -> dict[str, Any]:
    return {"output_type": "display_data", "metadata": {}, "data": {"text/plain": text, CHECK_MIMETYPE: payload}}


def test_check_outputs_are_read_in_order_and_junk_is_skipped() -> None:
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "hello"},
        _display(json.dumps({"exercise": "q1", "outcome": "incorrect"}), ["❌ Not yet", " — q1"]),
        _display("not json"),
        _display(json.dumps({"outcome": "correct"})),
        _display({"exercise": "q1", "outcome": "correct"}),
        _display(json.dumps({"exercise": "q2", "outcome": "correct"}), "x" * 5000),
    ]
    found = checks_in_outputs(outputs)
    assert [(c["exercise"], c["outcome"]) for c in found] == [("q1", "incorrect"), ("q1", "correct"), ("q2", "correct")]
    assert found[0]["message"] == "❌ Not yet — q1"
    assert len(found[2]["message"]) == 2000


def _client(budget: int) -> BudgetedClient:
    client = BudgetedClient(types.SimpleNamespace(nb=nbformat.v4.new_notebook()), max_output_bytes=budget, kernel_name="none")
    client.reset_execution_trackers()
    client.clear_before_next_output = False
    return client


def _msg(msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"msg_type": msg_type, "content": content, "parent_header": {"msg_id": "m"}, "header": {"msg_type": msg_type}}


def _stream(text: str) -> dict[str, Any]:
    return _msg("stream", {"name": "stdout", "text": text})


def _error(evalue: str, traceback: list[str]) -> dict[str, Any]:
    return _msg("error", {"ename": "ValueError", "evalue": evalue, "traceback": traceback})


def test_outputs_that_do_not_fit_are_dropped_but_later_ones_that_fit_and_checks_are_kept() -> None:
    client, outs = _client(10), []
    client.output(outs, _stream("hello"), None, 0)
    client.output(outs, _stream("x" * 1_000_000), None, 0)
    client.output(outs, _stream("x" * 1_000_000), None, 0)
    client.output(outs, _stream("tiny"), None, 0)
    check = {"text/plain": "y" * 5000, CHECK_MIMETYPE: json.dumps({"exercise": "q1", "outcome": "correct"})}
    client.output(outs, _msg("display_data", {"data": check, "metadata": {}}), None, 0)
    assert client.output_truncated
    assert [o["output_type"] for o in outs] == ["stream", "stream", "stream", "display_data"]
    assert outs[0]["text"] == "hello" and outs[2]["text"] == "tiny"
    assert outs[1]["text"].startswith("[grader: output dropped here: it does not fit in what is left of the notebook's output limit (0 KB)]")
    assert len(outs[3]["data"]["text/plain"]) == 2001
    assert checks_in_outputs(outs)[0]["outcome"] == "correct"


def test_after_one_huge_output_later_prints_and_tracebacks_are_kept_within_the_budget() -> None:
    """Cell 0 prints 5 MB; cells 1-3 print a little and raise: all of that is stored, within the budget."""
    client = _client(256 * 1024)
    cells: list[list[Any]] = [[] for _ in range(4)]
    client.output(cells[0], _stream("x" * 5_000_000), None, 0)
    for index in (1, 2, 3):
        client.output(cells[index], _stream(f"small {index}\n"), None, index)
        client.output(cells[index], _error(f"boom {index}", ["Traceback (most recent call last):", "  in <module>", f"ValueError: boom {index}"]), None, index)
    assert client.output_truncated
    assert [o["output_type"] for o in cells[0]] == ["stream"] and "output dropped here" in cells[0][0]["text"]
    for index in (1, 2, 3):
        assert [o["output_type"] for o in cells[index]] == ["stream", "error"]
        assert cells[index][0]["text"] == f"small {index}\n" and cells[index][1]["traceback"][-1] == f"ValueError: boom {index}"
    assert client.output_used <= 256 * 1024


def test_tracebacks_are_clipped_and_kept_beyond_the_budget_one_per_cell() -> None:
    client, outs = _client(10), []
    huge = [f"frame {i}: " + "z" * 1000 for i in range(500)] + ["ValueError: the real cause"]
    client.output(outs, _error("v" * 10_000, list(huge)), None, 0)
    client.output(outs, _stream("after"), None, 0)
    client.output(outs, _error("second", ["ValueError: second"]), None, 0)
    assert [o["output_type"] for o in outs] == ["error", "stream"]  # the stream did not fit; the 2nd error replaced the 1st
    assert outs[0]["evalue"] == "second" and outs[0]["traceback"] == ["ValueError: second"]
    other: list[Any] = []
    client.output(other, _error("v" * 10_000, list(huge)), None, 1)
    kept = other[0]
    assert sum(len(line) for line in kept["traceback"]) <= MAX_TRACEBACK_CHARS + 100
    assert kept["traceback"][0].startswith("frame 0:") and kept["traceback"][-1] == "ValueError: the real cause"
    assert any(line.startswith("[grader:") and "characters of this traceback dropped" in line for line in kept["traceback"])
    assert len(kept["evalue"]) == 2001


def test_a_traceback_of_one_giant_line_is_clipped_too() -> None:
    content = {"ename": "E", "evalue": "e", "traceback": ["a" * 100_000]}
    clip_error(content, limit=1000)
    assert sum(len(line) for line in content["traceback"]) < 1100


def test_jobs_and_events_round_trip(tmp_path: Path) -> None:
    job = Job("in.ipynb", "out.ipynb", "events.jsonl", "work", "pkg", "kernel", 5, 1024, ["/a"])
    job.save(tmp_path / "job.json")
    assert Job.load(tmp_path / "job.json") == job
    log = EventLog(tmp_path / "events.jsonl")
    log.write(event="start", cell=1)
    log.write(event="end", status="completed")
    log.close()
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(e["event"], "t" in e) for e in lines] == [("start", True), ("end", True)]


class LostWakeUpChannel:
    """A kernel channel whose reply is already queued, but whose wait in progress missed the wake-up.

    Like zmq's edge-triggered descriptor after nbclient sent on the socket meanwhile: the first
    ``get_msg`` sleeps through its whole timeout; a fresh call finds the queued message at once.
    """

    def __init__(self) -> None:
        self.queued = [{"msg": "reply"}]
        self.calls: list[float | None] = []

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        self.calls.append(timeout)
        if len(self.calls) == 1:
            await asyncio.sleep(timeout or 0)
            raise Empty
        return self.queued.pop(0)


def _timed(coroutine: Any) -> tuple[Any, float]:
    started = time.monotonic()
    try:
        result = asyncio.run(coroutine)
    except Empty as exc:
        result = exc
    return result, time.monotonic() - started


def test_the_grader_client_finds_a_reply_whose_wake_up_was_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the polling guard is for: within ~step with it, the whole timeout without it."""
    bare = LostWakeUpChannel()
    result, waited = _timed(bare.get_msg(timeout=1.0))
    assert isinstance(result, Empty) and waited >= 1.0  # the reply sat in the queue all along

    kc = types.SimpleNamespace(shell_channel=LostWakeUpChannel(), iopub_channel=LostWakeUpChannel())

    async def start_kernel_client(self: NotebookClient) -> Any:
        return kc

    monkeypatch.setattr(NotebookClient, "async_start_new_kernel_client", start_kernel_client)
    client = _client(1000)
    client.poll_step = 0.05
    assert asyncio.run(client.async_start_new_kernel_client()) is kc
    for channel in (kc.shell_channel, kc.iopub_channel):
        result, waited = _timed(channel.get_msg(timeout=60))
        assert result == {"msg": "reply"} and waited < 0.5


def test_polling_keeps_the_deadline() -> None:
    async def never(timeout: float | None = None) -> dict[str, Any]:
        await asyncio.sleep(timeout or 0)
        raise Empty

    result, waited = _timed(polling(never, step=0.05)(timeout=0.2))
    assert isinstance(result, Empty) and 0.2 <= waited < 1


SUBREAPER = """
import os, sys, time
from coursekit.runner import become_subreaper, kill_descendants
import psutil
assert become_subreaper()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
    os._exit(0)
os.wait()
time.sleep(0.3)
orphans = psutil.Process().children()
print([p.ppid() for p in orphans] == [os.getpid()], len(kill_descendants(psutil.Process())), psutil.Process().children() and
      all(p.status() == psutil.STATUS_ZOMBIE for p in psutil.Process().children()))
"""


def test_a_subreaper_adopts_a_double_forked_orphan_and_kills_it() -> None:
    done = subprocess.run([sys.executable, "-c", SUBREAPER], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "1", "True"]


REAPER = """
import os, time
import psutil
from coursekit.runner import OrphanReaper, become_subreaper
assert become_subreaper()
spared = os.fork()
if spared == 0:
    os._exit(0)  # stands for the kernel: its status is jupyter_client's to read
for _ in range(5):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os._exit(0)  # adopted by this process, then it ends
        time.sleep(0.2)
        os._exit(0)
time.sleep(1)
zombies = lambda: sorted(p.pid for p in psutil.Process().children() if p.status() == psutil.STATUS_ZOMBIE)
before = zombies()
print(len(before), OrphanReaper(lambda: None).reap(), OrphanReaper(lambda: spared).reap(), zombies() == [spared])
"""


def test_the_reaper_reads_the_status_of_adopted_orphans_but_not_the_kernels() -> None:
    done = subprocess.run([sys.executable, "-c", REAPER], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["11", "0", "10", "True"]  # 5 intermediates, 5 adopted, 1 spared


def test_papermills_error_cells_are_removed_and_submitted_tags_survive(tmp_path: Path) -> None:
    submitted = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("1"),
        nbformat.v4.new_markdown_cell("a learner's cell with papermill's tag", metadata={"tags": ["papermill-error-cell-tag", "mine"]}),
        nbformat.v4.new_code_cell("raise ValueError"),
        nbformat.v4.new_code_cell("2"),
    ])
    path = tmp_path / "in.ipynb"
    nbformat.write(submitted, path)
    hide_submitted_markers(path)
    hidden = nbformat.read(path, as_version=4)
    assert hidden.cells[2].metadata["tags"] == [HIDDEN_MARKER_TAG, "mine"]
    # What papermill writes after a cell raised: an anchor before the cell, a banner on top.
    executed = nbformat.read(path, as_version=4)
    for index in (3, 0):
        executed.cells.insert(index, nbformat.v4.new_markdown_cell("<span>papermill</span>", metadata={"tags": ["papermill-error-cell-tag"]}))
    out = tmp_path / "out.ipynb"
    nbformat.write(executed, out)
    assert restore_submitted_cells(out) == 2
    restored = nbformat.read(out, as_version=4)
    assert [c.source for c in restored.cells] == [c.source for c in submitted.cells]
    assert restored.cells[2].metadata["tags"] == ["papermill-error-cell-tag", "mine"]
    assert restore_submitted_cells(tmp_path / "missing.ipynb") == 0
    assert not list(tmp_path.glob("*.tmp"))


def _notebook(*cells: Any) -> bytes:
    made = [nbformat.v4.new_code_cell(c) if isinstance(c, str) else c for c in cells]
    return nbformat.writes(nbformat.v4.new_notebook(cells=made)).encode()


@pytest.mark.notebook
def test_the_stored_notebook_has_the_submitted_cells_and_keeps_output_after_a_huge_one(tmp_path: Path) -> None:
    """Cell 4 (of 7, markdown included) raises: it is cell 4 in the stored notebook. A 5 MB print in cell 2
    is dropped, but the later prints and the traceback are stored, and the file stays within the budget."""
    source = _notebook(
        nbformat.v4.new_markdown_cell("# A submission"),
        "print('x' * 5_000_000)",
        "print('small one')",
        "def f():\n    raise ValueError('boom')\nf()",
        nbformat.v4.new_markdown_cell("after the error"),
        "print('small two')",
        "1 / 0",
    )
    started = time.monotonic()
    execution = execute("01_first_run", source, tmp_path / "private", Limits(cell_timeout=60, max_output_kb=256), [])
    assert execution.notebook is not None and execution.events[-1]["status"] == "completed"
    stored = nbformat.read(execution.notebook, as_version=4)
    submitted = nbformat.reads(source.decode(), as_version=4)
    assert [c.cell_type for c in stored.cells] == [c.cell_type for c in submitted.cells]
    assert [c.source for c in stored.cells] == [c.source for c in submitted.cells]
    outputs = [c.get("outputs", []) for c in stored.cells]
    assert "output dropped here" in outputs[1][0]["text"]
    assert outputs[2][0]["text"] == "small one\n" and outputs[5][0]["text"] == "small two\n"
    assert [(o["output_type"], o.get("ename")) for o in outputs[3]] == [("error", "ValueError")]
    assert [(o["output_type"], o.get("ename")) for o in outputs[6]] == [("error", "ZeroDivisionError")]
    assert execution.notebook.stat().st_size < 256 * 1024 + 2 * MAX_TRACEBACK_CHARS + 50_000  # + cells and metadata
    assert any(e.get("truncated") for e in execution.events)
    assert time.monotonic() - started < 60


@pytest.mark.notebook
def test_a_submission_capturing_output_into_a_widget_is_graded_to_the_end(tmp_path: Path) -> None:
    """Learners' code may capture into an ipywidgets.Output: the grader's polling keeps every cell's reply in sight."""
    source = _notebook(
        "import ipywidgets as widgets\nfrom IPython.display import display\nout = widgets.Output()\ndisplay(out)",
        "for i in range(50):\n    with out:\n        print(i)",
        "print('after the captures')",
    )
    started = time.monotonic()
    execution = execute("01_first_run", source, tmp_path / "private", Limits(cell_timeout=60, notebook_timeout=120), [])
    took = time.monotonic() - started
    assert execution.killed is None and execution.events[-1]["status"] == "completed"
    assert [e["cell"] for e in execution.events if e["event"] == "executed" and not e["error"]] == [0, 1, 2]
    stored = nbformat.read(execution.notebook, as_version=4)
    assert stored.cells[2].outputs[0]["text"] == "after the captures\n"
    assert took < 30  # well within the 60 s cell limit a lost reply would wait out
