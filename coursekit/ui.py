"""Start and stop the MLflow UI for the course store, on loopback and a free port."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from coursekit.errors import CourseSetupError
from coursekit.ports import first_free
from coursekit.settings import Settings, load_settings

log = logging.getLogger(__name__)

DEFAULT_PORT = 5000
HOST = "127.0.0.1"


class MlflowUI:
    """One ``mlflow ui`` server process serving the course's tracking store.

    ``start()`` picks the first free port from 5000 (a busy port is not an
    error), waits until the server answers, and registers a stop at
    interpreter exit, so a kernel restart never leaves a server behind.
    """

    def __init__(self, settings: Settings | None = None, port: int = DEFAULT_PORT) -> None:
        self.settings = settings or load_settings()
        self.wanted_port = port
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the running UI."""
        if self.port is None:
            raise RuntimeError("the MLflow UI is not running: call start() first")
        return f"http://{HOST}:{self.port}"

    def experiment_url(self, experiment_id: str) -> str:
        """Link to an experiment's runs table in the "Model training" view of the UI."""
        return f"{self.url}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"

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
        """Start the server (or reuse the running one) and return its URL."""
        if self.running:
            return self.url
        port = first_free(self.wanted_port, HOST)
        if port != self.wanted_port:
            log.info("port %s is busy, using %s", self.wanted_port, port)
        with self.log_file.open("ab") as sink:
            # Its own process group, so stop() reaches the web server and its background workers too.
            self._process = subprocess.Popen(
                self.command(port), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.port = port
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()
                raise CourseSetupError(f"The MLflow UI stopped at start-up: see {self.log_file} for why.")
            if _answers(f"{self.url}/health"):
                log.info("MLflow UI at %s", self.url)
                return self.url
            time.sleep(0.3)
        self.stop()
        raise CourseSetupError(f"The MLflow UI did not answer within {timeout:.0f} s: see {self.log_file}.")

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop the server; waits at most 10 s before killing it."""
        if self._process is None:
            return
        if self._process.poll() is None:
            _signal_group(self._process, signal.SIGTERM)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _signal_group(self._process, signal.SIGKILL)
                self._process.wait(timeout=10)
        self._process = None
        self.port = None
        atexit.unregister(self.stop)

    def _repr_html_(self) -> str:
        if not self.running:
            return "MLflow UI: stopped"
        return f'MLflow UI: <a href="{self.url}" target="_blank">{self.url}</a>'

    def __repr__(self) -> str:
        return f"MLflow UI: {self.url}" if self.running else "MLflow UI: stopped"


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except OSError:
        return False
