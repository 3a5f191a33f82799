"""The MLflow UI the way a learner meets it: a fresh browser, the command the setup cell prints, telemetry.

Each browser journey starts from a new browser context (an empty profile: no localStorage, no cookies), so
first-visit pop-ups and default views show exactly as they do for a new learner. Commands run as printed, in
``bash -c`` with a plain environment (no ``.venv/bin`` on PATH, no CI variables), from the repository root and
from ``lessons/`` (where JupyterLab's terminal opens). Screenshots go to ``.ci-artifacts/ui-journey/``.

MLflow switches its telemetry off by itself when ``CI`` (or pytest's ``PYTEST_CURRENT_TEST``) is set, which would
hide a leak; every telemetry check therefore runs in a plain environment, next to a control that shows the same
environment *does* send telemetry without the course's switch. "Sends" is observed, not assumed: the processes get
an ``HTTPS_PROXY`` that records every connection they try to open.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest
from mlflow.tracking import MlflowClient

from coursekit import tracking
from coursekit.authoring.ui_tour import VIEWPORT, launch
from coursekit.settings import Settings
from coursekit.ui import HOST, MlflowUI

pytestmark = pytest.mark.notebook  # real servers and a real browser: slow

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / ".ci-artifacts" / "ui-journey"
WAIT_MS = 60_000
LESSONS = {"lesson-01-first-run": ["rf-first", "rf-second"], "lesson-04-compare-runs": ["rf-t5-d2", "rf-t20-d5"]}
# Variables in whose presence MLflow 3.17 keeps telemetry off by itself (mlflow/telemetry/utils.py).
MLFLOW_QUIET_VARIABLES = (
    "CI", "PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "CIRCLECI", "GITLAB_CI", "JENKINS_URL", "TRAVIS", "TF_BUILD",
    "BITBUCKET_BUILD_NUMBER", "CODEBUILD_BUILD_ARN", "BUILDKITE", "TEAMCITY_VERSION", "CLOUD_RUN_EXECUTION", "DO_NOT_TRACK",
)
CHECK_TELEMETRY = (
    "import json, os, mlflow; from mlflow.telemetry.utils import is_telemetry_disabled; "
    "print(json.dumps({'disabled': is_telemetry_disabled(), 'client': mlflow.telemetry.get_telemetry_client() is not None}))"
)


# --- helpers ---------------------------------------------------------------------------------------------


def plain_env(**extra: str) -> dict[str, str]:
    """What a new terminal has: system PATH (no venv), HOME, LANG; no CI, pytest, MLflow or course variables."""
    system_path = ":".join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(":") if ".venv" not in p)
    env = {"PATH": system_path, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", "NO_PROXY": "127.0.0.1,localhost"}
    env.update(extra)
    return env


class ConnectRecorder(socketserver.ThreadingTCPServer):
    """An HTTPS proxy that opens nothing: it records the request line of every connection and refuses it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(4096).decode("latin-1").strip()
                if line:
                    recorder.requests.append(line)
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

        super().__init__((HOST, 0), Handler)

    @property
    def url(self) -> str:
        """Value for HTTPS_PROXY."""
        return f"http://{HOST}:{self.server_address[1]}"

    def wait_for_any(self, seconds: float) -> list[str]:
        """The requests seen, waiting up to ``seconds`` for a first one."""
        deadline = time.monotonic() + seconds
        while not self.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        return list(self.requests)


@pytest.fixture
def recorder() -> Iterator[ConnectRecorder]:
    server = ConnectRecorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def http(url: str, data: bytes | None = None) -> dict:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A course store with two lesson experiments made the course's way, two finished runs in each."""
    data = tmp_path_factory.mktemp("journey-store")
    settings = Settings(
        data_dir=data, datasets_dir=data / "datasets", tracking_uri=f"sqlite:///{data}/mlflow.db",
        artifact_root=data / "artifacts", spark_master="local[1]", spark_remote=None, driver_memory="1g",
    )
    settings.artifact_root.mkdir(parents=True)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    for name, runs in LESSONS.items():
        experiment_id = tracking.ensure_experiment(name, settings=settings)
        for i, run_name in enumerate(runs):
            run = client.create_run(experiment_id, run_name=run_name)
            client.log_param(run.info.run_id, "numTrees", 5 * (i + 1))
            client.log_metric(run.info.run_id, "AUC", 0.75 + i / 10)
            client.set_terminated(run.info.run_id)
    return settings


def experiment_ids(settings: Settings) -> dict[str, str]:
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    return {name: client.get_experiment_by_name(name).experiment_id for name in LESSONS}


