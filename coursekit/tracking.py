"""The one gateway to the MLflow store: tracking and registry URIs, experiments, their layout, MLflow's telemetry,
and on Databricks the workspace folder and the Unity Catalog volume that Spark models pass through."""

from __future__ import annotations

import logging
import os
import posixpath
import shlex
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

# MLflow 3 sends usage telemetry unless told not to (mlflow/telemetry/utils.py `is_telemetry_disabled`:
# MLFLOW_DISABLE_TELEMETRY, DO_NOT_TRACK, or a CI variable). `import mlflow` builds its telemetry
# client from the environment, so the course's default is set before MLflow is imported; an explicit
# MLFLOW_DISABLE_TELEMETRY=false in the environment turns it back on.
TELEMETRY_SWITCH = "MLFLOW_DISABLE_TELEMETRY"
os.environ.setdefault(TELEMETRY_SWITCH, "true")

import mlflow  # noqa: E402 - after the telemetry default
import mlflow.telemetry  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from coursekit.errors import CourseSetupError, TrackingServerError  # noqa: E402
from coursekit.settings import Settings, is_server_uri, load_settings  # noqa: E402

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# Marks an experiment as "Machine learning" (not "GenAI apps & agents"): with it the MLflow UI does not ask
# for the experiment's type. MLflow 3.17's UI does NOT open the runs table because of it: which page an
# experiment opens on follows the UI's own GenAI / Model training toggle (see coursekit.ui).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# The UI's query parameter for its GenAI / Model training toggle; "machine_learning" shows the runs table.
RUNS_VIEW = "workflowType=machine_learning"
COURSE_TAG = "course"
COURSE_NAME = "mlflow-spark-course"
# Whose experiment it is, on a tracking server shared by a class (coursekit.instructor.progress reads it).
LEARNER_TAG = "course.learner"
#: Where Databricks shows a notebook's runs (its documentation: "View notebook experiment", "Experiments").
DATABRICKS_UI = "the Experiment icon in the notebook's right sidebar, or AI/ML > Experiments in the left sidebar"
# MLflow's setting for where mlflow.spark stages a model's files; on Databricks a Unity Catalog volume.
DFS_TMP = "MLFLOW_DFS_TMP"
COURSE_VOLUME = "mlflow_course"


