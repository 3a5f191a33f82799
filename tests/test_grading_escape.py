"""Nothing a graded notebook starts outlives its grading (issue 10: "the grader lets a process escape").

Each submission starts a process built to leave the runner's process tree at once (a double fork, a
``nohup setsid`` shell job, a detached HTTP server), waits until it is really running, and then ends
normally, or is killed by the memory or notebook time limit, or the grading is interrupted. After
grading, no process carrying the submission's unique token may be left, and the server's port is closed.
Without the runner as child subreaper and the sandbox sweep, every one of these processes survived
(``sleep 1000`` re-parented to init within milliseconds of the fork, out of the watchdog's sight).
"""

from __future__ import annotations

import csv
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import psutil
import pytest

from coursekit.instructor import sandbox
from coursekit.instructor.grade import Options, grade
from coursekit.instructor.sandbox import Execution, Limits, execute
from coursekit.instructor.submissions import discover
from coursekit.ports import is_free

pytestmark = pytest.mark.notebook

LESSON = "01_first_run"
GRACE_SECONDS = 3.0  # SIGKILL lands asynchronously; a survivor of the old grader lived for 1000 s

# Cell code: wait (in the kernel) until a process whose command line holds the token runs, print its pid.
WAIT_FOR = (
    "import psutil, time\n"
    "def wait_for(token):\n"
    "    deadline = time.monotonic() + 15\n"
    "    while time.monotonic() < deadline:\n"
    "        for p in psutil.process_iter(['cmdline']):\n"
    "            if token in ' '.join(p.info['cmdline'] or []):\n"
    "                print('escaped', p.pid)\n"
    "                return\n"
    "        time.sleep(0.05)\n"
    "    raise RuntimeError('never started: ' + token)\n"
)


def double_fork(token: str, clean: bool = False) -> str:
    """A cell that double-forks in Python; the grandchild (own session) sleeps with ``token`` in its argv.

    ``clean``: the grandchild also leaves the sandbox folder and drops the whole environment first,
    so only the process tree (the runner as subreaper) can still find it.
    """
    exec_line = (
        f"os.chdir('/'); os.execve(sys.executable, [sys.executable, '-c', 'import time; time.sleep(1000)', {token!r}], {{}})"
        if clean else f"os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(1000)', {token!r}])"
    )
    return (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        {exec_line}\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        f"wait_for({token!r})"
    )


def setsid_sleep(token: str) -> str:
    """A cell whose shell job detaches with ``nohup setsid``; ``token`` is the sleep's duration."""
    return f"import os\nos.system('nohup setsid sleep {token} >/dev/null 2>&1 &')\nwait_for({token!r})"


def server(port: int) -> str:
    """A cell that starts a detached ``http.server`` on ``port`` and waits until it answers."""
    return (
        "import os, socket, sys, time\n"
        f"os.system(f'setsid nohup {{sys.executable}} -m http.server --bind 127.0.0.1 {port} >/dev/null 2>&1 &')\n"
        "deadline = time.monotonic() + 20\n"
        "while True:\n"
        "    try:\n"
        f"        socket.create_connection(('127.0.0.1', {port}), timeout=1).close()\n"
        "        break\n"
        "    except OSError:\n"
        "        if time.monotonic() > deadline:\n"
        "            raise\n"
        "        time.sleep(0.1)\n"
        "print('serving')"
    )


def _notebook(*sources: str) -> bytes:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])).encode()


def _matching(token: str) -> list[str]:
    """Live (non-zombie) processes whose command line or environment holds ``token``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == psutil.Process().pid:
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        if token in cmdline:
            found.append(f"{proc.pid} {cmdline}")
    return found


def assert_nothing_left(token: str) -> None:
    """No process with ``token`` survives (after the grace SIGKILL delivery needs)."""
    deadline = time.monotonic() + GRACE_SECONDS
    while (left := _matching(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], f"still running after grading: {left}"


@pytest.fixture
def tokens() -> Iterator[Callable[[], str]]:
    """Unique tokens (digits only: they also serve as ``sleep`` durations); survivors are killed afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(f"7{random.randrange(10**9, 10**10)}")
        return made[-1]

    yield make
    for token in made:
        for proc in psutil.process_iter(["cmdline"]):
            if token in " ".join(proc.info["cmdline"] or []) and proc.pid != psutil.Process().pid:
                try:
                    proc.kill()
                except psutil.Error:
                    pass


