"""The MLflow UI helper against a real ``mlflow ui`` process on a temporary store.

Starting the server takes 5–60 s, so one server serves the whole module (started on a
busy port, to show it moves on to the next free one) and is stopped by the last test;
the module's teardown stops it in any case. Failed start-ups use a fake command.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from coursekit import tracking
from coursekit import ui as ui_module
from coursekit.errors import CourseSetupError
from coursekit.ports import first_free
from coursekit.settings import Settings
from coursekit.ui import HOST, MlflowUI

EXPERIMENT = "ui-test-experiment"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, empty_db: Path) -> Settings:
    """A throw-away course data folder and SQLite store for the whole module."""
    data = tmp_path_factory.mktemp("ui-store")
    shutil.copy(empty_db, data / "mlflow.db")
    return Settings(
        data_dir=data,
        datasets_dir=data / "datasets",
        tracking_uri=f"sqlite:///{data}/mlflow.db",
        artifact_root=data / "artifacts",
        spark_master="local[1]",
        spark_remote=None,
        driver_memory="1g",
    )


@pytest.fixture(scope="module")
def experiment_id(settings: Settings) -> str:
    return tracking.ensure_experiment(EXPERIMENT, settings=settings)


@pytest.fixture(scope="module")
def busy_port():
    """A port something else already listens on."""
    # Below the ephemeral range (32768+ on Linux), like the real default 5000: a port in that range can be
    # picked as the source port of our own health poll (a TCP self-connect) before the server listens.
    with socket.socket() as sock:
        sock.bind((HOST, first_free(21000)))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(settings: Settings, experiment_id: str, busy_port: int):
    """One running UI for the module, asked for the busy port; always stopped afterwards."""
    ui = MlflowUI(settings=settings, port=busy_port)
    try:
        ui.start()
        yield ui
    finally:
        ui.stop()


def get(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
        return response.status, response.read()


# --- without a server ------------------------------------------------------------------------------------


def test_command_serves_the_course_store_on_loopback(settings: Settings):
    command = MlflowUI(settings=settings).command(5123)
    assert Path(command[0]).name == "mlflow" and Path(command[0]).is_file()
    assert command[1] == "ui"
    pairs = dict(zip(command[2::2], command[3::2]))
    assert pairs["--backend-store-uri"] == settings.tracking_uri
    assert pairs["--default-artifact-root"] == settings.artifact_root.as_uri()
    assert pairs["--host"] == "127.0.0.1"
    assert pairs["--port"] == "5123"


def test_a_ui_that_never_started(settings: Settings):
    ui = MlflowUI(settings=settings)
    assert ui.wanted_port == settings.ui_port  # COURSE_UI_PORT, else 5000
    assert MlflowUI(settings=replace(settings, ui_port=6123)).wanted_port == 6123
    assert MlflowUI(settings=settings, port=5123).wanted_port == 5123
    assert ui.port is None and ui.running is False
    with pytest.raises(RuntimeError, match=r"call start\(\) first"):
        ui.url  # noqa: B018
    with pytest.raises(RuntimeError):
        ui.experiment_url("1")
    assert repr(ui) == "MLflow UI: stopped"
    assert ui._repr_html_() == "MLflow UI: stopped"
    ui.stop()  # a no-op
    assert ui.port is None


def test_log_file_is_in_the_course_data_folder(settings: Settings):
    assert MlflowUI(settings=settings).log_file == settings.data_dir / "mlflow-ui.log"


def test_a_server_that_exits_at_start_up_is_a_setup_error(settings: Settings, tmp_path: Path, monkeypatch):
    ui = MlflowUI(settings=dataclasses.replace(settings, data_dir=tmp_path))
    fake = [sys.executable, "-c", "import sys; print('fake ui refuses to start', flush=True); sys.exit(1)"]
    monkeypatch.setattr(ui, "command", lambda port: fake)
    with pytest.raises(CourseSetupError, match="stopped at start-up") as raised:
        ui.start(timeout=60)
    assert str(ui.log_file) in str(raised.value)
    assert "fake ui refuses to start" in ui.log_file.read_text()
    assert ui.running is False
    assert repr(ui) == "MLflow UI: stopped"


def test_a_server_that_never_answers_is_stopped_and_a_setup_error(settings: Settings, tmp_path: Path, monkeypatch):
    ui = MlflowUI(settings=dataclasses.replace(settings, data_dir=tmp_path))
    monkeypatch.setattr(ui, "command", lambda port: [sys.executable, "-c", "import time; time.sleep(120)"])
    started: list[subprocess.Popen] = []

    class RecordingPopen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(ui_module.subprocess, "Popen", RecordingPopen)
    with pytest.raises(CourseSetupError, match="did not answer within 1 s") as raised:
        ui.start(timeout=1)
    assert str(ui.log_file) in str(raised.value)
    (process,) = started
    assert process.poll() is not None, "the silent server is not left running"
    assert ui.running is False and ui.port is None


def test_command_line_options_override_the_store(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = ui_module._parse_args(
        ["--backend-store-uri", "sqlite:////data/my store/mlflow.db", "--default-artifact-root", "file:///data/my%20store/artifacts"]
    )
    settings = ui_module._settings_from(args)
    assert settings.tracking_uri == "sqlite:////data/my store/mlflow.db"
    assert settings.artifact_root == Path("/data/my store/artifacts")
    assert args.port is None  # MlflowUI then takes COURSE_UI_PORT, else 5000
    defaults = ui_module._settings_from(ui_module._parse_args([]))
    assert defaults.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"


class FakeUI:
    """Stands in for MlflowUI in main(): a scripted start-up and a scripted answer to "still running?"."""

    outcome: object = "http://127.0.0.1:5001"
    script: list[object] = []

    def __init__(self, settings: Settings, port: int) -> None:
        self.port, self.stopped, self.log_file = port, False, Path("/tmp/ui.log")
        self._script = list(self.script)

    def start(self) -> str:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return str(self.outcome)

    def runs_links(self) -> dict[str, str]:
        experiments = ui_module.course_experiments(ui_module.load_settings())
        return {name: f"{self.outcome}/#/experiments/{eid}/runs?{ui_module.RUNS_VIEW}" for name, eid in experiments.items()}

    @property
    def running(self) -> bool:
        if self._script:
            step = self._script.pop(0)
            if step is KeyboardInterrupt:
                raise KeyboardInterrupt  # the learner presses Ctrl+C while it serves
            return bool(step)
        return not self.stopped and self.outcome is not None and not isinstance(self.outcome, BaseException)

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def fake_main(monkeypatch, settings: Settings, experiment_id: str):
    monkeypatch.setattr(ui_module, "MlflowUI", FakeUI)
    monkeypatch.setattr(ui_module.signal, "signal", lambda *args: None)  # leave pytest's own handlers alone
    monkeypatch.setenv("COURSE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    return ui_module.main


def test_main_prints_the_address_and_each_lesson_link_and_stops_on_ctrl_c(fake_main, experiment_id, capsys):
    FakeUI.outcome, FakeUI.script = "http://127.0.0.1:5001", [True, KeyboardInterrupt]
    assert fake_main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "MLflow UI: http://127.0.0.1:5001" in out
    assert f"  {EXPERIMENT}: http://127.0.0.1:5001/#/experiments/{experiment_id}/runs?workflowType=machine_learning" in out
    assert out[-2:] == ["Press Ctrl+C to stop it.", "MLflow UI stopped."]


def test_main_reports_a_server_that_stops_by_itself(fake_main, capsys):
    FakeUI.outcome, FakeUI.script = "http://127.0.0.1:5001", [True, False, False]
    assert fake_main([]) == 1
    assert "The MLflow UI stopped by itself: see /tmp/ui.log." in capsys.readouterr().err


def test_main_reports_a_server_that_failed_to_start(fake_main, capsys):
    FakeUI.outcome, FakeUI.script = CourseSetupError("The MLflow UI stopped at start-up: see x.log for why."), []
    assert fake_main([]) == 1
    assert "ERROR: The MLflow UI stopped at start-up" in capsys.readouterr().err


def test_course_experiments_lists_only_the_course_ones(settings: Settings, experiment_id: str):
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=settings.tracking_uri).create_experiment("not-from-the-course")
    assert ui_module.course_experiments(settings) == {EXPERIMENT: experiment_id}


# --- one real server ------------------------------------------------------------------------------------


def test_start_returns_a_loopback_url_on_the_next_free_port(server: MlflowUI, busy_port: int, experiment_id: str):
    url = server.url
    match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", url)
    assert match, url
    assert int(match.group(1)) == server.port
    assert server.port > busy_port, "a busy port is skipped, not an error"
    assert server.running
    assert repr(server) == f"MLflow UI: {url}"
    assert f'href="{url}"' in server._repr_html_()
    assert f'<li>{EXPERIMENT}: <a href="{server.experiment_url(experiment_id)}"' in server._repr_html_()
    assert server.runs_links() == {EXPERIMENT: server.experiment_url(experiment_id)}


def test_health_answers(server: MlflowUI):
    assert get(f"{server.url}/health") == (200, b"OK")


def test_the_web_page_is_served(server: MlflowUI):
    status, body = get(f"{server.url}/")
    assert status == 200
    assert b"<html" in body.lower()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_ui_api_lists_the_experiment(server: MlflowUI, experiment_id: str, method: str):
    path = f"{server.url}/ajax-api/2.0/mlflow/experiments/search"
    if method == "GET":
        status, body = get(f"{path}?max_results=10")
    else:
        status, body = get(path, data=json.dumps({"max_results": 10}).encode())
    assert status == 200
    experiments = {e["name"]: e for e in json.loads(body)["experiments"]}
    assert experiments[EXPERIMENT]["experiment_id"] == experiment_id
    tags = {t["key"]: t["value"] for t in experiments[EXPERIMENT]["tags"]}
    assert tags[tracking.EXPERIMENT_KIND_TAG] == tracking.EXPERIMENT_KIND


def test_the_server_runs_with_telemetry_off(server: MlflowUI):
    assert server._process is not None
    parent = psutil.Process(server._process.pid)
    tree = [parent, *parent.children(recursive=True)]
    assert all(p.environ().get("MLFLOW_DISABLE_TELEMETRY") == "true" for p in tree), [p.cmdline() for p in tree]
    status, body = get(f"{server.url}/ajax-api/3.0/mlflow/ui-telemetry")
    assert status == 200 and json.loads(body)["disable_ui_telemetry"] is True


def test_start_twice_reuses_the_running_server(server: MlflowUI):
    process, url = server._process, server.url
    assert server.start() == url
    assert server._process is process and process.poll() is None


def test_experiment_url(server: MlflowUI, experiment_id: str):
    link = server.experiment_url(experiment_id)
    assert link.startswith(server.url + "/")
    assert f"#/experiments/{experiment_id}/runs" in link
    assert "workflowType=machine_learning" in link


def test_the_log_file_records_the_server(server: MlflowUI):
    assert server.log_file.is_file()
    assert f"127.0.0.1:{server.port}" in server.log_file.read_text(errors="replace")


def test_stop_ends_the_server(server: MlflowUI):
    """Runs last: it stops the module's server."""
    if not server.running:  # only when this test runs on its own after a failed reordering
        server.start()
    process, url = server._process, server.url
    server.stop()
    assert process.poll() is not None
    assert server.running is False
    assert server.port is None
    with pytest.raises(RuntimeError, match="not running"):
        server.url  # noqa: B018
    assert repr(server) == "MLflow UI: stopped"
    assert server._repr_html_() == "MLflow UI: stopped"
    assert ui_module._answers(f"{url}/health") is False, "nothing answers on the old port"
    server.stop()  # stopping twice is harmless
    assert server.port is None


