"""Benchmark: lesson 1's wall time in each mode of "Beyond one laptop", against the local default, in one run.

    .venv/bin/python benchmarks/modes.py              # local, class server, standalone cluster, Spark Connect
    .venv/bin/python benchmarks/modes.py --repeat 2   # each mode twice, interleaved

Each run is the course engine (`python -m coursekit.engine`, papermill underneath) on solutions/01_first_run.ipynb with its default (learner) parameters, in a fresh
kernel and a fresh data folder. The servers are started before the timed runs and stopped at the end, so their
start-up is reported on its own. Results are printed and written to benchmarks/results/modes.json. This is a
measurement, not a test: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coursekit.instructor.class_server import ClassServer  # noqa: E402
from coursekit.ports import first_free  # noqa: E402
from coursekit.settings import KERNEL_NAME  # noqa: E402

NOTEBOOK = REPO / "solutions" / "01_first_run.ipynb"


def run_lesson(scratch: Path, label: str, extra_env: dict[str, str]) -> float:
    """Lesson 1 once with the course engine in a fresh data folder; its wall time in seconds."""
    data = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=scratch))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "COURSE_", "SPARK_REMOTE"))}
    env.update(COURSE_DATA_DIR=str(data), **extra_env)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "coursekit.engine", str(NOTEBOOK), str(data / "out.ipynb"), "-k", KERNEL_NAME,
         "--cwd", str(NOTEBOOK.parent)],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _script(name: str, action: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(["bash", str(REPO / "scripts" / name), action], env={**os.environ, **env}, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="coursekit-modes-"))
    cluster_env = {
        "COURSE_SPARK_MASTER_PORT": str(first_free(7177)), "COURSE_SPARK_MASTER_WEBUI_PORT": str(first_free(8180)),
        "COURSE_SPARK_WORKER_WEBUI_PORT": str(first_free(8190)), "COURSE_SPARK_CLUSTER_DIR": str(scratch / "cluster"),
    }
    connect_env = {"COURSE_CONNECT_PORT": str(first_free(15102)), "COURSE_CONNECT_DIR": str(scratch / "connect")}
    server = ClassServer(scratch / "class-server", port=first_free(5300), workers=1)
    startup: dict[str, float] = {}
    started = time.perf_counter()
    server.start()
    startup["class server"] = time.perf_counter() - started
    startup["cluster (master + worker)"] = _script("spark_cluster.sh", "start", cluster_env)
    startup["Spark Connect server"] = _script("connect_server.sh", "start", connect_env)
    modes = {
        "local (default)": {},
        "class server": {"MLFLOW_TRACKING_URI": server.url, "COURSE_LEARNER": "bench"},
        "standalone cluster": {"COURSE_SPARK_MASTER": f"spark://127.0.0.1:{cluster_env['COURSE_SPARK_MASTER_PORT']}"},
        "Spark Connect": {"SPARK_REMOTE": f"sc://127.0.0.1:{connect_env['COURSE_CONNECT_PORT']}"},
    }
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    try:
        for _ in range(args.repeat):
            for mode, env in modes.items():
                times[mode].append(run_lesson(scratch, mode.split()[0], env))
                print(f"{mode:<20} {times[mode][-1]:6.1f} s", flush=True)  # noqa: T201
    finally:
        server.stop()
        _script("spark_cluster.sh", "stop", cluster_env)
        _script("connect_server.sh", "stop", connect_env)
    base = statistics.median(times["local (default)"])
    result = {
        "notebook": NOTEBOOK.name, "cpus": os.cpu_count(), "repeat": args.repeat,
        "startup_seconds": {k: round(v, 1) for k, v in startup.items()},
        "lesson_seconds": {mode: [round(t, 1) for t in ts] for mode, ts in times.items()},
        "ratio_to_local": {mode: round(statistics.median(ts) / base, 2) for mode, ts in times.items()},
    }
    print(json.dumps(result, indent=2))  # noqa: T201
    out = REPO / "benchmarks" / "results" / "modes.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
