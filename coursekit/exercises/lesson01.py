"""Checks for lesson 1, "Log your first run".

Each check reads the learner's real MLflow store: the latest run with the
exercise's run name in the lesson's experiment.
"""

from __future__ import annotations

import math

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from coursekit.exercises.checks import CheckResult, Exercise, correct, incorrect, not_attempted
from coursekit.exercises.store import artifact_paths, find_latest_run, logged_model, similar_keys, user_tags
from coursekit.exercises.verdicts import (
    DELETE_HOW,
    HELD_OUT,
    NO_MATCH,
    missing_run,
    not_a_result,
    rows_scored,
    run_id_problem,
    run_in,
    still_blank,
    unfinished_run,
)
from coursekit.settings import experiment_name

EXPERIMENT = experiment_name("lesson-01-first-run")
PARAMS_RUN = "ex1-params"
TAGS_RUN = "ex2-tags"
METRIC_RUN = "ex3-auc"
MODEL_RUN = "ex5-model"
MODEL_PATH = "rf_model"
# Names learners often use for the same number (compared lower-case, without underscores).
AUC_ALIASES = {"auc", "areaunderroc", "rocauc", "aucroc", "valauc", "testauc"}
# The name learners type when they quote the variable instead of using it: {"user": "LEARNER"}.
LEARNER_VARIABLE = "LEARNER"
MODEL_PARAMS = ("model_type", "numTrees", "maxDepth")


def _auc_problem(run: Run, then: str) -> CheckResult | None:
    """An "incorrect" when the run's AUC is not its model's AUC on the test rows (re-scored from its params), else None."""
    rows, params = rows_scored(run), run.data.params
    if rows == NO_MATCH and "seed" in params:  # the starter logs the seed: the model is fully described
        return incorrect(
            f"AUC {run.data.metrics['AUC']:.3f} is not what the pipeline with these params (numTrees={params['numTrees']}, "
            f"maxDepth={params['maxDepth']}, seed={params['seed']}) scores on the test rows: log the number "
            "evaluator.evaluate(model.transform(test)) returns, not a typed-in one or another model's."
        )
    if rows in (None, HELD_OUT, NO_MATCH):
        return None
    return incorrect(f"{_leak_message(run, rows)} {then}")


def _leak_message(run: Run, rows: str) -> str:
    return (
        f"The AUC of run '{run.info.run_name}' ({run.data.metrics['AUC']:.3f}) was computed on {rows}: the forest has "
        "seen those rows, so it scores them far better than new patients. Score the held-out rows, "
        "model.transform(test)."
    )


def _missing_key(kind: str, wanted: str, present: dict[str, str]) -> CheckResult:
    near = similar_keys(wanted, present)
    if near:
        return incorrect(
            f"Found {kind} {near[0]!r}, but the exercise asks for {wanted!r}: MLflow keys are "
            "case-sensitive and exact, so these are two different keys."
        )
    how = {"param": "mlflow.log_param", "tag": "mlflow.set_tag", "metric": "mlflow.log_metric"}[kind]
    return incorrect(f"{kind.capitalize()} {wanted!r} is missing from the run: log it with {how}.")


class LogParams(Exercise):
    """q1: log ``model_type`` with log_param and the tree settings with log_params."""

    key = "q1"
    title = "Log parameters"
    hints = (
        'Inside `with mlflow.start_run(run_name="ex1-params"):`, call mlflow.log_param once and mlflow.log_params once.',
        'mlflow.log_param("model_type", "RandomForest") logs one key; mlflow.log_params({...}) takes a dict.',
        "The dict holds the two tree settings under the names Spark uses: numTrees and maxDepth.",
    )
    solution_code = """
with mlflow.start_run(run_name="ex1-params"):
    mlflow.log_param("model_type", "RandomForest")
    mlflow.log_params({"numTrees": NUM_TREES, "maxDepth": MAX_DEPTH})
"""

    def evaluate(self) -> CheckResult:
        run = find_latest_run(EXPERIMENT, PARAMS_RUN)
        if run is None:
            return missing_run(EXPERIMENT, PARAMS_RUN)
        params = run.data.params
        as_tags = sorted(set(user_tags(run)) & {"model_type", "numTrees", "maxDepth"})
        if as_tags and not params:
            return incorrect(
                f"{as_tags[0]!r} was set as a tag. Settings of the model are params: use mlflow.log_param / mlflow.log_params."
            )
        if not params:
            return not_attempted(f"Run '{PARAMS_RUN}' exists but has no params yet: fill in the blanks and run the cell again.")
        problem = still_blank(params, "Param") or unfinished_run(run)
        if problem:
            return problem
        for name in ("model_type", "numTrees", "maxDepth"):
            if name not in params:
                return _missing_key("param", name, params)
        if params["model_type"] != "RandomForest":
            return incorrect(
                f"Param model_type is {params['model_type']!r}; use the Spark estimator's name, "
                "spelled exactly as its class: RandomForest."
            )
        for name in ("numTrees", "maxDepth"):
            if not params[name].isdigit():
                return incorrect(f"Param {name} is {params[name]!r}; log the whole number you would pass to Spark.")
        return correct("MLflow stores every param as a string, so numTrees comes back as text.")


