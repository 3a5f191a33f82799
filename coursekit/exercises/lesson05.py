"""Checks for lesson 5, "Tune interactively, log every attempt"."""

from __future__ import annotations

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from coursekit.exercises.checks import CheckResult, Exercise, correct, incorrect, is_blank, not_attempted
from coursekit.exercises.store import artifact_paths, experiment_runs
from coursekit.exercises.verdicts import run_id_problem, same_param
from coursekit.settings import experiment_name
from coursekit.tuning import SOURCE, SOURCE_TAG, ForestParams

EXPERIMENT = experiment_name("lesson-05-tune")
TARGET_AUC = 0.84
SETTINGS = tuple(ForestParams.__dataclass_fields__)


def attempts(client: MlflowClient | None = None) -> list[Run]:
    """Finished tuning attempts of the lesson, best AUC first."""
    return experiment_runs(
        EXPERIMENT,
        client,
        filter_string=f"tags.{SOURCE_TAG} = '{SOURCE}' and attributes.status = 'FINISHED'",
        order_by=["metrics.AUC DESC", "attributes.start_time ASC"],
    )


def _no_attempts() -> CheckResult:
    return not_attempted(f"No tuning attempt in '{EXPERIMENT}' yet: run the cells of step 1, then press Train & log.")


class BeatTheTarget(Exercise):
    """q1: an attempt whose AUC is above TARGET_AUC."""

    key = "q1"
    title = f"Beat AUC {TARGET_AUC}"
    hints = (
        "Change one setting at a time and watch the plot of AUC against it; shallower trees are a good start.",
        "Try maxDepth 3–4 with 50+ trees and featureSubsetStrategy 'sqrt' or 'log2'.",
    )
    solution_code = """
attempt = tuner.train_and_log(ForestParams(numTrees=60, maxDepth=3, featureSubsetStrategy="sqrt"))
winning_run_id = attempt.run_id
"""

    def evaluate(self, winning_run_id: object = None) -> CheckResult:
        problem = run_id_problem(winning_run_id, "winning_run_id", "set it to the run_id of an attempt that beats the target.",
                                 "use the run_id string of one attempt.")
        if problem:
            return problem
        runs = {r.info.run_id: r for r in attempts()}
        if not runs:
            return _no_attempts()
        if winning_run_id not in runs:
            return incorrect("That id is not a finished tuning attempt of this lesson: copy run_id from tuner.leaderboard().")
        auc = runs[winning_run_id].data.metrics["AUC"]
        if auc <= TARGET_AUC:
            best = max(r.data.metrics["AUC"] for r in runs.values())
            return incorrect(f"That attempt has AUC {auc:.3f}, not above {TARGET_AUC} (your best so far: {best:.3f}). Keep trying.")
        return correct(f"AUC {auc:.3f} beats {TARGET_AUC}.")


class BestParams(Exercise):
    """q2: the six settings of the best attempt, read from the store."""

    key = "q2"
    title = "Best settings from the store"
    hints = (
        "Filter on tags.source = 'tuning-panel', order by metrics.AUC DESC, keep one row.",
        "{name: best.loc[0, f'params.{name}'] for name in SETTINGS}",
    )
    solution_code = """
best = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string="tags.source = 'tuning-panel' and attributes.status = 'FINISHED'",
                          order_by=["metrics.AUC DESC"], max_results=1)
best_params = {name: best.loc[0, f"params.{name}"] for name in SETTINGS}
"""

    def evaluate(self, best_params: object = None) -> CheckResult:
        if is_blank(best_params):
            return not_attempted("best_params is still blank: set it to a dict of the six settings.")
        if not isinstance(best_params, dict):
            return incorrect(f"best_params is a {type(best_params).__name__}; make it a dict like {{'numTrees': '50', ...}}.")
        runs = attempts()
        if not runs:
            return _no_attempts()
        names = {str(k).removeprefix("params.") for k in best_params}
        missing = [s for s in SETTINGS if s not in names]
        if missing:
            return incorrect(f"best_params has no {missing[0]!r}: include all six settings {', '.join(SETTINGS)}.")
        given = {str(k).removeprefix("params."): v for k, v in best_params.items()}
        top_auc = runs[0].data.metrics["AUC"]
        tied = [r for r in runs if abs(r.data.metrics["AUC"] - top_auc) < 1e-9]
        for run in tied:
            if all(same_param(given[s], run.data.params.get(s)) for s in SETTINGS):
                return correct(f"These settings scored AUC {top_auc:.3f}, the best attempt so far.")
        best = runs[0].data.params
        wrong = next(s for s in SETTINGS if not same_param(given[s], best.get(s)))
        return incorrect(
            f"{wrong} is {given[wrong]!r}, but the best attempt used {best.get(wrong)!r}: "
            "did you order by metrics.AUC DESC and read the first row?"
        )


class BestModelLogged(Exercise):
    """q3: the best attempt's run holds its Spark model under rf_model."""

    key = "q3"
    title = "Log the best attempt's model"
    hints = (
        "Press 'Log model for the best attempt', or call panel.log_best_model().",
        "It writes rf_model into the best attempt's own run; if you made a better attempt since, log again.",
    )
    solution_code = "panel.log_best_model()"

    def evaluate(self) -> CheckResult:
        runs = attempts()
        if not runs:
            return _no_attempts()
        with_model = [r for r in runs if "rf_model/MLmodel" in artifact_paths(r.info.run_id, path="rf_model")]
        if not with_model:
            return not_attempted("No attempt has a logged model yet: press 'Log model for the best attempt'.")
        best = runs[0]
        top_auc = best.data.metrics["AUC"]
        if not any(abs(r.data.metrics["AUC"] - top_auc) < 1e-9 for r in with_model):
            return incorrect(
                f"A model is logged for an attempt with AUC {with_model[0].data.metrics['AUC']:.3f}, but your best attempt "
                f"now has {top_auc:.3f}: log the model of the current best."
            )
        winner = next(r for r in with_model if abs(r.data.metrics["AUC"] - top_auc) < 1e-9)
        files = artifact_paths(winner.info.run_id, path="rf_model")
        if not any(f.startswith("rf_model/sparkml/") for f in files):
            return incorrect("rf_model is not a Spark model: log it with mlflow.spark.log_model.")
        return correct("The best attempt's run now holds its model, ready for the registry (lesson 7).")


q1 = BeatTheTarget()
q2 = BestParams()
q3 = BestModelLogged()
