"""Checks for lesson 6, "Autologging and nested runs: log a whole search".

The checks read the learner's real MLflow store. What ``mlflow.pyspark.ml.autolog`` writes (MLflow 3.17.2,
verified by ``tests/test_notebooks.py`` on the store the solution wrote):

- a run it creates itself carries the tag ``mlflow.autologging = pyspark.ml``; a run the learner opened
  with ``start_run`` and autolog filled does not, but both carry ``estimator_class`` / ``estimator_name``;
- a Pipeline's params are named by stage, ``RandomForestClassifier.numTrees``; a bare forest's ``numTrees``;
- a CrossValidator's child runs carry ``mlflow.parentRunId`` and the metrics ``avg_<metricName>`` and
  ``std_<metricName>``; with ``log_models=True`` the parent also holds ``model/`` and ``best_model/``.
"""

from __future__ import annotations

import logging
import math

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from coursekit.exercises.checks import CheckResult, Exercise, correct, incorrect, is_blank, not_attempted
from coursekit.exercises.store import experiment_runs, find_latest_run
from coursekit.exercises.verdicts import missing_run, run_id_problem, unfinished_run
from coursekit.settings import experiment_name

log = logging.getLogger(__name__)

EXPERIMENT = experiment_name("lesson-06-autolog")
OWN_METRIC_RUN = "ex2-own-metric"
SEARCH_RUN = "ex3-cv-search"
MANUAL_RUN = "ex5-manual-search"
AUTOLOG_TAG = "mlflow.autologging"
AUTOLOG_FLAVOR = "pyspark.ml"
ESTIMATOR_TAG = "estimator_class"
PARENT_TAG = "mlflow.parentRunId"
SEARCH_CLASSES = ("pyspark.ml.tuning.CrossValidator", "pyspark.ml.tuning.TrainValidationSplit")
#: Model folders autolog writes when log_models is left on (a search also writes best_model/).
MODEL_FOLDERS = ("model", "best_model")
TIE = 1e-9
WHY_NO_MODELS = ("turn it on with log_models=False: logging a model on every fit costs time, and the model worth "
                 "keeping is logged once, on purpose")


def children_of(run_id: str, client: MlflowClient | None = None) -> list[Run]:
    """The child runs of ``run_id`` (runs whose ``mlflow.parentRunId`` tag names it), in any experiment."""
    client = client or MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(experiments, filter_string=f"tags.`{PARENT_TAG}` = '{run_id}'", max_results=1000))


def param(run: Run, name: str) -> str | None:
    """A forest setting as autolog or a learner logged it: ``numTrees`` or ``<Stage>.numTrees``."""
    params = run.data.params
    if name in params:
        return params[name]
    return next((v for k, v in sorted(params.items()) if k.endswith(f".{name}") and not k.startswith("best_")), None)


def _model_folder(run_id: str, client: MlflowClient) -> str | None:
    return next((f for f in MODEL_FOLDERS if f in {a.path for a in client.list_artifacts(run_id)}), None)


def _autolog_is_on() -> bool:
    """Whether pyspark.ml autologging is switched on in this process (the learner's kernel)."""
    try:
        from mlflow.utils.autologging_utils import autologging_is_disabled

        return not autologging_is_disabled(AUTOLOG_FLAVOR)
    except Exception:  # noqa: BLE001 - an MLflow without this helper: do not guess
        log.debug("could not read the autologging state", exc_info=True)
        return False


