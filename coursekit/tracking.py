"""The one gateway to the MLflow store: tracking URI, experiments, their layout, and MLflow's telemetry."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Mapping

# MLflow 3 sends usage telemetry unless told not to (mlflow/telemetry/utils.py `is_telemetry_disabled`:
# MLFLOW_DISABLE_TELEMETRY, DO_NOT_TRACK, or a CI variable). `import mlflow` builds its telemetry
# client from the environment, so the course's default is set before MLflow is imported; an explicit
# MLFLOW_DISABLE_TELEMETRY=false in the environment turns it back on.
TELEMETRY_SWITCH = "MLFLOW_DISABLE_TELEMETRY"
os.environ.setdefault(TELEMETRY_SWITCH, "true")

import mlflow  # noqa: E402 - after the telemetry default
import mlflow.telemetry  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from coursekit.settings import Settings, load_settings  # noqa: E402

log = logging.getLogger(__name__)

# Marks an experiment as "Machine learning" (not "GenAI apps & agents"): with it the MLflow UI does not ask
# for the experiment's type. MLflow 3.17's UI does NOT open the runs table because of it: which page an
# experiment opens on follows the UI's own GenAI / Model training toggle (see coursekit.ui).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
COURSE_TAG = "course"
COURSE_NAME = "mlflow-spark-course"


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


def configure_tracking(settings: Settings | None = None) -> str:
    """Point MLflow at the course store (telemetry off) and return its tracking URI."""
    disable_telemetry()
    settings = settings or load_settings()
    settings.artifact_root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
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
    """Create the experiment if needed, with its artifacts in the course folder; return its id.

    A plain ``mlflow.set_experiment`` against a SQLite store would put artifacts
    in ``./mlruns`` of whatever folder the notebook runs in, so the course
    creates its experiments once with an explicit artifact location and the
    "Machine learning" kind tag (the UI then does not ask for the experiment's type).
    """
    settings = settings or load_settings()
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        if existing.lifecycle_stage == "deleted":
            client.restore_experiment(existing.experiment_id)
        if existing.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client.set_experiment_tag(existing.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return existing.experiment_id
    location = settings.artifact_root / name
    experiment_id = client.create_experiment(
        name,
        artifact_location=location.as_uri(),
        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND, COURSE_TAG: COURSE_NAME},
    )
    log.info("created experiment %s (%s) with artifacts in %s", name, experiment_id, location)
    return experiment_id


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
