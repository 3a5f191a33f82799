"""Verdicts that several lessons' checks share: a run that is missing or unfinished, a param that matches.

Each function returns the learner-facing :class:`~coursekit.checks.CheckResult` (or a plain
answer), so every lesson words the same situation the same way.
"""

from __future__ import annotations

from mlflow.entities import Run, RunStatus

from coursekit.checks import CheckResult, incorrect, not_attempted


def missing_run(experiment: str, run_name: str) -> CheckResult:
    """"Not attempted": the exercise's run does not exist yet, and which cell creates it."""
    return not_attempted(
        f"No run named '{run_name}' in experiment '{experiment}' yet: run the exercise cell "
        f'(it starts one with mlflow.start_run(run_name="{run_name}")).'
    )


def unfinished_run(run: Run) -> CheckResult | None:
    """None for a FINISHED run; otherwise an "incorrect" that says how to finish it."""
    status = run.info.status
    if status == RunStatus.to_string(RunStatus.FINISHED):
        return None
    if status == RunStatus.to_string(RunStatus.RUNNING):
        return incorrect(
            f"Run '{run.info.run_name}' is still RUNNING: open it with `with mlflow.start_run(...)` "
            "so it ends by itself, or call mlflow.end_run() once you are done logging."
        )
    return incorrect(f"Run '{run.info.run_name}' ended as {status}, not FINISHED: fix the error it hit and run the cell again.")


def same_param(given: object, stored: str | None) -> bool:
    """Whether a learner's value equals a param MLflow stored as text (``5``, ``5.0`` and ``"5"`` all match ``"5"``)."""
    if stored is None:
        return False
    try:
        return float(str(given)) == float(stored)
    except ValueError:
        return str(given) == stored