class SetTags(Exercise):
    """q2: tag a run with ``env`` and ``user``."""

    key = "q2"
    title = "Tag a run"
    hints = (
        "Tags are labels for finding runs later; they are set with mlflow.set_tag or mlflow.set_tags, not log_param.",
        'mlflow.set_tags({"env": "dev", "user": LEARNER}) sets both at once.',
    )
    solution_code = """
with mlflow.start_run(run_name="ex2-tags"):
    mlflow.set_tags({"env": "dev", "user": LEARNER})
"""

    def evaluate(self) -> CheckResult:
        run = find_latest_run(EXPERIMENT, TAGS_RUN)
        if run is None:
            return missing_run(EXPERIMENT, TAGS_RUN)
        tags = user_tags(run)
        params = run.data.params
        if not tags and not params:
            return not_attempted(f"Run '{TAGS_RUN}' exists but has no tags yet: fill in the blanks and run the cell again.")
        problem = still_blank({**params, **tags}) or unfinished_run(run)
        if problem:
            return problem
        for name in ("env", "user"):
            if name not in tags:
                if name in params:
                    return incorrect(
                        f"{name!r} was logged as a param. Params describe the model; labels like {name!r} "
                        "are tags: use mlflow.set_tag or mlflow.set_tags."
                    )
                return _missing_key("tag", name, tags)
        if tags["env"] != "dev":
            return incorrect(f"Tag env is {tags['env']!r}; this exercise runs in the 'dev' environment.")
        if not tags["user"].strip() or tags["user"] == "____":
            return incorrect("Tag user is empty: set it to your name (the LEARNER parameter).")
        if tags["user"].strip().strip("'\"{}") == LEARNER_VARIABLE:  # "LEARNER", or "{LEARNER}" without the f
            return incorrect(
                f"Tag user is the text {tags['user']!r}, the variable's name in quotes: write LEARNER without "
                "quotes, so the tag gets the variable's value (your name)."
            )
        return correct("In the MLflow UI you can now filter with tags.env = 'dev'.")


class LogAuc(Exercise):
    """q3: train the pipeline, evaluate it, and log ``AUC``."""

    key = "q3"
    title = "Train, evaluate and log AUC"
    hints = (
        "Log the two tree params, fit the pipeline on `train`, score `test`, and log the evaluator's number.",
        'auc = evaluator.evaluate(model.transform(test)), then mlflow.log_metric("AUC", auc).',
        "The metric name is exactly AUC (capital letters), the name the next lessons search for.",
    )
    solution_code = """
with mlflow.start_run(run_name="ex3-auc"):
    mlflow.log_params({"model_type": "RandomForest", "numTrees": NUM_TREES, "maxDepth": MAX_DEPTH, "seed": SEED})
    model = pipeline.fit(train)
    auc = evaluator.evaluate(model.transform(test))
    mlflow.log_metric("AUC", auc)
"""

    def evaluate(self) -> CheckResult:
        run = find_latest_run(EXPERIMENT, METRIC_RUN)
        if run is None:
            return missing_run(EXPERIMENT, METRIC_RUN)
        metrics = run.data.metrics
        params = run.data.params
        if "AUC" in params and "AUC" not in metrics:
            return incorrect("AUC was logged as a param: results go in metrics, with mlflow.log_metric.")
        if not metrics:
            return not_attempted(f"Run '{METRIC_RUN}' has no metric yet: un-comment the lines, fill in the blanks and run the cell again.")
        unfinished = unfinished_run(run)
        if unfinished:
            return unfinished
        if "AUC" not in metrics:
            alias = sorted(k for k in metrics if k.lower().replace("_", "") in AUC_ALIASES)
            if alias and not similar_keys("AUC", metrics):
                return incorrect(
                    f"Found metric {alias[0]!r}, but the exercise asks for 'AUC': metric names are exact, "
                    "and later lessons search for metrics.AUC."
                )
            return _missing_key("metric", "AUC", {k: str(v) for k, v in metrics.items()})
        auc = metrics["AUC"]
        if not math.isfinite(auc) or not 0.0 <= auc <= 1.0:
            return incorrect(f"AUC is {auc}, outside 0…1: log the number the evaluator returns, unchanged.")
        if auc < 0.5:
            return incorrect(
                f"AUC is {auc:.3f}, worse than a coin toss (0.5): check that the evaluator's labelCol is the "
                "label column and that you scored model.transform(test)."
            )
        for name in ("numTrees", "maxDepth"):
            if name not in params:
                return incorrect(
                    f"AUC is logged, but param {name!r} is missing: without it you cannot tell later which settings gave this AUC."
                )
        problem = _auc_problem(run, "Then run the cell again, and delete this run (the cell under 'Retries leave runs "
                               "behind' does it), or it stays first in every sort by AUC.")
        if problem:
            return problem
        return correct(f"AUC = {auc:.3f} is now searchable: metrics.AUC > {math.floor(auc * 20) / 20:.2f} finds this run.")