class AutologOneFit(Exercise):
    """q1: autolog on (log_models=False) before fit; the run it made holds the forest's params and a test metric."""

    key = "q1"
    title = "Autolog one fit"
    hints = (
        "Autolog only sees a fit that starts after it is on: call mlflow.pyspark.ml.autolog(...) first, then fit, then evaluate.",
        "mlflow.pyspark.ml.autolog(log_models=False, log_datasets=False, silent=True); auto_model = forest_pipeline().fit(train); "
        "then evaluator.evaluate(auto_model.transform(test)).",
    )
    solution_code = """
mlflow.pyspark.ml.autolog(log_models=False, log_datasets=False, silent=True)
auto_model = forest_pipeline().fit(train)
test_auc = evaluator.evaluate(auto_model.transform(test))
"""

    def evaluate(self, auto_run: object = None) -> CheckResult:
        if is_blank(auto_run):
            if _autolog_is_on():
                return incorrect(
                    "Autolog is on now, but no run recorded a fit: autolog only sees fits that start after it is "
                    "turned on. Put the autolog line first, then run the cell again."
                )
            return not_attempted("No run yet (auto_run is None): un-comment the lines, put them in order and run the cell.")
        run_id = auto_run if isinstance(auto_run, str) else getattr(getattr(auto_run, "info", None), "run_id", None)
        if not isinstance(run_id, str):
            return incorrect(f"auto_run is a {type(auto_run).__name__}: keep the line auto_run = mlflow.last_active_run().")
        client = MlflowClient()
        run = client.get_run(run_id)
        if run.data.tags.get(AUTOLOG_TAG) != AUTOLOG_FLAVOR:
            return incorrect(
                f"The last run, '{run.info.run_name}', was not made by autolog (no {AUTOLOG_TAG} tag): autolog must be "
                "on before fit, and the fit must not run inside a start_run block here."
            )
        if param(run, "numTrees") is None:
            return incorrect(f"Autolog's run '{run.info.run_name}' has no numTrees param: fit forest_pipeline() on train.")
        folder = _model_folder(run.info.run_id, client)
        if folder:
            return incorrect(f"Autolog logged a model ({folder}/) with this fit: {WHY_NO_MODELS}.")
        metrics = run.data.metrics
        if not metrics:
            return incorrect(
                "The run has no metric: evaluate the fitted model with evaluator.evaluate(auto_model.transform(test)); "
                "autolog then logs the result into the model's run."
            )
        if not any(name.endswith("_test") for name in metrics):
            return incorrect(f"The run's metrics are {sorted(metrics)}: score the test rows, auto_model.transform(test).")
        name = min(n for n in metrics if n.endswith("_test"))
        return correct(
            f"Autolog recorded {len(run.data.params)} params of both stages, the estimator class and, when you "
            f"evaluated, {name} = {metrics[name]:.3f}."
        )


class OwnMetricInTheAutologRun(Exercise):
    """q2: one run named ex2-own-metric with autolog's params and the learner's test_auc metric and purpose tag."""

    key = "q2"
    title = "Your metric in autolog's run"
    hints = (
        "Autolog logs into the run that is active when fit starts: open the run first, then fit inside its with block.",
        'with mlflow.start_run(run_name="ex2-own-metric"): fit, then log_metric("test_auc", …) and '
        'set_tag("purpose", "baseline"), all indented inside.',
    )
    solution_code = """
with mlflow.start_run(run_name="ex2-own-metric"):
    own_model = forest_pipeline().fit(train)
    mlflow.log_metric("test_auc", evaluator.evaluate(own_model.transform(test)))
    mlflow.set_tag("purpose", "baseline")
"""

    def evaluate(self) -> CheckResult:
        run = find_latest_run(EXPERIMENT, OWN_METRIC_RUN)
        if run is None:
            return missing_run(EXPERIMENT, OWN_METRIC_RUN)
        unfinished = unfinished_run(run)
        if unfinished:
            return unfinished
        metrics, tags = run.data.metrics, run.data.tags
        if "test_auc" not in metrics:
            return incorrect(f"Run '{OWN_METRIC_RUN}' has no metric test_auc: log it with mlflow.log_metric inside the with block.")
        if ESTIMATOR_TAG not in tags or param(run, "numTrees") is None:
            return incorrect(
                f"Run '{OWN_METRIC_RUN}' holds your test_auc but none of autolog's params: the fit ran outside this run, "
                "so autolog gave it a run of its own (two runs for one fit), or autolog was off. Fit inside the with block."
            )
        if "purpose" not in tags:
            return incorrect(f"Run '{OWN_METRIC_RUN}' has no tag purpose: add mlflow.set_tag(\"purpose\", \"baseline\") inside the with block.")
        value = metrics["test_auc"]
        if not (math.isfinite(value) and 0.5 <= value <= 1.0):
            return incorrect(f"test_auc is {value}: log the AUC the evaluator returns for the test rows.")
        auto = metrics.get("areaUnderROC_test")
        if auto is not None and abs(auto - value) > 1e-6:
            return incorrect(
                f"test_auc ({value:.3f}) differs from autolog's areaUnderROC_test ({auto:.3f}) in the same run: "
                "score own_model.transform(test) with the evaluator."
            )
        folder = _model_folder(run.info.run_id, MlflowClient())
        if folder:
            return incorrect(f"Autolog logged a model ({folder}/) into this run: {WHY_NO_MODELS}.")
        return correct(
            f"One run holds autolog's {len(run.data.params)} params and your test_auc = {value:.3f} and purpose tag: "
            "one fit, one row in the runs table."
        )