def telemetry_off(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default: this process's) in which MLflow sends no usage telemetry.

    A value the learner set for MLFLOW_DISABLE_TELEMETRY is kept, so ``MLFLOW_DISABLE_TELEMETRY=false``
    still turns telemetry back on.
    """
    env = dict(os.environ if environ is None else environ)
    env.setdefault(TELEMETRY_SWITCH, "true")
    return env


def disable_telemetry() -> bool:
    """Switch MLflow's usage telemetry off in this process (unless the learner opted in); True if off.

    Also drops the telemetry client that ``import mlflow`` made when MLflow was imported before the
    course helper, so nothing is queued for sending afterwards.
    """
    os.environ.setdefault(TELEMETRY_SWITCH, "true")
    off = os.environ[TELEMETRY_SWITCH].strip().lower() in ("true", "1")
    if off and mlflow.telemetry.get_telemetry_client() is not None:
        mlflow.telemetry.set_telemetry_client()  # re-reads the environment: no client when disabled
    return off


def require_server(tracking_uri: str, timeout: float = 5.0) -> None:
    """Raise :class:`TrackingServerError` (one line) unless the tracking server answers ``/health``.

    MLflow's own client retries an unreachable server for minutes before it fails with a long traceback.
    """
    try:
        with urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=timeout) as response:  # noqa: S310
            if response.status == 200:
                return
    except OSError:
        pass
    raise TrackingServerError(
        f"The tracking server {tracking_uri} does not answer: check the address with your instructor, "
        "or unset MLFLOW_TRACKING_URI to work on your own store."
    )


def configure_tracking(settings: Settings | None = None) -> str:
    """Point MLflow at the course store (telemetry off) and return its tracking URI.

    A tracking server (``http(s)://``) must answer first; a private store gets its artifact folder.
    """
    disable_telemetry()
    settings = settings or load_settings()
    if is_server := is_server_uri(settings.tracking_uri):
        require_server(settings.tracking_uri)
    elif not settings.remote_store:
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    if settings.registry_uri:
        mlflow.set_registry_uri(settings.registry_uri)
    log.debug("tracking %s (server: %s), registry %s", settings.tracking_uri, is_server, settings.registry_uri)
    # Creating the SQLite tables logs two INFO lines per new store; they mean nothing to a learner.
    db_logger = logging.getLogger("mlflow.store.db.utils")
    previous = db_logger.level
    db_logger.setLevel(logging.WARNING)
    try:
        MlflowClient(tracking_uri=settings.tracking_uri).search_experiments(max_results=1)
    finally:
        db_logger.setLevel(previous)
    return settings.tracking_uri


def ensure_experiment(name: str, settings: Settings | None = None) -> str:
    """Create the experiment if needed, with the course's tags; return its id.

    On a private store (SQLite) a plain ``mlflow.set_experiment`` would put artifacts in ``./mlruns`` of
    whatever folder the notebook runs in, so the course creates its experiments with an explicit artifact
    location in the course data folder. On a tracking server the server decides where artifacts go
    (``--serve-artifacts``: they are uploaded to it), so no location is set. Either way the experiment is
    tagged "Machine learning" (the UI then does not ask for its type), and with the learner's name when a
    learner is set.
    """
    settings = settings or load_settings()
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    tags = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND, COURSE_TAG: COURSE_NAME}
    if settings.learner:
        tags[LEARNER_TAG] = settings.learner
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        if existing.lifecycle_stage == "deleted":
            client.restore_experiment(existing.experiment_id)
        for key, value in tags.items():
            if existing.tags.get(key) != value:
                client.set_experiment_tag(existing.experiment_id, key, value)
        return existing.experiment_id
    if settings.databricks:
        make_workspace_folder(posixpath.dirname(name))
    if settings.remote_store:
        experiment_id = client.create_experiment(name, tags=tags)
        log.info("created experiment %s (%s) on %s", name, experiment_id, settings.tracking_uri)
        return experiment_id
    location = settings.artifact_root / name
    experiment_id = client.create_experiment(name, artifact_location=location.as_uri(), tags=tags)
    log.info("created experiment %s (%s) with artifacts in %s", name, experiment_id, location)
    return experiment_id


def make_workspace_folder(folder: str) -> None:
    """Create the workspace folder ``folder`` (``/Users/<you>/mlflow-course``) if it is missing.

    Databricks refuses an experiment whose parent folder does not exist ("RESOURCE_DOES_NOT_EXIST: Parent
    directory … does not exist"). The Databricks SDK (a dependency of MLflow) authenticates by itself in a
    notebook; ``mkdirs`` leaves an existing folder alone.
    """
    try:
        from databricks.sdk import WorkspaceClient

        WorkspaceClient().workspace.mkdirs(folder)
    except Exception as error:  # noqa: BLE001 - the SDK's auth, permission and HTTP errors all mean the same here
        raise CourseSetupError(
            f"Could not create the workspace folder {folder} ({type(error).__name__}: {str(error)[:120]}): "
            "create it in the Workspace browser (Create > Folder) and run the cell again."
        ) from error
    log.info("workspace folder %s is there", folder)


def volume_path(settings: Settings) -> str:
    """The Unity Catalog volume the course's Spark models pass through: ``/Volumes/<catalog>/<schema>/mlflow_course``."""
    return f"/Volumes/{settings.catalog}/{settings.schema}/{COURSE_VOLUME}"


def create_volume_sql(settings: Settings) -> str:
    """The SQL that creates :func:`volume_path`'s volume when it is missing (a managed volume)."""
    return f"CREATE VOLUME IF NOT EXISTS `{settings.catalog}`.`{settings.schema}`.`{COURSE_VOLUME}`"


def use_dfs_tmp(settings: Settings, spark: SparkSession, environ: dict[str, str] | Any = None) -> str:
    """Point ``MLFLOW_DFS_TMP`` at a Unity Catalog volume for ``mlflow.spark``, and say what was chosen (one line).

    On serverless and standard-access compute MLflow stages a Spark model's files in a ``/Volumes/…`` path and
    refuses anything else. A ``MLFLOW_DFS_TMP`` the learner set is kept as it is; otherwise the course's volume
    is created if missing (``CREATE VOLUME IF NOT EXISTS``) and used.
    """
    env = os.environ if environ is None else environ
    chosen = env.get(DFS_TMP, "").strip()
    if chosen:
        return f"Spark models: {DFS_TMP}={chosen} (from your environment)"
    path = volume_path(settings)
    if not Path(path).is_dir():
        try:
            spark.sql(create_volume_sql(settings))
        except Exception as error:  # noqa: BLE001 - Spark's analysis and permission errors alike
            raise CourseSetupError(
                f"Could not create the volume {settings.catalog}.{settings.schema}.{COURSE_VOLUME} "
                f"({type(error).__name__}): pick a catalog and schema you may write to in the widgets at the top, "
                f"or set {DFS_TMP} to a /Volumes/... folder of yours."
            ) from error
        how = "created"
    else:
        how = "exists"
    env[DFS_TMP] = path
    return f"Spark models: {DFS_TMP}={path} (Unity Catalog volume, {how})"


def experiment_link(settings: Settings, experiment_id: str) -> str:
    """The tracking server's page for an experiment's runs table ("Model training" view)."""
    return f"{settings.tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs?{RUNS_VIEW}"


def ui_hint(settings: Settings, experiment_name: str, experiment_id: str) -> str:
    """What the setup cell says about the MLflow UI: a server's page for the experiment, or the command to paste.

    On Databricks the UI is built in: the notebook's Experiment panel, and the experiment's own page.
    """
    if settings.databricks:
        return (
            f"MLflow UI:    built into Databricks: {DATABRICKS_UI}\n"
            f"              > {experiment_name}"
        )
    if settings.remote_store:
        return (
            f"MLflow UI:    the tracking server's page for {experiment_name}:\n"
            f"              {experiment_link(settings, experiment_id)}"
        )
    return (
        f"MLflow UI:    paste this into a terminal, then open the link it prints for {experiment_name} "
        f"(Ctrl+C stops it):\n              {ui_command(settings)}"
    )


def ui_command(settings: Settings | None = None) -> str:
    """The shell command that serves the MLflow UI on this course's store, ready to paste into any terminal.

    It names the course interpreter by its absolute path (``.venv/bin`` is not on a terminal's PATH) and
    runs ``coursekit.ui``: 127.0.0.1, port 5000 or the next free one, telemetry off, Ctrl+C stops it.
    """
    settings = settings or load_settings()
    return shlex.join([
        sys.executable, "-m", "coursekit.ui",
        "--backend-store-uri", settings.tracking_uri,
        "--default-artifact-root", settings.artifact_root.as_uri(),
    ])
