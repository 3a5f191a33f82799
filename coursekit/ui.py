"""Start and stop the MLflow UI for the course store, on loopback and a free port, with telemetry off.

``python -m coursekit.ui`` does the same from a terminal (the command every setup cell prints).

Which page an experiment opens on is decided by the UI, not by the store: MLflow 3.17's UI derives an
experiment's kind from its GenAI / Model training toggle (the ``workflowType`` URL parameter, else the
browser's localStorage ``mlflow.workflowType_v1``, default GenAI) and ignores the experiment's
``mlflow.experimentKind`` tag. So every link the course shows carries ``workflowType=machine_learning``.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import html
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import http.client
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Protocol

from coursekit.errors import CourseSetupError
from coursekit.ports import first_free
from coursekit.settings import Settings, load_settings
from coursekit.tracking import COURSE_NAME, COURSE_TAG, DATABRICKS_UI, LEARNER_TAG, RUNS_VIEW, require_server, telemetry_off

log = logging.getLogger(__name__)

DEFAULT_PORT = 5000
HOST = "127.0.0.1"
__all__ = [
    "DEFAULT_PORT", "HOST", "RUNS_VIEW", "MlflowUI", "course_experiments", "main",
    "start_server", "stop_server", "stop_on_signals", "serve_until_interrupted",
]


class MlflowUI:
    """One ``mlflow ui`` server process serving the course's tracking store.

    ``start()`` picks the first free port from ``port`` (by default ``COURSE_UI_PORT``, else 5000; a busy
    port is not an error), waits until the server answers, and registers a stop at
    interpreter exit, so a kernel restart never leaves a server behind.

    With a tracking server (``MLFLOW_TRACKING_URI=http://…``) the UI is that server's: ``start()`` starts
    nothing, checks that it answers and returns its address; ``stop()`` leaves it alone.
    """

    def __init__(self, settings: Settings | None = None, port: int | None = None) -> None:
        self.settings = settings or load_settings()
        self.wanted_port = self.settings.ui_port if port is None else port
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the running UI."""
        if self.settings.remote_store:
            return self.settings.tracking_uri.rstrip("/")
        if self.port is None:
            raise RuntimeError("the MLflow UI is not running: call start() first")
        return f"http://{HOST}:{self.port}"

    def experiment_url(self, experiment_id: str) -> str:
        """Link to an experiment's runs table in the "Model training" view of the UI.

        On Databricks, where the UI is part of the workspace, it says where to click instead.
        """
        if self.settings.databricks:
            return f"{DATABRICKS_UI} (experiment id {experiment_id})"
        return f"{self.url}/#/experiments/{experiment_id}/runs?{RUNS_VIEW}"

    @property
    def log_file(self) -> Path:
        """Where the server's own output goes."""
        return self.settings.data_dir / "mlflow-ui.log"

    def command(self, port: int) -> list[str]:
        """The exact command line used to serve the store."""
        return [
            str(Path(sys.executable).with_name("mlflow")), "ui",
            "--backend-store-uri", self.settings.tracking_uri,
            "--default-artifact-root", self.settings.artifact_root.as_uri(),
            "--host", HOST, "--port", str(port), "--workers", "1",
        ]

    def start(self, timeout: float = 90.0) -> str:
        """Start the server (or reuse the running one) and return its URL.

        On Databricks nothing is started: the workspace has the UI built in; one line says where it is.
        """
        if self.settings.databricks:
            print(f"Nothing to start on Databricks: its MLflow UI is built in: {DATABRICKS_UI}.")  # noqa: T201 - to the learner
            return ""
        if self.settings.remote_store:
            require_server(self.settings.tracking_uri)
            return self.url
        if self.running:
            return self.url
        port = first_free(self.wanted_port, HOST)
        if port != self.wanted_port:
            log.info("port %s is busy, using %s", self.wanted_port, port)
        self._process = start_server(self.command(port), self.log_file, f"http://{HOST}:{port}", "The MLflow UI", timeout)
        self.port = port
        atexit.register(self.stop)
        log.info("MLflow UI at %s", self.url)
        return self.url

    @property
    def running(self) -> bool:
        """True while the server process is alive (always, for a tracking server the course does not run)."""
        if self.settings.databricks:
            return False
        if self.settings.remote_store:
            return True
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop the server; waits at most 10 s before killing it."""
        if self._process is None:
            return
        stop_server(self._process)
        self._process = None
        self.port = None
        atexit.unregister(self.stop)

    def runs_links(self) -> dict[str, str]:
        """Course experiment name → link to its runs table, for every course experiment in the store."""
        return {name: self.experiment_url(eid) for name, eid in course_experiments(self.settings).items()}

    def _repr_html_(self) -> str:
        if not self.running:
            return "MLflow UI: stopped"
        runs = "".join(
            f'<li>{html.escape(name)}: <a href="{link}" target="_blank">runs table</a></li>'
            for name, link in self.runs_links().items()
        )
        return f'MLflow UI: <a href="{self.url}" target="_blank">{self.url}</a>' + (f"<ul>{runs}</ul>" if runs else "")

    def __repr__(self) -> str:
        return f"MLflow UI: {self.url}" if self.running else "MLflow UI: stopped"


def course_experiments(settings: Settings) -> dict[str, str]:
    """Name → id of the active course experiments in the store (only this learner's when one is set), by name."""
    from mlflow.tracking import MlflowClient

    wanted = f"tags.{COURSE_TAG} = '{COURSE_NAME}'"
    if settings.learner:
        wanted += f" and tags.`{LEARNER_TAG}` = '{settings.learner}'"
    found = MlflowClient(tracking_uri=settings.tracking_uri).search_experiments(filter_string=wanted)
    return {e.name: e.experiment_id for e in sorted(found, key=lambda e: e.name)}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m coursekit.ui",
        description="Serve the MLflow UI for the course store on 127.0.0.1 (telemetry off) until Ctrl+C.",
    )
    parser.add_argument("--backend-store-uri", help="tracking store (default: the course store)")
    parser.add_argument("--default-artifact-root", help="file: URI of the artifact folder (default: the course's)")
    parser.add_argument("--port", type=int, help=f"first port to try (default: COURSE_UI_PORT, else {DEFAULT_PORT})")
    return parser.parse_args(argv)


def _settings_from(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    if args.backend_store_uri:
        settings = dataclasses.replace(settings, tracking_uri=args.backend_store_uri)
    if args.default_artifact_root:
        path = urllib.request.url2pathname(urllib.parse.urlparse(args.default_artifact_root).path)
        settings = dataclasses.replace(settings, artifact_root=Path(path))
    return settings


def main(argv: list[str] | None = None) -> int:
    """``python -m coursekit.ui``: serve the UI, print its address and the course's runs tables, wait for Ctrl+C."""
    args = _parse_args(argv)
    settings = _settings_from(args)
    ui = MlflowUI(settings=settings, port=args.port)
    stop_on_signals()
    if settings.databricks:
        ui.start()
        return 0
    if settings.remote_store:
        return _point_at_server(ui)
    print(f"Starting the MLflow UI for {settings.tracking_uri} …", flush=True)  # noqa: T201 - CLI output

    def banner(url: str) -> str:
        lines = [
            f"MLflow UI: {url}",
            "  (from its Home page, click Model training at the top left once: experiments then open on their runs)",
            "Runs of each lesson:",
        ]
        links = ui.runs_links()
        lines += [f"  {name}: {link}" for name, link in links.items()]
        if not links:
            lines.append("  (none yet: run a lesson's setup cell first)")
        return "\n".join([*lines, "Press Ctrl+C to stop it."])

    return serve_until_interrupted(ui, "The MLflow UI", banner, stopped="MLflow UI stopped.")


def _point_at_server(ui: MlflowUI) -> int:
    """A tracking server serves its own UI: print its address and this learner's runs tables."""
    try:
        url = ui.start()
    except CourseSetupError as error:
        print(f"ERROR: {error}", file=sys.stderr)  # noqa: T201
        return 1
    lines = [f"{ui.settings.tracking_uri} is a tracking server: it serves the MLflow UI itself at {url}", "Runs of each lesson:"]
    links = ui.runs_links()
    lines += [f"  {name}: {link}" for name, link in links.items()] or ["  (none yet: run a lesson's setup cell first)"]
    print("\n".join(lines), flush=True)  # noqa: T201
    return 0


def start_server(command: list[str], log_file: Path, url: str, what: str, timeout: float) -> subprocess.Popen[bytes]:
    """Run a server ``command`` (telemetry off, output to ``log_file``) and return its process once ``url/health`` answers.

    It gets its own process group, so :func:`stop_server` reaches the web server and its workers too. A server that
    exits, does not answer within ``timeout`` s or is interrupted is stopped; ``what`` ("The MLflow UI") names it in
    the one-line :class:`CourseSetupError`.
    """
    with log_file.open("ab") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env=telemetry_off(),
        )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CourseSetupError(f"{what} stopped at start-up: see {log_file} for why.")
            if _answers(f"{url}/health"):
                return process
            time.sleep(0.3)
        raise CourseSetupError(f"{what} did not answer within {timeout:.0f} s: see {log_file}.")
    except BaseException:
        stop_server(process)
        raise


def stop_server(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """End a server started by :func:`start_server`: SIGTERM to its process group, SIGKILL after ``grace`` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """Let Ctrl+C, ``kill`` or a closed terminal raise KeyboardInterrupt (SIGINT too: a shell may start us ignoring it)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)


class Server(Protocol):
    """What :func:`serve_until_interrupted` needs of a server."""

    log_file: Path

    @property
    def running(self) -> bool: ...

    def start(self) -> str: ...

    def stop(self) -> None: ...


def serve_until_interrupted(server: Server, what: str, banner: Callable[[str], str], stopped: str = "") -> int:
    """A server command's life: start ``server``, print ``banner(url)``, serve until Ctrl+C (0) or until the server stops
    by itself (1, named by ``what``); a :class:`CourseSetupError` is one line (1). Always stops the server, and then
    prints ``stopped`` if it was running."""
    try:
        print(banner(server.start()), flush=True)  # noqa: T201 - CLI output
        while server.running:
            time.sleep(0.5)
        print(f"{what} stopped by itself: see {server.log_file}.", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        return 0
    except CourseSetupError as error:
        print(f"ERROR: {error}", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        was_running = server.running
        server.stop()
        if was_running and stopped:
            print(stopped, flush=True)  # noqa: T201


def _answers(url: str) -> bool:
    # Before the server listens, a connection to a port in the ephemeral range can meet itself (TCP
    # self-connect) and read back its own request: that is "not answering yet" (HTTPException), not a crash.
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        return False


if __name__ == "__main__":
    raise SystemExit(main())