def _stray_search(client: MlflowClient, after: int) -> Run | None:
    """A search run autolog created on its own (no start_run around cv.fit) since ``after`` (ms)."""
    found = experiment_runs(
        EXPERIMENT, client, filter_string=f"tags.`{AUTOLOG_TAG}` = '{AUTOLOG_FLAVOR}' and attributes.start_time >= {after}",
        order_by=["attributes.start_time DESC"], max_results=200,
    )
    return next((r for r in found if r.data.tags.get(ESTIMATOR_TAG) in SEARCH_CLASSES and PARENT_TAG not in r.data.tags), None)


class SearchUnderAutolog(Exercise):
    """q3: a CrossValidator over numTrees x maxDepth fitted inside ex3-cv-search: one child run per candidate."""

    key = "q3"
    title = "A whole search in one parent run"
    hints = (
        "Build the grid with .addGrid(forest.numTrees, NUM_TREES_GRID) and .addGrid(forest.maxDepth, MAX_DEPTH_GRID), "
        "then call cv.fit(train) inside the with block.",
        "CrossValidator(estimator=search_pipeline, estimatorParamMaps=grid, evaluator=evaluator, numFolds=NUM_FOLDS, "
        "seed=SEED, parallelism=1); cv_model = cv.fit(train).",
    )
    solution_code = """
with mlflow.start_run(run_name="ex3-cv-search") as search_run:
    grid = (ParamGridBuilder()
            .addGrid(forest.numTrees, NUM_TREES_GRID)
            .addGrid(forest.maxDepth, MAX_DEPTH_GRID)
            .build())
    cv = CrossValidator(estimator=search_pipeline, estimatorParamMaps=grid, evaluator=evaluator,
                        numFolds=NUM_FOLDS, seed=SEED, parallelism=1)
    cv_model = cv.fit(train)
"""

    def evaluate(self) -> CheckResult:
        run = find_latest_run(EXPERIMENT, SEARCH_RUN)
        if run is None:
            return missing_run(EXPERIMENT, SEARCH_RUN)
        client = MlflowClient()
        children = children_of(run.info.run_id, client)
        if not children and not run.data.params:
            stray = _stray_search(client, run.info.start_time)
            if stray is not None:
                return incorrect(
                    f"The search made its own parent run '{stray.info.run_name}': cv.fit ran outside the with block. "
                    f"Indent it under `with mlflow.start_run(run_name=\"{SEARCH_RUN}\")`."
                )
            return not_attempted(
                f"Run '{SEARCH_RUN}' holds nothing yet: un-comment the lines, fill in the blanks and run the cell "
                "(with autolog on, as step 2 left it)."
            )
        unfinished = unfinished_run(run)
        if unfinished:
            return unfinished
        estimator = run.data.tags.get(ESTIMATOR_TAG, "")
        if estimator not in SEARCH_CLASSES:
            what = estimator.rsplit(".", 1)[-1] or "no fit autolog saw"
            return incorrect(f"Run '{SEARCH_RUN}' records {what}, not a search: fit the CrossValidator, cv.fit(train).")
        if not children:
            return incorrect(f"Run '{SEARCH_RUN}' has no child runs: fit the CrossValidator with autolog on.")
        folder = _model_folder(run.info.run_id, client)
        if folder:
            return incorrect(f"Autolog logged a model ({folder}/) with the search: {WHY_NO_MODELS}.")
        for name in ("numTrees", "maxDepth"):
            values = {param(child, name) for child in children}
            if len(values) < 2:
                return incorrect(
                    f"All {len(children)} candidates have the same {name} ({values.pop()}): add it to the grid, "
                    "so the search covers numTrees × maxDepth."
                )
        return correct(
            f"{len(children)} child runs, one per candidate, each with its numTrees and maxDepth and its mean AUC over the folds."
        )


