"""The child that executes a submission: check outputs read back, output budget, job files."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import nbformat

from coursekit.checks import CHECK_MIMETYPE
from coursekit.runner import BudgetedClient, EventLog, Job, checks_in_outputs


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


def test_outputs_past_the_budget_are_dropped_but_checks_always_kept() -> None:
    client, outs = _client(10), []
    client.output(outs, _msg("stream", {"name": "stdout", "text": "hello"}), None, 0)
    client.output(outs, _msg("stream", {"name": "stdout", "text": "x" * 1_000_000}), None, 0)
    client.output(outs, _msg("stream", {"name": "stdout", "text": "tiny"}), None, 0)
    check = {"text/plain": "y" * 5000, CHECK_MIMETYPE: json.dumps({"exercise": "q1", "outcome": "correct"})}
    client.output(outs, _msg("display_data", {"data": check, "metadata": {}}), None, 0)
    assert client.output_truncated
    assert [o["output_type"] for o in outs] == ["stream", "stream", "display_data"]
    assert outs[0]["text"] == "hello"
    assert outs[1]["text"].startswith("[grader: output dropped here, the notebook's output limit (0 KB) is used up]")
    assert len(outs[2]["data"]["text/plain"]) == 2001
    assert checks_in_outputs(outs)[0]["outcome"] == "correct"


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


def test_polling_finds_a_message_whose_wake_up_was_lost_and_keeps_the_deadline() -> None:
    import asyncio
    import time
    from queue import Empty

    from coursekit.runner import polling

    calls: list[float | None] = []

    async def stuck_then_ready(timeout: float | None = None) -> dict[str, Any]:
        # Like a lost zmq wake-up: the first wait sleeps through its whole timeout.
        calls.append(timeout)
        if len(calls) == 1:
            await asyncio.sleep(timeout or 0)
            raise Empty
        return {"msg": "reply"}

    async def never(timeout: float | None = None) -> dict[str, Any]:
        await asyncio.sleep(timeout or 0)
        raise Empty

    assert asyncio.run(polling(stuck_then_ready, step=0.05)(timeout=600)) == {"msg": "reply"}
    assert calls[0] == 0.05
    started = time.monotonic()
    try:
        asyncio.run(polling(never, step=0.05)(timeout=0.2))
    except Empty:
        pass
    else:
        raise AssertionError("no Empty at the deadline")
    assert 0.2 <= time.monotonic() - started < 1