@pytest.fixture(scope="module")
def ui(settings: Settings) -> Iterator[MlflowUI]:
    server = MlflowUI(settings=settings)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def fresh_page(browser):
    """A page in a brand-new browser context (empty profile); every request it makes is recorded."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.requested = []  # type: ignore[attr-defined]
    page.on("request", lambda r: page.requested.append(r.url))  # type: ignore[attr-defined]
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield page
    finally:
        context.close()


def shot(page, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def page_title(page, text: str):
    """The page's title (its h2), e.g. "Runs" or "Overview"."""
    return page.locator("h2").filter(has_text=re.compile(rf"^\s*{text}\s*$"))


def assert_runs_table(page, lesson: str) -> None:
    """On screen: the Runs page of ``lesson`` listing its runs by name, and nothing of the GenAI overview."""
    for run_name in LESSONS[lesson]:
        page.get_by_role("link", name=run_name, exact=True).first.wait_for(timeout=WAIT_MS)
    page_title(page, "Runs").wait_for(timeout=WAIT_MS)
    assert page.get_by_role("columnheader", name="Run Name").count() >= 1
    assert page.get_by_text("Detect Issues").count() == 0, "the GenAI overview's Detect Issues pop-up is on screen"
    assert page_title(page, "Overview").count() == 0
    assert "/runs" in page.url


def click_experiment(page, lesson: str) -> None:
    """Click ``lesson`` where the page lists experiments (Home's Recent Experiments or the Experiments list)."""
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=lesson, exact=True))
    row.first.wait_for(timeout=WAIT_MS)
    row.first.get_by_role("link", name=lesson, exact=True).click()


def only_loopback(urls: list[str]) -> list[str]:
    """The requested URLs that leave the machine."""
    return [u for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).hostname != HOST]


# --- (a) a fresh browser profile --------------------------------------------------------------------------


def test_the_link_the_kit_prints_opens_the_runs_table(ui: MlflowUI, settings: Settings, fresh_page) -> None:
    page = fresh_page
    page.goto(ui.experiment_url(experiment_ids(settings)["lesson-04-compare-runs"]))
    assert_runs_table(page, "lesson-04-compare-runs")
    assert page.get_by_text("Model training", exact=True).first.is_visible()
    shot(page, "a1-printed-link-runs-table")
    assert only_loopback(page.requested) == []


def test_fresh_profile_home_page_then_model_training_opens_the_runs_table(ui: MlflowUI, fresh_page) -> None:
    """What lessons 1, 2 and 4 tell the learner: Home shows a telemetry notice; one click on Model training."""
    page = fresh_page
    page.goto(f"{ui.url}/")
    page.get_by_text("Welcome to MLflow").wait_for(timeout=WAIT_MS)
    # MLflow shows this notice whatever the server's telemetry setting (it only remembers a dismissal).
    notice = page.get_by_text("MLflow collects usage data to improve the product")
    notice.wait_for(timeout=WAIT_MS)
    assert page.get_by_text("Information about UI telemetry").is_visible()
    assert page.get_by_text("GenAI", exact=True).first.is_visible()
    shot(page, "a2-home-fresh-profile")

    page.get_by_text("Model training", exact=True).first.click()
    click_experiment(page, "lesson-01-first-run")
    assert_runs_table(page, "lesson-01-first-run")
    assert "workflowType=machine_learning" in page.url
    shot(page, "a3-home-click-runs-table")
    assert only_loopback(page.requested) == []


def test_fresh_profile_experiments_list_then_model_training_opens_the_runs_table(ui: MlflowUI, fresh_page) -> None:
    page = fresh_page
    page.goto(f"{ui.url}/")
    page.get_by_role("link", name="Experiments", exact=True).first.click()
    page.get_by_role("heading", name="Experiments").first.wait_for(timeout=WAIT_MS)
    page.get_by_text("Model training", exact=True).first.click()
    shot(page, "a4-experiments-list")
    click_experiment(page, "lesson-04-compare-runs")
    assert_runs_table(page, "lesson-04-compare-runs")
    shot(page, "a5-list-click-runs-table")

    # The choice is remembered by this browser: back to the list, the next click opens the runs table again.
    page.get_by_role("link", name="Experiments", exact=True).first.click()
    click_experiment(page, "lesson-01-first-run")
    assert_runs_table(page, "lesson-01-first-run")
    assert only_loopback(page.requested) == []


def test_fresh_profile_without_the_toggle_mlflow_opens_the_genai_overview(ui: MlflowUI, fresh_page) -> None:
    """MLflow 3.17 ignores the experiment's kind tag here; the lesson text describes this page and its way out.

    If this starts failing, MLflow changed its default: update the lessons' UI steps (and README step 4).
    """
    page = fresh_page
    page.goto(f"{ui.url}/")
    click_experiment(page, "lesson-01-first-run")
    page.get_by_text("Detect Issues in Your Traces").wait_for(timeout=WAIT_MS)
    page_title(page, "Overview").wait_for(timeout=WAIT_MS)
    assert page.get_by_role("button", name="Got it").is_visible()
    assert page.get_by_text("MLflow Assistant").first.is_visible()
    assert "workflowType=genai" in page.url
    shot(page, "a6-fresh-click-genai-overview")

    page.get_by_role("button", name="Got it").click()
    page.get_by_text("Model training", exact=True).first.click()
    assert_runs_table(page, "lesson-01-first-run")
    shot(page, "a7-after-model-training-toggle")