def _avg_metric(runs: list[Run]) -> str | None:
    return min((k for r in runs for k in r.data.metrics if k.startswith("avg_")), default=None)


def _describe(run: Run) -> str:
    return f"numTrees={param(run, 'numTrees')}, maxDepth={param(run, 'maxDepth')}"


class BestChild(Exercise):
    """q4: the id of the child run with the highest mean AUC over the folds."""

    key = "q4"
    title = "Pick the best child"
    hints = (
        "Search the children with filter_string=f\"tags.mlflow.parentRunId = '{search_run.info.run_id}'\", sorted by "
        "the mean AUC over the folds, best first.",
        'order_by=["metrics.avg_areaUnderROC DESC"], max_results=1; then best_child_id = ranked.loc[0, "run_id"].',
    )
    solution_code = """
ranked = mlflow.search_runs(
    experiment_names=[EXPERIMENT],
    filter_string=f"tags.mlflow.parentRunId = '{search_run.info.run_id}'",
    order_by=["metrics.avg_areaUnderROC DESC"],
    max_results=1,
)
best_child_id = ranked.loc[0, "run_id"]
"""

    def evaluate(self, best_child_id: object = None) -> CheckResult:
        if isinstance(best_child_id, Run):
            return incorrect("best_child_id is a whole Run: take its .info.run_id.")
        problem = run_id_problem(best_child_id, "best_child_id", "set it to the run_id of the best child run.",
                                 'use one run_id string, e.g. ranked.loc[0, "run_id"].')
        if problem:
            return problem
        parent = find_latest_run(EXPERIMENT, SEARCH_RUN)
        client = MlflowClient()
        children = children_of(parent.info.run_id, client) if parent else []
        metric = _avg_metric(children)
        if parent is None or metric is None:
            return not_attempted(f"Run '{SEARCH_RUN}' has no child runs with a mean metric yet: finish exercise 3 first.")
        if best_child_id == parent.info.run_id:
            return incorrect(f"That is the parent run '{SEARCH_RUN}' itself: pick one of its children.")
        by_id = {child.info.run_id: child for child in children}
        if best_child_id not in by_id:
            return incorrect(
                f"That id is not a child of the newest '{SEARCH_RUN}' run: filter on "
                f"tags.mlflow.parentRunId = '{parent.info.run_id}' (search_run.info.run_id)."
            )
        scored = [c for c in children if metric in c.data.metrics]
        value = by_id[best_child_id].data.metrics.get(metric, float("nan"))
        top = max(c.data.metrics[metric] for c in scored)
        if abs(value - top) <= TIE:
            return correct(f"{_describe(by_id[best_child_id])} has the best {metric}, {top:.3f}, of {len(children)} candidates.")
        if abs(value - min(c.data.metrics[metric] for c in scored)) <= TIE:
            return incorrect(f"That child has the lowest {metric} ({value:.3f}): sort DESC, best first.")
        spread = metric.replace("avg_", "std_", 1)
        spreads = [c.data.metrics[spread] for c in scored if spread in c.data.metrics]
        mine = by_id[best_child_id].data.metrics.get(spread)
        if mine is not None and spreads and any(abs(mine - edge) <= TIE for edge in (max(spreads), min(spreads))):
            return incorrect(f"{spread} is how much the folds disagree, not how good a candidate is: sort by {metric}.")
        return incorrect(f"That child's {metric} is {value:.3f}, but the best is {top:.3f}: order by metrics.{metric} DESC.")