class FindBestRun(Exercise):
    """q4: use ``mlflow.search_runs`` to find the run with the highest AUC."""

    key = "q4"
    title = "Find the best run"
    hints = (
        "mlflow.search_runs returns a pandas DataFrame with one row per run and a column metrics.AUC.",
        'Pass experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"] and max_results=1, then read the run_id column.',
        "If the top run is one a check rejected (a retry you no longer want), delete it with mlflow.delete_run(run_id), then search again.",
    )
    solution_code = """
best = mlflow.search_runs(
    experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=1
)
best_run_id = best.loc[0, "run_id"]
"""

    def evaluate(self, best_run_id: object = None) -> CheckResult:
        problem = run_id_problem(best_run_id, "best_run_id", "set it to the run_id of the run with the highest AUC.",
                                 "take one value from the run_id column, for example best.loc[0, 'run_id'].")
        if problem:
            return problem
        client = MlflowClient()
        run = run_in(EXPERIMENT, str(best_run_id), f"search only experiment_names=[{EXPERIMENT!r}].", client)
        if isinstance(run, CheckResult):
            return run
        if "AUC" not in run.data.metrics:
            return incorrect("That run has no AUC metric: order by metrics.AUC DESC so runs with an AUC come first.")
        retired = not_a_result(run)
        if retired:
            return retired
        auc = run.data.metrics["AUC"]
        why = rejected_auc(run)
        if why:
            return incorrect(
                f"You picked '{run.info.run_name}' (AUC {auc:.3f}), but its AUC {why}, so exercise 3 rejects it: "
                f"{DELETE_HOW}, then search again."
            )
        top, rejected = best_scored_run(client, run.info.experiment_id)
        if top is None:
            return incorrect("No FINISHED run of the experiment has an AUC scored on the test rows yet: finish exercise 3 first.")
        top_auc = top.data.metrics["AUC"]
        if auc < top_auc - 1e-9:
            return incorrect(
                f"That run's AUC is {auc:.3f}, but another run in the experiment reaches {top_auc:.3f}: sort by "
                "metrics.AUC in descending order."
            )
        note = ""
        if rejected:
            leak, why = rejected[0]
            note = f" Run '{leak.info.run_name}' shows a higher AUC ({leak.data.metrics['AUC']:.3f}), but its AUC {why}: {DELETE_HOW}."
        return correct(f"The best run so far has AUC {top_auc:.3f}.{note}")


def best_scored_run(client: MlflowClient, experiment_id: str, limit: int = 20) -> tuple[Run | None, list[tuple[Run, str]]]:
    """The FINISHED run with the highest AUC that exercise 3 accepts, and the runs above it with why each is rejected.

    Each run above the answer is re-scored (one cached fit per distinct numTrees/maxDepth); only the
    ``limit`` best runs are looked at.
    """
    runs = client.search_runs(
        [experiment_id],
        filter_string="metrics.AUC >= 0 and attributes.status = 'FINISHED'",
        order_by=["metrics.AUC DESC"],
        max_results=limit,
    )
    rejected: list[tuple[Run, str]] = []
    for run in runs:
        why = rejected_auc(run)
        if why is None:
            return run, rejected
        rejected.append((run, why))
    return None, rejected