# --- (b) the printed command, in a plain shell ------------------------------------------------------------


class Output:
    """Collects a process's output lines in a thread (a pipe read with select() misses buffered lines)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(process,), daemon=True)
        self._thread.start()

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        """Everything printed so far."""
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, seconds: float) -> re.Match[str] | None:
        """The first line matching ``pattern``, waiting up to ``seconds`` for it."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            time.sleep(0.2)
        return None

    def finish(self) -> str:
        """All output once the process has closed its end."""
        self._thread.join(timeout=10)
        return self.text


def alive_or_empty(read: Callable[[], list[str]]) -> list[str]:
    """A process attribute, or [] when the process is already gone (short-lived helpers come and go)."""
    try:
        return read()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return []


@pytest.fixture
def port_5000_busy() -> Iterator[None]:
    """Port 5000 is taken (by us, or already by someone else on this machine)."""
    sock = socket.socket()
    try:
        sock.bind((HOST, 5000))
        sock.listen()
    except OSError:
        pass  # already busy
    try:
        yield
    finally:
        sock.close()


@pytest.mark.parametrize("where", ["repository root", "lessons/"])
def test_the_printed_command_serves_the_ui_from_a_plain_shell(
    settings: Settings, where: str, port_5000_busy: None, recorder: ConnectRecorder
) -> None:
    command = tracking.ui_command(settings)
    assert command.split()[0] == sys.executable and Path(sys.executable).is_absolute()
    assert shutil.which("mlflow", path=plain_env()["PATH"]) is None, "the plain shell must not find mlflow on PATH"
    cwd = REPO if where == "repository root" else REPO / "lessons"
    process = subprocess.Popen(
        ["bash", "-c", command], cwd=cwd, env=plain_env(HTTPS_PROXY=recorder.url, https_proxy=recorder.url),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    output = Output(process)
    tree: list[psutil.Process] = []
    try:
        match = output.wait_for(r"^MLflow UI: (http://127\.0\.0\.1:(\d+))$", 120)
        assert match, f"no address printed:\n{output.text}"
        url, port = match.group(1), int(match.group(2))
        assert port > 5000, "5000 is busy: the next free port is used"
        assert answers(f"{url}/health")
        assert output.wait_for(r"Press Ctrl\+C to stop it", 30), output.text
        ids = experiment_ids(settings)
        for lesson, experiment_id in ids.items():
            assert f"  {lesson}: {url}/#/experiments/{experiment_id}/runs?workflowType=machine_learning" in output.lines

        # Telemetry: the UI's config says disabled, records are refused, and nothing tried to leave the machine.
        assert http(f"{url}/ajax-api/3.0/mlflow/ui-telemetry")["disable_ui_telemetry"] is True
        record = {"event_name": "ui_event", "timestamp_ns": 1, "params": {}, "installation_id": "x", "session_id": "y"}
        assert http(f"{url}/ajax-api/3.0/mlflow/ui-telemetry", json.dumps({"records": [record]}).encode()) == {
            "status": "disabled"
        }
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        servers = [p for p in tree if "uvicorn" in " ".join(alive_or_empty(p.cmdline))]
        assert servers and all(p.environ().get("MLFLOW_DISABLE_TELEMETRY") == "true" for p in servers)
        assert recorder.wait_for_any(2) == []

        os.killpg(process.pid, signal.SIGINT)  # Ctrl+C in the terminal
        assert process.wait(timeout=30) == 0
        assert output.finish().endswith("MLflow UI stopped."), output.text
        assert not answers(f"{url}/health")
        gone, alive = psutil.wait_procs(tree, timeout=10)
        assert alive == [], f"left running: {[alive_or_empty(p.cmdline) for p in alive]}"
    finally:
        if process.poll() is None:  # the test failed midway: stop the command and the server it started
            tree = tree or [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        for leftover in tree:
            if leftover.is_running():
                leftover.kill()
        output.finish()
        assert process.stdout is not None
        process.stdout.close()


def test_scripts_lab_sh_gives_jupyterlab_terminals_the_course_path(tmp_path: Path) -> None:
    """JupyterLab's terminals inherit the server's PATH: .venv/bin must come first there."""
    from coursekit.ports import first_free

    port = first_free(8950)
    env = plain_env(COURSE_LAB_PORT=str(port), COURSE_LAB_NO_BROWSER="1", JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"))
    process = subprocess.Popen(
        ["bash", "scripts/lab.sh", "--IdentityProvider.token=journey"], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not answers(f"http://{HOST}:{port}/api/status?token=journey") and time.monotonic() < deadline:
            assert process.poll() is None, "JupyterLab exited"
            time.sleep(0.5)
        server = psutil.Process(process.pid)  # lab.sh execs JupyterLab
        path = server.environ()["PATH"].split(":")
        assert path[0] == str(REPO / ".venv" / "bin")
        assert shutil.which("mlflow", path=":".join(path)) == str(REPO / ".venv" / "bin" / "mlflow")
        assert server.environ()["MLFLOW_DISABLE_TELEMETRY"] == "true"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# --- (c) telemetry ----------------------------------------------------------------------------------------


def run_tracked_calls(tmp: Path) -> str:
    """Code that makes MLflow record usage events (create an experiment, a run) against a temporary store."""
    return textwrap.dedent(f"""
        import mlflow, time
        mlflow.set_tracking_uri("sqlite:///{tmp}/mlflow.db")
        mlflow.set_experiment("telemetry-probe")
        with mlflow.start_run():
            mlflow.log_param("p", 1)
        time.sleep(3)
    """)


def test_without_the_course_switch_this_environment_does_send_telemetry(tmp_path: Path, recorder) -> None:
    """The control: a plain environment (CI unset) is not one where MLflow keeps quiet by itself."""
    python = str(REPO / ".venv" / "bin" / "python")
    env = plain_env(HTTPS_PROXY=recorder.url, https_proxy=recorder.url)
    status = subprocess.run([python, "-c", CHECK_TELEMETRY], env=env, capture_output=True, text=True, check=True)
    assert json.loads(status.stdout.strip().splitlines()[-1]) == {"disabled": False, "client": True}
    subprocess.run([python, "-c", run_tracked_calls(tmp_path)], env=env, capture_output=True, check=True, timeout=120)
    assert any("mlflow-telemetry.io" in line for line in recorder.wait_for_any(5)), recorder.requests


def test_the_course_kernel_sends_no_telemetry(tmp_path: Path, recorder) -> None:
    from jupyter_client.manager import start_new_kernel

    env = plain_env(HTTPS_PROXY=recorder.url, https_proxy=recorder.url)
    manager, client = start_new_kernel(kernel_name="mlflow-spark-course", env=env, startup_timeout=120)
    outputs: list[str] = []

    def collect(message: dict) -> None:
        if message["msg_type"] == "stream":
            outputs.append(message["content"]["text"])

    try:
        for code in ("import os; assert 'CI' not in os.environ and 'PYTEST_CURRENT_TEST' not in os.environ",
                     CHECK_TELEMETRY, run_tracked_calls(tmp_path)):
            reply = client.execute_interactive(code, timeout=120, output_hook=collect)
            assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert json.loads("".join(outputs).strip().splitlines()[0]) == {"disabled": True, "client": False}
    assert recorder.wait_for_any(2) == []


def test_coursekit_switches_telemetry_off_even_after_mlflow_was_imported(tmp_path: Path, recorder) -> None:
    """A kernel without the kernel-spec switch (another Python, a Databricks cluster): coursekit does it."""
    python = str(REPO / ".venv" / "bin" / "python")
    code = (
        "import mlflow\nassert mlflow.telemetry.get_telemetry_client() is not None\n"
        "from coursekit import tracking\nprint(tracking.disable_telemetry())\n" + CHECK_TELEMETRY.replace("; ", "\n")
        + "\n" + run_tracked_calls(tmp_path)
    )
    env = plain_env(HTTPS_PROXY=recorder.url, https_proxy=recorder.url, PYTHONPATH=str(REPO))
    done = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "True"
    assert json.loads(lines[1]) == {"disabled": True, "client": False}
    assert recorder.wait_for_any(2) == []


def test_telemetry_comes_back_when_the_learner_opts_in(settings: Settings, recorder, monkeypatch) -> None:
    """README: MLFLOW_DISABLE_TELEMETRY=false turns it back on; the UI server then asks MLflow's config host."""
    for name in list(os.environ):
        if name in MLFLOW_QUIET_VARIABLES or name.startswith("RUNBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    monkeypatch.setenv("HTTPS_PROXY", recorder.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert tracking.telemetry_off()["MLFLOW_DISABLE_TELEMETRY"] == "false"
    ui = MlflowUI(settings=settings, port=5100)
    try:
        url = ui.start()
        monkeypatch.delenv("HTTPS_PROXY")  # the test's own requests go straight to the server
        http(f"{url}/ajax-api/3.0/mlflow/ui-telemetry")
        assert any("cloudfront.net" in line for line in recorder.wait_for_any(10)), recorder.requests
    finally:
        ui.stop()