class NestedByHand(Exercise):
    """q5: ex5-manual-search with one nested child per candidate, each with numTrees, maxDepth and AUC, autolog off."""

    key = "q5"
    title = "Nested runs by hand"
    hints = (
        "Inside the parent's with block, start each candidate's run with mlflow.start_run(run_name=..., nested=True).",
        "nested=True makes the child; inside it log_params({'numTrees': …, 'maxDepth': …}) and log_metric('AUC', …). "
        "Switch autolog off first: mlflow.pyspark.ml.autolog(disable=True).",
    )
    solution_code = """
with mlflow.start_run(run_name="ex5-manual-search") as manual_parent:
    for num_trees in NUM_TREES_GRID:
        for max_depth in MAX_DEPTH_GRID:
            with mlflow.start_run(run_name=f"trees={num_trees} depth={max_depth}", nested=True):
                model = forest_pipeline(num_trees, max_depth).fit(train)
                mlflow.log_params({"numTrees": num_trees, "maxDepth": max_depth})
                mlflow.log_metric("AUC", evaluator.evaluate(model.transform(test)))
"""

    def evaluate(self) -> CheckResult:
        parent = find_latest_run(EXPERIMENT, MANUAL_RUN)
        if parent is None:
            return missing_run(EXPERIMENT, MANUAL_RUN)
        client = MlflowClient()
        children = children_of(parent.info.run_id, client)
        if not children:
            return self._no_children(parent, client)
        for run in (parent, *children):
            unfinished = unfinished_run(run)
            if unfinished:
                return unfinished
        if any(ESTIMATOR_TAG in c.data.tags for c in children):
            return incorrect(
                "Autolog was still on: it added the pipeline's params and estimator tags to your child runs. "
                "Switch it off first with mlflow.pyspark.ml.autolog(disable=True)."
            )
        for child in children:
            missing = [p for p in ("numTrees", "maxDepth") if p not in child.data.params]
            if missing:
                return incorrect(f"Child run '{child.info.run_name}' has no param {missing[0]}: log numTrees and maxDepth in each child.")
            auc = child.data.metrics.get("AUC")
            if auc is None or not (math.isfinite(auc) and 0.0 <= auc <= 1.0):
                return incorrect(f"Child run '{child.info.run_name}' has no AUC between 0 and 1: log the test AUC in each child.")
        if len(children) < 2:
            return incorrect(f"'{MANUAL_RUN}' has a single child: start one nested run per candidate, inside the loop.")
        best = max(children, key=lambda c: c.data.metrics["AUC"])
        return correct(
            f"{len(children)} children under one parent; the best, {best.info.run_name}, has AUC {best.data.metrics['AUC']:.3f}. "
            "In the runs table they fold under the parent."
        )

    @staticmethod
    def _no_children(parent: Run, client: MlflowClient) -> CheckResult:
        later = experiment_runs(EXPERIMENT, client, filter_string=f"attributes.start_time >= {parent.info.start_time}", max_results=200)
        stray = [r for r in later if r.info.run_id != parent.info.run_id and "numTrees" in r.data.params]
        if stray:
            other = stray[0].data.tags.get(PARENT_TAG)
            if other:
                name = client.get_run(other).info.run_name
                return incorrect(f"Your candidates are children of '{name}', not of '{MANUAL_RUN}': start them inside its with block.")
            return incorrect(
                f"{len(stray)} candidate run(s) were logged after '{MANUAL_RUN}' started, but not nested under it: "
                "start each with mlflow.start_run(..., nested=True) inside the parent's with block."
            )
        return not_attempted(f"Run '{MANUAL_RUN}' has no child runs yet: un-comment the lines, fill in the blank and run the cell.")


q1 = AutologOneFit()
q2 = OwnMetricInTheAutologRun()
q3 = SearchUnderAutolog()
q4 = BestChild()
q5 = NestedByHand()
