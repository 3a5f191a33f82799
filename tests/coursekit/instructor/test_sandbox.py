"""One submission's sandbox: its environment, its private copies, and the limits the watchdog enforces."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from coursekit.instructor.sandbox import (
    MARKER,
    PACKAGE_DIR,
    Limits,
    empty_store,
    execute,
    kernel_environment,
    prepare,
    read_events,
    sandbox_processes,
    sweep,
    watch,
)


def test_the_kernel_environment_drops_mlflow_and_course_overrides(tmp_path: Path) -> None:
    base = {
        "PATH": "/usr/bin", "JAVA_HOME": "/jdk", "MLFLOW_TRACKING_URI": "sqlite:///elsewhere.db", "MLFLOW_EXPERIMENT_ID": "7",
        "COURSE_DATA_DIR": "/shared", "PYTHONPATH": "/evil", "SPARK_REMOTE": "sc://x", "HOME": "/root",
        "COURSE_LEARNER": "teacher",  # a class server's learner: the grader's store is private, names are plain
    }
    env = kernel_environment(tmp_path, base)
    assert "COURSE_LEARNER" not in env
    assert not any(k.startswith("MLFLOW_") for k in env)
    assert env["PATH"] == "/usr/bin" and env["JAVA_HOME"] == "/jdk" and "SPARK_REMOTE" not in env
    assert env["HOME"] == str(tmp_path / "home") and env["TMPDIR"] == str(tmp_path / "tmp")
    assert env["COURSE_DATA_DIR"] == str(tmp_path / "data")
    assert env["COURSE_DATASETS_DIR"] == str(tmp_path / "pkg" / "datasets")
    assert env["PYTHONPATH"] == str(PACKAGE_DIR.parent)
    assert env["COURSE_SPARK_QUICK_JIT"] == "1"  # several kernels at once
    assert env[MARKER] == str(tmp_path)  # every process the notebook starts carries it
    assert kernel_environment(tmp_path, {MARKER: "/another/sandbox"})[MARKER] == str(tmp_path)


def test_the_kernel_environment_keeps_the_ui_port_and_the_class_archive(tmp_path: Path) -> None:
    """Machine-wide choices pass on: the UI's first port (two graders, or test workers, at once) and the JVM's
    class archive, which a kernel only reads."""
    base = {"COURSE_UI_PORT": "6300", "COURSE_SPARK_CLASS_ARCHIVE": "/tmp/classes.jsa", "COURSE_DRIVER_MEMORY": "8g"}
    env = kernel_environment(tmp_path, base)
    assert (env["COURSE_UI_PORT"], env["COURSE_SPARK_CLASS_ARCHIVE"]) == ("6300", "/tmp/classes.jsa")
    assert "COURSE_DRIVER_MEMORY" not in env
    assert not {"COURSE_UI_PORT", "COURSE_SPARK_CLASS_ARCHIVE"} & set(kernel_environment(tmp_path, {"COURSE_UI_PORT": ""}))


def test_prepare_copies_the_package_and_data_but_no_bytecode(tmp_path: Path) -> None:
    notebook = prepare(tmp_path, "01_first_run", b"{}")
    assert notebook == tmp_path / "work" / "01_first_run.ipynb" and notebook.read_bytes() == b"{}"
    assert (tmp_path / "pkg" / "coursekit" / "exercises" / "lesson01.py").read_bytes() == (PACKAGE_DIR / "exercises" / "lesson01.py").read_bytes()
    assert (tmp_path / "pkg" / "datasets" / "pima_diabetes.csv").is_file()
    assert not list((tmp_path / "pkg").rglob("__pycache__"))
    assert all((tmp_path / d).is_dir() for d in ("data", "home", "tmp"))


def _spawn(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def test_each_sandbox_starts_from_a_copy_of_one_migrated_empty_store(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    template = empty_store(tmp_path / "template.db")
    first, second = tmp_path / "one", tmp_path / "two"
    prepare(first, "01_first_run", b"{}", template)
    prepare(second, "01_first_run", b"{}", template)
    client = MlflowClient(tracking_uri=f"sqlite:///{first / 'data' / 'mlflow.db'}")
    assert [e.name for e in client.search_experiments()] == ["Default"]
    client.create_experiment("only-in-one")
    other = MlflowClient(tracking_uri=f"sqlite:///{second / 'data' / 'mlflow.db'}")
    assert [e.name for e in other.search_experiments()] == ["Default"]
    assert [e.name for e in MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()] == ["Default"]


def test_the_watchdog_kills_a_process_tree_over_its_memory_limit() -> None:
    # The parent is small; the grandchild holds the memory, as a Spark JVM would.
    child = _spawn(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; b = bytearray(300 * 2**20); b[::4096] = b\"x\" * len(b[::4096]); time.sleep(60)'])\n"
        "time.sleep(60)"
    )
    started = time.monotonic()
    reason, peak = watch(child, Limits(memory_mb=150, notebook_timeout=50))
    assert reason is not None and reason.startswith("memory limit: the kernel's processes used")
    assert peak >= 150 and time.monotonic() - started < 30
    assert child.returncode is not None


def test_the_watchdog_enforces_the_notebook_time_limit_and_leaves_no_orphan() -> None:
    child = _spawn("import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\ntime.sleep(120)")
    deadline = time.monotonic() + 20
    while not (grandchildren := psutil.Process(child.pid).children(recursive=True)) and time.monotonic() < deadline:
        time.sleep(0.1)
    reason, _ = watch(child, Limits(notebook_timeout=2))
    assert reason == "notebook time limit: still running after 2 s"
    assert grandchildren
    _, alive = psutil.wait_procs(grandchildren, timeout=5)  # SIGKILL is delivered asynchronously
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_a_quiet_child_finishes_normally_and_its_leftovers_are_killed() -> None:
    child = _spawn("import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\nimport time; time.sleep(3)")
    reason, _ = watch(child, Limits())
    assert reason is None and child.returncode == 0
    time.sleep(0.5)
    assert not [p for p in psutil.process_iter(["cmdline"]) if "time.sleep(120)" in " ".join(p.info["cmdline"] or []) and p.ppid() in (1, child.pid)
                and p.status() != psutil.STATUS_ZOMBIE]


def test_events_survive_a_half_written_last_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "start", "cell": 1}\n[1, 2]\n{"event": "executed", "ce')
    assert read_events(path) == [{"event": "start", "cell": 1}]
    assert read_events(tmp_path / "missing.jsonl") == []


@pytest.mark.notebook
def test_a_kernel_sees_only_its_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No inherited MLflow URI, the sandbox's own coursekit and store; tampering and budget are noticed."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/wrong.db")
    watched = tmp_path / "watched"
    watched.mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os, coursekit\nprint(os.environ.get('MLFLOW_TRACKING_URI'), coursekit.__file__, os.environ['COURSE_DATA_DIR'], os.getcwd())"),
        nbformat.v4.new_code_cell("from coursekit.exercises.lesson01 import q1\nq1.check()"),
        nbformat.v4.new_code_cell("print('y' * 5000)"),
        nbformat.v4.new_code_cell(f"open({str(watched / 'note.txt')!r}, 'w').write('hi')"),
        nbformat.v4.new_code_cell("import coursekit.exercises.checks as c\nopen(c.__file__, 'a').write('# changed')"),
        nbformat.v4.new_code_cell("1 / 0"),
    ])
    execution = execute("01_first_run", nbformat.writes(nb).encode(), tmp_path / "private", Limits(cell_timeout=60, max_output_kb=1), [watched])
    executed = nbformat.read(execution.notebook, as_version=4)
    uri, package, data_dir, cwd = executed.cells[0].outputs[0]["text"].split()
    assert uri == "None"
    assert "coursekit-sandbox-" in package and package.endswith("/pkg/coursekit/__init__.py")
    assert data_dir.endswith("/data") and cwd.endswith("/work") and "coursekit-sandbox-" in cwd
    assert not Path(cwd).exists()  # the sandbox is gone afterwards
    by_cell = {e["cell"]: e for e in execution.events if e["event"] == "executed"}
    assert by_cell[1]["checks"][0]["exercise"] == "q1" and by_cell[1]["checks"][0]["outcome"] in {"not attempted", "incorrect"}
    assert by_cell[2]["truncated"] is True
    assert by_cell[3]["outside"] == [str(watched / "note.txt")]
    assert by_cell[4]["tampered"] is True and execution.tampered
    assert by_cell[5]["error"] == "ZeroDivisionError: division by zero"
    assert execution.events[-1]["event"] == "end" and execution.events[-1]["status"] == "completed"
    assert execution.killed is None


def _notebook(*sources: str) -> bytes:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])).encode()


@pytest.mark.notebook
def test_a_notebook_that_kills_its_runner_or_ignores_interrupts_is_stopped(tmp_path: Path) -> None:
    killer = execute("01_first_run", _notebook(
        "import os\nprint(os.getpid())", "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(300)",
    ), tmp_path / "killer", Limits(cell_timeout=30, notebook_timeout=120), [])
    assert killer.killed is None and killer.runner_error == "the runner process was killed by signal 9"
    assert not any(e["event"] == "end" for e in killer.events)
    kernel_pid = int(nbformat.read(killer.notebook, as_version=4).cells[0].outputs[0]["text"])
    try:
        _, alive = psutil.wait_procs([psutil.Process(kernel_pid)], timeout=5)  # SIGKILL lands asynchronously
        assert all(p.status() == psutil.STATUS_ZOMBIE for p in alive)
    except psutil.NoSuchProcess:
        pass  # already gone

    stubborn = execute("01_first_run", _notebook(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", "print('never')",
    ), tmp_path / "stubborn", Limits(cell_timeout=3, notebook_timeout=120), [])
    assert stubborn.events[-1]["event"] == "end" and stubborn.events[-1]["status"] == "timeout"
    assert [e["cell"] for e in stubborn.events if e["event"] == "start"] == [0]


def test_an_interrupted_grader_stops_every_watchdog() -> None:
    from coursekit.instructor import sandbox

    child = _spawn("import time; time.sleep(120)")
    sandbox.STOP.set()
    try:
        started = time.monotonic()
        reason, _ = watch(child, Limits())
    finally:
        sandbox.STOP.clear()
    assert reason == sandbox.INTERRUPTED and time.monotonic() - started < 5


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_the_sweep_kills_what_carries_the_marker_or_works_inside_and_spares_the_rest(tmp_path: Path) -> None:
    box, other = (tmp_path / "box").resolve(), (tmp_path / "other").resolve()
    (box / "work").mkdir(parents=True)
    other.mkdir()
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    marked = subprocess.Popen(sleeper, env={MARKER: str(box)}, cwd=tmp_path, start_new_session=True)
    inside = subprocess.Popen(sleeper, env={}, cwd=box / "work", start_new_session=True)  # like `env -i`
    spared = [
        subprocess.Popen(sleeper, env={MARKER: str(other)}, cwd=other, start_new_session=True),
        subprocess.Popen(sleeper, env={MARKER: str(box) + "-2"}, cwd=tmp_path, start_new_session=True),
    ]
    procs = [psutil.Process(p.pid) for p in (marked, inside, *spared)]
    try:
        assert sorted(p.pid for p in sandbox_processes(box)) == sorted([marked.pid, inside.pid])
        killed = sweep(box)
        assert sorted(int(text.split()[0]) for text in killed) == sorted([marked.pid, inside.pid])
        marked.wait(5), inside.wait(5)
        assert _alive(procs) == procs[2:]
        assert sweep(box) == []
    finally:
        for proc in (marked, inside, *spared):
            proc.kill()
            proc.wait()


FORKER = """
import os, time
while True:  # a new child every few milliseconds, each carrying the marker
    if os.fork() == 0:
        time.sleep(120)
        os._exit(0)
    time.sleep(0.005)