def test_a_poll_that_meets_itself_is_not_an_answer(monkeypatch):
    # What a TCP self-connect looks like to urllib: our own request read back as the status line.
    import http.client

    def echo(url, timeout):
        raise http.client.BadStatusLine("GET /health HTTP/1.1")

    monkeypatch.setattr(ui_module.urllib.request, "urlopen", echo)
    assert ui_module._answers("http://127.0.0.1:5000/health") is False


def test_with_a_tracking_server_the_ui_is_the_servers(health_server: str, tmp_path: Path) -> None:
    remote = dataclasses.replace(_settings_for(tmp_path), tracking_uri=health_server + "/", learner="ada")
    ui = MlflowUI(settings=remote)
    assert ui.start() == health_server  # nothing started
    assert ui.running and ui._process is None
    assert ui.experiment_url("4") == f"{health_server}/#/experiments/4/runs?workflowType=machine_learning"
    ui.stop()  # leaves the server alone
    assert ui.url == health_server


def test_an_unreachable_tracking_server_is_a_setup_error(tmp_path: Path) -> None:
    remote = dataclasses.replace(_settings_for(tmp_path), tracking_uri="http://127.0.0.1:9")
    with pytest.raises(CourseSetupError, match="does not answer"):
        MlflowUI(settings=remote).start()


