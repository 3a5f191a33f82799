"""What the exercise tests share: a lesson's experiment made active, runs logged with the real fluent API,
and assertions on a check's verdict (``from store_helpers import log_run, assert_incorrect``)."""

from __future__ import annotations

import mlflow

from coursekit import Outcome, tracking
from coursekit.exercises.lesson07 import MODEL_NAME


def use_experiment(name: str) -> str:
    """The experiment ``name``, created the course's way and made active; returns its id."""
    experiment_id = tracking.ensure_experiment(name)
    mlflow.set_experiment(name)
    return experiment_id


def log_run(run_name=None, *, params=None, tags=None, metrics=None, artifacts=(), texts=None, dicts=None,
            status="FINISHED", nested=False):
    """One run built with the real fluent API; ``status=None`` leaves it RUNNING. Returns its id.

    ``metrics`` go in one log_metrics call; ``artifacts`` are paths written with a placeholder text,
    ``texts`` maps paths to their text and ``dicts`` paths to a dict written with log_dict.
    """
    run = mlflow.start_run(run_name=run_name, nested=nested)
    if params:
        mlflow.log_params(params)
    if tags:
        mlflow.set_tags(tags)
    if metrics:
        mlflow.log_metrics(metrics)
    for path in artifacts:
        mlflow.log_text("fake artifact", path)
    for path, text in (texts or {}).items():
        mlflow.log_text(text, path)
    for path, value in (dicts or {}).items():
        mlflow.log_dict(value, path)
    if status:
        mlflow.end_run(status=status)
    return run.info.run_id


def assert_outcome(result, outcome, *words):
    """The check's verdict is ``outcome`` and its message names every one of ``words``."""
    assert result.outcome is outcome, result
    for word in words:
        assert word in result.message, f"{word!r} not in {result.message!r}"


def assert_incorrect(result, *words):
    assert_outcome(result, Outcome.INCORRECT, *words)


def assert_not_attempted(result, *words):
    assert_outcome(result, Outcome.NOT_ATTEMPTED, *words)


def set_aliases(client, **aliases):
    """Point each alias of the course's registered model at a version number (lessons 7 and 8)."""
    for alias, version in aliases.items():
        client.set_registered_model_alias(MODEL_NAME, alias, str(version))
