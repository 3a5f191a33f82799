"""Read-only questions the checks ask of the MLflow store."""

from __future__ import annotations

from mlflow.entities import Run
from mlflow.tracking import MlflowClient


def find_latest_run(experiment_name: str, run_name: str, client: MlflowClient | None = None) -> Run | None:
    """The most recently started run called ``run_name`` in ``experiment_name``, or None."""
    client = client or MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return None
    # MLflow's filter language has no escape character: quote with whichever quote the name lacks.
    if "'" not in run_name:
        name_filter = f"attributes.run_name = '{run_name}'"
    elif '"' not in run_name:
        name_filter = f'attributes.run_name = "{run_name}"'
    else:
        runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
        return next((r for r in runs if r.info.run_name == run_name), None)
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=name_filter, order_by=["attributes.start_time DESC"], max_results=1
    )
    return runs[0] if runs else None


def best_run_by_metric(experiment_name: str, metric: str, client: MlflowClient | None = None) -> Run | None:
    """The FINISHED run with the highest ``metric`` in the experiment, or None."""
    client = client or MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
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


def similar_keys(wanted: str, present: list[str] | set[str] | dict[str, object]) -> list[str]:
    """Keys that look like ``wanted`` but differ only in case or separators (``model-type``, ``ModelType``)."""

    def squash(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    target = squash(wanted)
    return sorted(k for k in present if k != wanted and squash(k) == target)