def test_course_experiments_of_a_learner_are_only_theirs(tmp_path: Path, empty_db: Path) -> None:
    shutil.copy(empty_db, tmp_path / "mlflow.db")
    base = _settings_for(tmp_path)
    for learner in ("ada", "bob"):
        mine = dataclasses.replace(base, learner=learner)
        tracking.ensure_experiment(f"{learner}-lesson-01", mine)
    tracking.ensure_experiment("lesson-01", base)
    assert list(ui_module.course_experiments(dataclasses.replace(base, learner="ada"))) == ["ada-lesson-01"]
    assert list(ui_module.course_experiments(base)) == ["ada-lesson-01", "bob-lesson-01", "lesson-01"]


def _settings_for(folder: Path) -> Settings:
    return Settings(
        data_dir=folder, datasets_dir=folder, tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        artifact_root=folder / "artifacts", spark_master="local[1]", spark_remote=None, driver_memory="1g",
    )


def test_on_databricks_the_ui_is_built_in_and_nothing_starts(tmp_path, monkeypatch, capsys):
    from coursekit.settings import load_settings

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    settings = dataclasses.replace(load_settings(), databricks=True, tracking_uri="databricks")
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("nothing may start on Databricks"))
    ui = MlflowUI(settings=settings)
    assert ui.start() == ""
    assert capsys.readouterr().out == (
        "Nothing to start on Databricks: its MLflow UI is built in: the Experiment icon in the notebook's right "
        "sidebar, or AI/ML > Experiments in the left sidebar.\n"
    )
    assert not ui.running
    assert ui.experiment_url("42").endswith("(experiment id 42)") and "http" not in ui.experiment_url("42")
    ui.stop()


def test_stop_server_ends_the_process_and_tolerates_one_that_already_ended():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    ui_module.stop_server(process, grace=5)
    assert process.poll() is not None
    ui_module.stop_server(process)  # a second stop is harmless
