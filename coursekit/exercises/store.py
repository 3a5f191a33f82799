"""Read-only questions the checks ask of the MLflow store."""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

import mlflow
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

# Without it, MLflow draws a "Downloading artifacts" progress bar into the learner's notebook.
QUIET_DOWNLOADS = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def experiment_runs(experiment_name: str, client: MlflowClient | None = None, **search: Any) -> list[Run]:
    """``client.search_runs`` over one experiment, by name (keyword arguments passed on); [] when it does not exist."""
    client = client or MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    return list(client.search_runs([experiment.experiment_id], **search))


def in_experiment(run: Run, experiment_name: str, client: MlflowClient | None = None) -> bool:
    """Whether ``run`` belongs to the experiment called ``experiment_name``."""
    experiment = (client or MlflowClient()).get_experiment_by_name(experiment_name)
    return experiment is not None and run.info.experiment_id == experiment.experiment_id


def find_latest_run(experiment_name: str, run_name: str, client: MlflowClient | None = None) -> Run | None:
    """The most recently started run called ``run_name`` in ``experiment_name``, or None."""
    newest_first = ["attributes.start_time DESC"]
    # MLflow's filter language has no escape character: quote with whichever quote the name lacks.
    if "'" not in run_name:
        name_filter = f"attributes.run_name = '{run_name}'"
    elif '"' not in run_name:
        name_filter = f'attributes.run_name = "{run_name}"'
    else:
        runs = experiment_runs(experiment_name, client, order_by=newest_first)
        return next((r for r in runs if r.info.run_name == run_name), None)
    runs = experiment_runs(experiment_name, client, filter_string=name_filter, order_by=newest_first, max_results=1)
    return runs[0] if runs else None


def best_run_by_metric(experiment_name: str, metric: str, client: MlflowClient | None = None) -> Run | None:
    """The FINISHED run with the highest ``metric`` in the experiment, or None."""
    runs = experiment_runs(
        experiment_name,
        client,
        filter_string=f"metrics.`{metric}` >= 0 and attributes.status = 'FINISHED'",
        order_by=[f"metrics.`{metric}` DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def user_tags(run: Run) -> dict[str, str]:
    """The run's tags without MLflow's own ``mlflow.*`` system tags."""
    return {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}


def artifact_paths(run_id: str, client: MlflowClient | None = None, path: str | None = None) -> list[str]:
    """All artifact file paths under ``path`` of a run, recursively."""
    client = client or MlflowClient()
    found: list[str] = []
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            found.extend(artifact_paths(run_id, client, item.path))
        else:
            found.append(item.path)
    return found


def read_artifact_text(artifact_uri: str) -> str | None:
    """Text of one artifact file (``runs:/<id>/path`` or a storage URI), or None; no download progress bar."""
    try:
        with mock.patch.dict(os.environ, QUIET_DOWNLOADS):
            return mlflow.artifacts.load_text(artifact_uri)
    except Exception:  # noqa: BLE001 - a missing file is an answer here, not an error
        return None


def logged_model(run: Run, name: str, client: MlflowClient | None = None) -> Any | None:
    """The MLflow 3 LoggedModel called ``name`` that ``run`` logged, or None.

    MLflow 3.17's Spark flavour still stores the model among the run's artifacts, but
    other flavours (and later versions) record a separate LoggedModel instead.
    """
    client = client or MlflowClient()
    models = client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
    return next((model for model in models if model.name == name), None)


def similar_keys(wanted: str, present: list[str] | set[str] | dict[str, object]) -> list[str]:
    """Keys that look like ``wanted`` but differ only in case or separators (``model-type``, ``ModelType``)."""

    def squash(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    target = squash(wanted)
    return sorted(k for k in present if k != wanted and squash(k) == target)