@pytest.fixture
def free_port() -> int:
    """A free port below the ephemeral range (32768+), so no outgoing connection can take it meanwhile."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        if is_free(port):
            return port
    raise OSError("no free port between 20000 and 32000")


def _escaped(execution: Execution, cells: int) -> list[str]:
    """The 'escaped <pid>' / 'serving' lines the first ``cells`` cells printed (proof each process ran)."""
    assert execution.notebook is not None
    nb = nbformat.read(execution.notebook, as_version=4)
    lines = []
    for cell in nb.cells[:cells]:
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        lines += [line for line in text.splitlines() if line.startswith(("escaped", "serving"))]
    return lines


def _port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.mark.parametrize("clean", [False, True], ids=["double-fork", "double-fork-no-env-cwd-root"])
def test_a_double_fork_does_not_outlive_grading(clean: bool, tokens: Callable[[], str], tmp_path: Path) -> None:
    token = tokens()
    started = time.monotonic()
    execution = execute(LESSON, _notebook(WAIT_FOR, double_fork(token, clean), "print('done')"), tmp_path / "private",
                        Limits(cell_timeout=60, notebook_timeout=120), [])
    assert execution.killed is None and execution.events[-1]["status"] == "completed"
    assert len(_escaped(execution, 2)) == 1
    assert_nothing_left(token)
    assert time.monotonic() - started < 60


def test_a_setsid_nohup_shell_job_does_not_outlive_grading(tokens: Callable[[], str], tmp_path: Path) -> None:
    token = tokens()
    execution = execute(LESSON, _notebook(WAIT_FOR, setsid_sleep(token)), tmp_path / "private",
                        Limits(cell_timeout=60, notebook_timeout=120), [])
    assert execution.killed is None and execution.events[-1]["status"] == "completed"
    assert len(_escaped(execution, 2)) == 1
    assert_nothing_left(token)


def test_a_detached_server_is_stopped_and_its_port_closed(free_port: int, tmp_path: Path) -> None:
    try:
        execution = execute(LESSON, _notebook(server(free_port)), tmp_path / "private", Limits(cell_timeout=60, notebook_timeout=120), [])
        assert execution.killed is None and _escaped(execution, 1) == ["serving"]
        assert_nothing_left(f"http.server --bind 127.0.0.1 {free_port}")
        assert _port_closed(free_port) and is_free(free_port)
    finally:
        for proc in psutil.process_iter(["cmdline"]):
            if f"http.server --bind 127.0.0.1 {free_port}" in " ".join(proc.info["cmdline"] or []):
                proc.kill()


def test_escapes_of_a_run_killed_by_the_memory_limit_are_killed(tokens: Callable[[], str], free_port: int, tmp_path: Path) -> None:
    """Graded with the grading command's own function: the gradebook says "memory limit", nothing is left."""
    forked, shell = tokens(), tokens()
    hog = "import time\nchunks = []\nfor _ in range(80):\n    chunks.append(b'x' * 50 * 2**20)\n    time.sleep(0.05)\ntime.sleep(60)"
    klass = tmp_path / "class"
    (klass / "mia").mkdir(parents=True)
    (klass / "mia" / f"{LESSON}.ipynb").write_bytes(
        _notebook(WAIT_FOR, double_fork(forked), setsid_sleep(shell), server(free_port), hog)
    )
    submissions, _ = discover(klass, [LESSON])
    out = tmp_path / "gradebook"
    try:
        grade(submissions, Options(out=out, limits=Limits(cell_timeout=60, notebook_timeout=120, memory_mb=900), jobs=1, watch_roots=[]), [klass])
        with (out / "gradebook.csv").open(newline="", encoding="utf-8") as handle:
            row = next(csv.DictReader(handle))
        assert row["status"] == "memory limit", row["reason"]
        for token in (forked, shell, f"http.server --bind 127.0.0.1 {free_port}"):
            assert_nothing_left(token)
        assert _port_closed(free_port)
    finally:
        for proc in psutil.process_iter(["cmdline"]):
            if f"http.server --bind 127.0.0.1 {free_port}" in " ".join(proc.info["cmdline"] or []):
                proc.kill()


