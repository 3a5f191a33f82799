"""A simulated Databricks notebook environment on one machine, for running the kit's Databricks path unmodified.

What is simulated:

- **the notebook kernel** (:data:`STARTUP`, an IPython startup file): ``DATABRICKS_RUNTIME_VERSION=17.3`` (a classic
  ML runtime), a Spark session that already exists (``spark``, app name "Databricks Shell") and ``dbutils``
  with notebook widgets and an empty command context (MLflow reads it through ``dbutils.entry_point`` as soon as
  it is imported in a Databricks runtime; empty, so runs get no notebook id, path or job tags);
  ``current_user()`` is the workspace user (``SPARK_USER``);
- **the workspace** (:mod:`databricks_sim.workspace`): ``workspace/mkdirs`` for the Databricks SDK, and in front
  of a real ``mlflow server`` (SQLite, proxied artifacts) the rules Databricks applies to experiments and Unity
  Catalog applies to registered models. ``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI`` and ``DATABRICKS_HOST``
  all point at it; ``DATABRICKS_TOKEN`` is a dummy personal access token.

What it cannot simulate, and so does not prove:

- **serverless compute**: serverless is Spark Connect, and ``mlflow.spark`` on a Connect session needs Databricks'
  own Connect server (open-source Spark Connect cannot save an MLflow Spark model), so the runtime version here
  is a classic one and the session is a classic local one;
- **Unity Catalog volumes**: ``MLFLOW_DFS_TMP`` is a local folder given in the environment, because nothing here
  can create a ``/Volumes/...`` path; the ``CREATE VOLUME`` decision is pinned by unit tests of the kit;
- real authentication (the token is never checked), workspace permissions beyond the user's home folder,
  the run tags Databricks adds (``mlflow.user`` is the local login here, not the workspace user),
  the built-in MLflow UI, the ``databricks``/``databricks-uc`` URI schemes themselves (the kernel uses
  ``http://`` URIs, so MLflow's open-source REST stores talk to the fake workspace and the Unity Catalog rules
  are enforced by the server, not by MLflow's Unity Catalog client), and Unity Catalog's own storage of model files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from coursekit.instructor.class_server import ClassServer
from coursekit.ports import first_free

HERE = Path(__file__).resolve().parent
STARTUP = HERE / "startup.py"
WORKSPACE = HERE / "workspace.py"
USER = "sim.learner@example.com"
RUNTIME = "17.3"
CATALOG = "sim_catalog"
APP_NAME = "Databricks Shell"
#: The log level the simulated notebook's session starts with: one the kit never sets (FATAL is quieter than the
#: kit's ERROR, so outputs stay clean), read back at the end to show the kit left the session alone.
LOG_LEVEL = "FATAL"
# Below the ephemeral range (32768-60999): a poll of a port there can connect to itself before the server listens.
BACKEND_PORT, WORKSPACE_PORT = 5270, 5290
NO_JOBS = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


class Simulation:
    """A real MLflow server, the fake workspace in front of it, and an IPython profile for the notebook kernel."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.backend = ClassServer(self.root / "mlflow-server", port=first_free(BACKEND_PORT), workers=1)
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tmpdir(self) -> Path:
        """The driver's temporary folder (``TMPDIR`` of the kernel)."""
        return self.root / "driver-tmp"

    @property
    def ipython_dir(self) -> Path:
        return self.root / "ipython"

    def start(self, timeout: float = 30.0) -> Simulation:
        # MLflow 3's server also starts job runners (huey, 15 workers) for GenAI features the simulation never uses.
        before = os.environ.get(NO_JOBS)
        os.environ[NO_JOBS] = "false"
        try:
            self.backend.start()
        finally:
            if before is None:
                os.environ.pop(NO_JOBS, None)
            else:
                os.environ[NO_JOBS] = before
        self.port = first_free(WORKSPACE_PORT)
        log = (self.root / "workspace.log").open("ab")
        self._process = subprocess.Popen(
            [sys.executable, str(WORKSPACE), "--port", str(self.port), "--backend", self.backend.url, "--user", USER],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:  # noqa: S310 - loopback
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the fake workspace did not start: see {self.root / 'workspace.log'}")
            time.sleep(0.2)
        startup = self.ipython_dir / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        shutil.copy(STARTUP, startup / "00-databricks.py")
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        self.backend.stop()

    def journal(self) -> dict[str, Any]:
        """What the fake workspace recorded: folders, requests, refusals (see :class:`workspace.Journal`)."""
        with urllib.request.urlopen(f"{self.url}/__sim__/journal", timeout=10) as answer:  # noqa: S310 - loopback
            return json.loads(answer.read())

    def kernel_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a papermill run whose kernel is a simulated Databricks notebook."""
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if not k.startswith(("MLFLOW_", "COURSE_", "DATABRICKS_", "SPARK_", "PYSPARK_", "IPYTHONDIR"))}
        scratch = self.root / "driver"
        env.update(
            DATABRICKS_RUNTIME_VERSION=RUNTIME,
            DATABRICKS_HOST=self.url,
            DATABRICKS_TOKEN="dapi-simulated-token",  # noqa: S106 - a dummy the fake workspace accepts
            MLFLOW_TRACKING_URI=self.url,
            MLFLOW_REGISTRY_URI=self.url,
            MLFLOW_DFS_TMP=str(self.root / "dfs-tmp"),
            MLFLOW_DISABLE_TELEMETRY="true",
            COURSE_CATALOG=CATALOG,
            TMPDIR=str(self.tmpdir),  # the kit's scratch default on Databricks: $TMPDIR/mlflow-course
            IPYTHONDIR=str(self.ipython_dir),
            SPARK_USER=USER,
            DATABRICKS_SIM_LOG4J=str(Path(__file__).resolve().parents[2] / "coursekit" / "log4j2.properties"),
            DATABRICKS_SIM_SCRATCH=str(scratch),
            DATABRICKS_SIM_LOG_LEVEL=LOG_LEVEL,
        )
        (self.root / "dfs-tmp").mkdir(parents=True, exist_ok=True)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        return env

    def __enter__(self) -> Simulation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
