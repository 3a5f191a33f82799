"""The one execution engine: polling that finds a lost reply, an output budget that keeps what fits, the call and the command."""

from __future__ import annotations

import asyncio
import json
import os
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
from papermill.exceptions import PapermillExecutionError

from coursekit.engine import MAX_TRACEBACK_CHARS, CourseClient, clip_error, execute_notebook, polling, without_run_metadata
from coursekit.exercises.checks import CHECK_MIMETYPE
from coursekit.instructor.runner import checks_in_outputs


def _client(budget: int) -> CourseClient:
    client = CourseClient(types.SimpleNamespace(nb=nbformat.v4.new_notebook()), max_output_bytes=budget, kernel_name="none")
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


def _tiny(path: Path, *sources: str) -> Path:
    cells = [nbformat.v4.new_code_cell(src) for src in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


@pytest.mark.notebook
def test_execute_notebook_passes_parameters_and_the_kernel_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_TEST_GONE", "inherited")
    source = _tiny(tmp_path / "in.ipynb", "N = 1", "import os\nprint(N * 2, os.environ.get('ENGINE_TEST_SET'), os.environ.get('ENGINE_TEST_GONE'), os.getcwd())")
    nb = execute_notebook(source, tmp_path / "out.ipynb", parameters={"N": 21}, cwd=tmp_path,
                          env={"ENGINE_TEST_SET": "here", "ENGINE_TEST_GONE": None})
    assert nb.cells[-1].outputs[0]["text"] == f"42 here None {tmp_path}\n"
    assert os.environ["ENGINE_TEST_GONE"] == "inherited" and "ENGINE_TEST_SET" not in os.environ
    assert without_run_metadata(nb).metadata.get("papermill") is None
    assert [c.metadata for c in nb.cells] == [{"tags": ["parameters"]}, {"tags": ["injected-parameters"]}, {}]


@pytest.mark.notebook
def test_a_failing_cell_raises_or_is_returned_and_the_command_says_which(tmp_path: Path) -> None:
    source = _tiny(tmp_path / "in.ipynb", "N = 1", "raise ValueError('no good')", "print('never')")
    with pytest.raises(PapermillExecutionError):
        execute_notebook(source, tmp_path / "out.ipynb")
    nb = execute_notebook(source, tmp_path / "out.ipynb", raise_errors=False)
    assert [o["ename"] for o in nb.cells[-2].outputs if o["output_type"] == "error"] == ["ValueError"]
    assert nb.cells[-1].outputs == []
    done = subprocess.run([sys.executable, "-m", "coursekit.engine", str(source), str(tmp_path / "cli.ipynb"), "-p", "N", "[1, 2]"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1 and "in.ipynb: cell 2 raised ValueError: no good" in done.stderr
    ok = _tiny(tmp_path / "ok.ipynb", "N = 1", "print(N)")
    done = subprocess.run([sys.executable, "-m", "coursekit.engine", str(ok), str(tmp_path / "cli.ipynb"), "-p", "N", "[1, 2]"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and nbformat.read(tmp_path / "cli.ipynb", as_version=4).cells[-1].outputs[0]["text"] == "[1, 2]\n"
