"""Spark cluster mode: lesson 3 runs on a one-host standalone cluster started by ``scripts/spark_cluster.sh``.

The master and one worker (1 core, 2 GB) listen on 127.0.0.1 only; the notebook's driver joins with
``COURSE_SPARK_MASTER=spark://127.0.0.1:<port>``, so its forests are fitted, scored and saved by an
executor in another JVM, which never reads the dataset file (:func:`coursekit.data.load_pima`).

Lesson 3 alone: it makes lesson 1's Spark calls (load_pima, randomSplit, fit, transform, evaluate, the Spark
flavour's log_model; lesson 1's count() and show() are actions like lesson 3's collect() and toPandas()), and it
also loads the logged model back through the executors. Lesson 1 on the cluster proved nothing more and cost
about two minutes of CPU (issue 14).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nbrun import EXERCISES, FAST_PARAMETERS, REPO, SOLUTIONS, check_outcomes, error_outputs, run_notebook

from coursekit.ports import first_free
from coursekit.spark import APP_NAME

pytestmark = [pytest.mark.modes, pytest.mark.notebook]

SCRIPT = REPO / "scripts" / "spark_cluster.sh"
NOTEBOOKS = [path for path in SOLUTIONS if path.stem == "03_log_model"]


@dataclass(frozen=True)
class Cluster:
    """A running one-host cluster: its master URL, status page and folder (pid files, logs, work dir)."""

    master: str
    status_url: str
    folder: Path


def _ports_below_32768(count: int) -> list[int]:
    """Free ports under Linux's ephemeral range, where no outgoing connection can take (or self-connect to) them."""
    ports: list[int] = []
    start = 15500 + os.getpid() % 1000
    while len(ports) < count:
        ports.append(first_free(start))
        start = ports[-1] + 1
    return ports


def _status(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.load(reply)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Master + one worker for this module; stopped at the end whatever happened, leaving no process behind."""
    folder = tmp_path_factory.mktemp("spark-cluster")
    master_port, master_ui, worker_ui, worker_port = _ports_below_32768(4)
    env = {**os.environ, "COURSE_SPARK_CLUSTER_DIR": str(folder), "COURSE_SPARK_MASTER_PORT": str(master_port),
           "COURSE_SPARK_MASTER_WEBUI_PORT": str(master_ui), "COURSE_SPARK_WORKER_WEBUI_PORT": str(worker_ui),
           "COURSE_SPARK_WORKER_PORT": str(worker_port), "COURSE_SPARK_WORKER_CORES": "1",
           "COURSE_SPARK_WORKER_MEMORY": "2g"}

    def script(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), action], env=env, capture_output=True, text=True, timeout=120, check=False)

    started = time.perf_counter()
    try:
        done = script("start")
        assert done.returncode == 0, done.stdout + done.stderr
        master = f"spark://127.0.0.1:{master_port}"
        assert done.stdout.splitlines()[-1] == f"export COURSE_SPARK_MASTER={master}"
        print(f"cluster up after {time.perf_counter() - started:.1f} s")  # noqa: T201 - shown with -s
        assert script("status").returncode == 0
        yield Cluster(master, f"http://127.0.0.1:{master_ui}/json/", folder)
    finally:
        daemons = [int(p.read_text()) for p in folder.glob("spark-course-*.pid")]
        stopped = script("stop")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert [pid for pid in daemons if _alive(pid)] == []
        assert script("status").returncode == 3


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_lesson_3_passes_every_check_on_a_standalone_cluster(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURSE_SPARK_MASTER", cluster.master)
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    store = tmp_path / "store"
    store.mkdir()
    seconds = {}
    for solution in NOTEBOOKS:
        started = time.perf_counter()
        nb = run_notebook(solution, tmp_path / solution.name, store, FAST_PARAMETERS.get(solution.stem, {}))
        seconds[solution.stem] = round(time.perf_counter() - started, 1)
        assert error_outputs(nb) == [], solution.stem
        assert check_outcomes(nb) == dict.fromkeys(EXERCISES[solution.stem], "correct"), solution.stem
        # The setup cell names the engine it joined.
        assert any(cluster.master in str(out) for cell in nb.cells for out in cell.get("outputs", [])), solution.stem
    print(f"notebook wall times on the cluster: {seconds}")  # noqa: T201 - shown with -s

    # The kernel's driver was an application of the master; it completed when its kernel shut down.
    deadline = time.monotonic() + 60
    while (status := _status(cluster.status_url))["activeapps"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status["activeapps"] == []
    completed = [app for app in status["completedapps"] if app["name"] == APP_NAME]
    assert len(completed) == len(NOTEBOOKS), status["completedapps"]
    assert {app["state"] for app in completed} == {"FINISHED"}
    # Their executors ran in the worker (one folder per application), not in the drivers.
    assert {path.name for path in (cluster.folder / "work").glob("app-*")} == {app["id"] for app in completed}

