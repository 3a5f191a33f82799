"""The README's commands and the one-line messages for a machine that is not ready."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from nbrun import REPO, error_outputs, run_notebook
from coursekit.ports import first_free

TOKEN = "course-test-token"


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        return json.load(response)


def _wait_for(url: str, process: subprocess.Popen, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "JupyterLab exited early"
        try:
            return _get_json(url)
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer {url} within {seconds}s")


def test_setup_explains_missing_java_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java-here")}
    done = subprocess.run(["bash", "scripts/setup.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ERROR: PySpark 4 needs Java 17+") and "JAVA_HOME" in lines[0]


def test_lab_command_serves_lessons_with_course_kernel_and_survives_a_busy_port() -> None:
    busy = first_free(18888)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", busy))
        blocker.listen()
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env.update({"COURSE_LAB_PORT": str(busy), "COURSE_LAB_NO_BROWSER": "1"})
        lab = subprocess.Popen(
            ["bash", "scripts/lab.sh", f"--IdentityProvider.token={TOKEN}"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        try:
            # Jupyter takes the next free port when the asked one is busy.
            port = first_free(busy + 1)
            specs = _wait_for(f"http://127.0.0.1:{port}/api/kernelspecs?token={TOKEN}", lab)
            contents = _get_json(f"http://127.0.0.1:{port}/api/contents/?token={TOKEN}")
        finally:
            os.killpg(lab.pid, signal.SIGTERM)
            output, _ = lab.communicate(timeout=60)
    assert specs["default"] == "mlflow-spark-course"
    assert specs["kernelspecs"]["mlflow-spark-course"]["spec"]["display_name"] == "MLflow + Spark course"
    assert "01_first_run.ipynb" in {item["name"] for item in contents["content"]}
    busy_lines = [line for line in output.splitlines() if line.startswith(f"Port {busy} is busy")]
    assert len(busy_lines) == 1 and "COURSE_LAB_PORT" in busy_lines[0]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"JAVA_HOME": "/nonexistent-java"}, "PySpark 4 needs Java 17+"),
        ({"COURSE_DATASETS_DIR": "/nonexistent-datasets"}, "The course dataset"),
    ],
    ids=["missing-java", "missing-dataset"],
)
def test_notebook_shows_setup_problems_as_one_line(env: dict[str, str], expected: str, tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from coursekit import classroom\n"
        "from coursekit.data import load_pima\n"
        "room = classroom.start('setup-problems')\n"
        "load_pima(room.spark)"
    )])
    source = tmp_path / "setup.ipynb"
    nbformat.write(nb, source)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        executed = run_notebook(source, tmp_path / "out.ipynb", tmp_path / "data")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    (cell,) = [c for c in executed.cells if c.cell_type == "code" and "classroom.start" in c.source]
    shown = [o.text for o in cell.outputs if o.output_type == "stream"]
    assert len(shown) == 1 and shown[0].strip().count("\n") == 0, shown
    assert expected in shown[0]
    # One sentence instead of a traceback; the cell still stops "Run all" so nothing runs on a broken setup.
    assert "Traceback" not in json.dumps(cell.outputs)
    assert error_outputs(executed) == []
