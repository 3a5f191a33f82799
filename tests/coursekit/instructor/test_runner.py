"""The child that executes a submission: check outputs read back, job files, the stored notebook's cells,
and whole submissions run through the sandbox."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from coursekit.engine import MAX_TRACEBACK_CHARS
from coursekit.exercises.checks import CHECK_MIMETYPE
from coursekit.instructor.runner import (
    HIDDEN_MARKER_TAG,
    EventLog,
    Job,
    checks_in_outputs,
    hide_submitted_markers,
    restore_submitted_cells,
)
from coursekit.instructor.sandbox import Limits, execute


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
