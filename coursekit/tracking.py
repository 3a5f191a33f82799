"""The one gateway to the MLflow store: tracking URI, experiments and their layout."""

from __future__ import annotations

import logging

import mlflow
from mlflow.tracking import MlflowClient

from coursekit.settings import Settings, load_settings

log = logging.getLogger(__name__)

# The MLflow 3 UI opens experiments on the GenAI view unless this tag says otherwise.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
COURSE_TAG = "course"
COURSE_NAME = "mlflow-spark-course"


def configure_tracking(settings: Settings | None = None) -> str:
    """Point MLflow at the course store and return its tracking URI."""
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
    tag that opens the runs table in the MLflow 3 UI.
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
    """The shell command that opens the MLflow UI on this course's store."""
    settings = settings or load_settings()
    return (
        f"mlflow ui --backend-store-uri {settings.tracking_uri} "
        f"--default-artifact-root {settings.artifact_root.as_uri()} --host 127.0.0.1 --port 5000"
    )