def rejected_auc(run: Run) -> str | None:
    """Why exercise 3 would reject the run's AUC ("was computed on the training rows, …"), or None."""
    rows = rows_scored(run)
    if rows == NO_MATCH and "seed" in run.data.params:
        return "is not what its own params give on the test rows (a typed-in number, or another model's)"
    if rows in (None, HELD_OUT, NO_MATCH):
        return None
    return f"was computed on {rows}, not on the held-out test rows"


class LogModel(Exercise):
    """q5: log the fitted pipeline with the Spark flavour under ``rf_model``."""

    key = "q5"
    title = "Log the Spark model"
    hints = (
        'spark_flavor.log_model(model, "rf_model", pip_requirements=PIP_REQUIREMENTS): the second argument is the artifact path '
        "(spark_flavor is mlflow.spark itself; over Spark Connect, the kit's stand-in).",
        "Pass pip_requirements explicitly: otherwise MLflow starts a second Spark in a subprocess to guess them (~15 s).",
        "Keep the log_params line: a model without the settings that built it cannot be re-trained or compared.",
    )
    solution_code = """
with mlflow.start_run(run_name="ex5-model"):
    mlflow.log_params({"model_type": "RandomForest", "numTrees": NUM_TREES, "maxDepth": MAX_DEPTH, "seed": SEED})
    mlflow.log_metric("AUC", evaluator.evaluate(model.transform(test)))
    spark_flavor.log_model(model, "rf_model", pip_requirements=PIP_REQUIREMENTS)
"""

    def evaluate(self) -> CheckResult:
        run = find_latest_run(EXPERIMENT, MODEL_RUN)
        if run is None:
            return missing_run(EXPERIMENT, MODEL_RUN)
        unfinished = unfinished_run(run)
        files = artifact_paths(run.info.run_id)
        if not files and not run.data.metrics:
            return not_attempted(f"Run '{MODEL_RUN}' exists but has no model yet: fill in the blanks and run the cell again.")
        if unfinished:
            return unfinished
        if f"{MODEL_PATH}/MLmodel" not in files and _logged_model_flavors(run) is not None:
            files = files + [f"{MODEL_PATH}/MLmodel"]
            if "spark" in (_logged_model_flavors(run) or set()):
                files.append(f"{MODEL_PATH}/sparkml/")
        if f"{MODEL_PATH}/MLmodel" not in files:
            others = sorted({f.rsplit("/", 1)[0] for f in files if f.endswith("/MLmodel")})
            if others:
                return incorrect(f"A model was logged under {others[0]!r}; the exercise asks for the artifact path {MODEL_PATH!r}.")
            return incorrect(f"No model under {MODEL_PATH!r} in this run: call mlflow.spark.log_model(model, {MODEL_PATH!r}, ...).")
        if not any(f.startswith(f"{MODEL_PATH}/sparkml/") for f in files):
            return incorrect(f"{MODEL_PATH!r} is not a Spark model: log it with mlflow.spark.log_model, not another flavour.")
        if "AUC" not in run.data.metrics:
            return incorrect("The model is logged, but the run has no AUC metric: log it next to the model so runs can be compared.")
        params = run.data.params
        for name in MODEL_PARAMS:
            if name not in params:
                if name in user_tags(run):
                    return incorrect(f"{name!r} was set as a tag: settings of the model are params (mlflow.log_params).")
                return incorrect(
                    f"The model is logged, but param {name!r} is missing: keep the mlflow.log_params line, so anyone can "
                    "see (and re-train) the settings that built this model."
                )
        problem = _auc_problem(run, "Log that AUC next to the model and run the cell again.")
        if problem:
            return problem
        return correct("The model, its settings, its MLmodel file and its requirements are stored with the run.")


def _logged_model_flavors(run: Run) -> set[str] | None:
    """Flavours of a model named ``rf_model`` logged as an MLflow 3 LoggedModel by this run, if any."""
    from mlflow.models import get_model_info

    model = logged_model(run, MODEL_PATH)
    return None if model is None else set(get_model_info(f"models:/{model.model_id}").flavors)


q1 = LogParams()
q2 = SetTags()
q3 = LogAuc()
q4 = FindBestRun()
q5 = LogModel()