"""


def test_the_sweep_looks_again_until_a_forking_process_is_gone(tmp_path: Path) -> None:
    box = tmp_path.resolve()
    forker = subprocess.Popen([sys.executable, "-c", FORKER], env={MARKER: str(box)}, cwd="/", start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(sandbox_processes(box)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = sweep(box)
        assert len(killed) >= 5
        forker.wait(5)
        assert [p for p in sandbox_processes(box) if p.status() != psutil.STATUS_ZOMBIE] == []
    finally:
        forker.kill()
        forker.wait()
        for proc in sandbox_processes(box):
            proc.kill()


@pytest.mark.notebook
def test_the_after_hook_sees_the_store_before_the_sandbox_is_deleted_even_after_a_kill(tmp_path: Path) -> None:
    seen: list[Path] = []

    def recheck(data_dir: Path) -> dict[str, object]:
        seen.append(data_dir)
        assert (data_dir / "mlflow.db").is_file() and "coursekit-sandbox-" in str(data_dir)
        return {"store_bytes": (data_dir / "mlflow.db").stat().st_size}

    template = empty_store(tmp_path / "template.db")
    done = execute("01_first_run", _notebook("print('hi')"), tmp_path / "done", Limits(cell_timeout=30), [],
                   store_template=template, after=recheck)
    assert done.killed is None and done.rechecked == {"store_bytes": template.stat().st_size}
    assert seen[0].name == "data" and not seen[0].exists()  # deleted after the hook

    killed = execute("01_first_run", _notebook("import time\ntime.sleep(300)"), tmp_path / "killed", Limits(notebook_timeout=8), [],
                     store_template=template, after=recheck)
    assert killed.killed == "notebook time limit: still running after 8 s" and killed.rechecked["store_bytes"] > 0

    def broken(data_dir: Path) -> dict[str, object]:
        raise RuntimeError("the re-check failed")

    failed = execute("01_first_run", _notebook("print('hi')"), tmp_path / "failed", Limits(cell_timeout=30), [], after=broken)
    assert failed.rechecked == {} and failed.events[-1]["status"] == "completed"
    assert execute("01_first_run", _notebook("1"), tmp_path / "none", Limits(cell_timeout=30), []).rechecked == {}