def test_escapes_of_a_run_killed_by_the_notebook_time_limit_are_killed(tokens: Callable[[], str], tmp_path: Path) -> None:
    forked, shell = tokens(), tokens()
    execution = execute(LESSON, _notebook(WAIT_FOR, double_fork(forked), setsid_sleep(shell), "import time\ntime.sleep(300)"),
                        tmp_path / "private", Limits(cell_timeout=600, notebook_timeout=20), [])
    assert execution.killed == "notebook time limit: still running after 20 s"
    assert len(_escaped(execution, 3)) == 2
    assert_nothing_left(forked)
    assert_nothing_left(shell)


def test_escapes_are_killed_when_grading_is_interrupted(tokens: Callable[[], str], tmp_path: Path) -> None:
    token = tokens()
    result: list[Execution] = []
    worker = threading.Thread(target=lambda: result.append(execute(
        LESSON, _notebook(WAIT_FOR, double_fork(token), "import time\ntime.sleep(300)"), tmp_path / "private",
        Limits(cell_timeout=600, notebook_timeout=600), [],
    )))
    sandbox.STOP.clear()
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not _matching(token) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _matching(token), "the escaping process never started"
        sandbox.STOP.set()  # what the grader does on Ctrl+C or SIGTERM
        worker.join(timeout=60)
    finally:
        sandbox.STOP.set()
        worker.join(timeout=60)
        sandbox.STOP.clear()
    assert result and result[0].killed == sandbox.INTERRUPTED
    assert_nothing_left(token)


def test_a_process_detached_just_before_the_notebook_kills_its_runner_is_swept(
    tokens: Callable[[], str], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """With the runner (the subreaper) killed right away, the sleep re-parents to init within milliseconds,
    before the watchdog ever sees it; the sweep still finds it by the sandbox marker it inherited."""
    token = tokens()
    cell = f"import os, signal\nos.system('nohup setsid sleep {token} >/dev/null 2>&1 &')\nos.kill(os.getppid(), signal.SIGKILL)"
    with caplog.at_level(logging.WARNING, logger="coursekit.instructor.sandbox"):
        execution = execute(LESSON, _notebook(cell), tmp_path / "private", Limits(cell_timeout=60, notebook_timeout=120), [])
    assert execution.runner_error == "the runner process was killed by signal 9"
    swept = [r.getMessage() for r in caplog.records if r.getMessage().startswith("killed a process left running")]
    assert any(message.endswith(f"sleep {token}") for message in swept), swept  # it ran, and the sweep killed it
    assert_nothing_left(token)


def test_an_escaped_process_counts_toward_the_memory_limit(tokens: Callable[[], str], tmp_path: Path) -> None:
    """A double-forked grandchild holding 1.5 GB is the runner's child (subreaper), so its memory counts."""
    token = tokens()
    hog = (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.execv(sys.executable, [sys.executable, '-c', "
        "'import time; b = b\"x\" * (1536 * 2**20); time.sleep(1000)', " + repr(token) + "])\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        f"wait_for({token!r})\n"
        "import time\n"
        "time.sleep(30)"
    )
    execution = execute(LESSON, _notebook(WAIT_FOR, hog), tmp_path / "private", Limits(cell_timeout=60, notebook_timeout=120, memory_mb=1200), [])
    assert execution.killed is not None and execution.killed.startswith("memory limit"), execution.killed
    assert_nothing_left(token)
