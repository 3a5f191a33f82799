"""Checks for lesson 4, "Compare runs".

The lesson logs a seeded grid of RandomForest runs; every check computes the
right answer from the learner's own store, so it stays correct whatever grid
or data split they used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from coursekit.exercises.checks import CheckResult, Exercise, correct, incorrect, is_blank, not_attempted
from coursekit.exercises.store import experiment_runs
from coursekit.exercises.verdicts import DELETE_HOW, run_id_problem
from coursekit.settings import experiment_name

EXPERIMENT = experiment_name("lesson-04-compare-runs")
GRID_TAG = "grid"
GRID_VALUE = "numTrees x maxDepth"
Q1_TREES = "20"
Q3_MIN_AUC = 0.8
Q3_DEPTH = "5"


def grid_runs(client: MlflowClient | None = None) -> list[Run]:
    """The FINISHED grid runs of the lesson (tagged ``grid``), best AUC first."""
    runs = experiment_runs(
        EXPERIMENT,
        client,
        filter_string=f"tags.{GRID_TAG} = '{GRID_VALUE}' and attributes.status = 'FINISHED'",
        order_by=["metrics.AUC DESC"],
    )
    return [r for r in runs if "AUC" in r.data.metrics]


def _no_grid() -> CheckResult:
    return not_attempted(f"No grid runs in experiment '{EXPERIMENT}' yet: run the grid cell of step 1 first.")


def stray_run(run_ids: Iterable[object], client: MlflowClient | None = None) -> str | None:
    """"run '<name>', which …": the first of ``run_ids`` in the lesson's experiment that no check counts, or None.

    A retry, a hand-made run or an interrupted grid cell leaves such runs behind; an unfiltered
    search_runs still finds them, so the hint names the run and how to get rid of it.
    """
    client = client or MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    counted = {r.info.run_id for r in grid_runs(client)}
    for run_id in run_ids:
        if experiment is None or not isinstance(run_id, str) or run_id in counted:
            continue
        try:
            run = client.get_run(run_id)
        except MlflowException:
            continue
        if run.info.experiment_id != experiment.experiment_id:
            continue
        if run.info.lifecycle_stage == "deleted":
            why = "was deleted"
        elif run.data.tags.get(GRID_TAG) != GRID_VALUE:
            why = f"is not a grid run (it lacks the tag {GRID_TAG} = '{GRID_VALUE}')"
        elif run.info.status != "FINISHED":
            why = f"is a grid run that did not finish ({run.info.status})"
        else:
            why = "has no AUC"
        return (
            f"run '{run.info.run_name}', which {why}, so the checks leave it out: {DELETE_HOW}, or add "
            f"tags.{GRID_TAG} = '{GRID_VALUE}' and attributes.status = 'FINISHED' to your filter_string."
        )
    return None


def _describe(run: Run) -> str:
    p = run.data.params
    return f"'{run.info.run_name}' (numTrees={p.get('numTrees')}, maxDepth={p.get('maxDepth')}, AUC={run.data.metrics.get('AUC', float('nan')):.3f})"


class BestWithTwentyTrees(Exercise):
    """q1: the best run among those with numTrees = 20, found with filter_string + order_by."""

    key = "q1"
    title = "Best run with 20 trees"
    hints = (
        "Params are stored as strings, so the filter compares text: params.numTrees = '20' (with quotes).",
        "mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=..., order_by=['metrics.AUC DESC'], max_results=1)",
    )
    solution_code = """
best20 = mlflow.search_runs(
    experiment_names=[EXPERIMENT],
    filter_string="params.numTrees = '20'",
    order_by=["metrics.AUC DESC"],
    max_results=1,
)
best20_id = best20.loc[0, "run_id"]
"""

    def evaluate(self, best20_id: object = None) -> CheckResult:
        problem = run_id_problem(best20_id, "best20_id", "set it to the run_id of the best run with numTrees = 20.",
                                 "take one string from the run_id column.")
        if problem:
            return problem
        runs = grid_runs()
        if not runs:
            return _no_grid()
        by_id = {r.info.run_id: r for r in runs}
        stray = stray_run([best20_id])
        if stray:
            return incorrect(f"{best20_id!r} is not one of this lesson's grid runs: your search found {stray}")
        if best20_id not in by_id:
            return incorrect(f"{best20_id!r} is not one of this lesson's grid runs: search experiment_names=[EXPERIMENT].")
        chosen = by_id[best20_id]
        candidates = [r for r in runs if r.data.params.get("numTrees") == Q1_TREES]
        if not candidates:
            return incorrect("The grid has no run with numTrees = 20: keep 20 in NUM_TREES_GRID and re-run the grid.")
        if chosen.data.params.get("numTrees") != Q1_TREES:
            return incorrect(f"You picked {_describe(chosen)}, which does not have 20 trees: add the filter params.numTrees = '20'.")
        best = candidates[0]
        if chosen.data.metrics["AUC"] < best.data.metrics["AUC"] - 1e-9:
            return incorrect(f"{_describe(chosen)} has 20 trees, but a 20-tree run scores higher: order by metrics.AUC DESC.")
        return correct(f"Best with 20 trees: {_describe(best)}.")


class TopThree(Exercise):
    """q2: the three best runs as a DataFrame, best first."""

    key = "q2"
    title = "Top three runs"
    hints = (
        "search_runs can sort and cut for you: order_by and max_results.",
        "mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=['metrics.AUC DESC'], max_results=3)",
    )
    solution_code = """
top3 = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=3)
"""

    def evaluate(self, top3: object = None) -> CheckResult:
        import pandas as pd

        if is_blank(top3):
            return not_attempted("top3 is still blank: set it to the DataFrame search_runs returns.")
        if not isinstance(top3, pd.DataFrame):
            return incorrect(f"top3 is a {type(top3).__name__}, not the pandas DataFrame mlflow.search_runs returns.")
        runs = grid_runs()
        if not runs:
            return _no_grid()
        if "run_id" not in top3.columns:
            return incorrect("top3 has no run_id column: keep the DataFrame search_runs returns, not a selection of its columns.")
        if len(top3) != 3:
            return incorrect(f"top3 has {len(top3)} rows; ask search_runs for exactly three with max_results=3.")
        if "metrics.AUC" not in top3.columns:
            return incorrect("top3 has no metrics.AUC column: search this lesson's experiment, where every run logs AUC.")
        stray = stray_run(top3["run_id"])
        if stray:
            return incorrect(f"top3 includes {stray}")
        # Re-running the grid logs identical runs, so compare the AUC values, not which twin was picked.
        expected = [r.data.metrics["AUC"] for r in runs[:3]]
        got = [float(x) for x in top3["metrics.AUC"]]
        if _same(got, expected):
            return correct("The first row is the best run: sorting happens in the store, not in pandas.")
        if _same(sorted(got, reverse=True), expected):
            return incorrect("Right three runs, wrong order: the best run must come first (DESC).")
        if _same(got, [r.data.metrics["AUC"] for r in runs[::-1][:3]]):
            return incorrect("These are the three *worst* runs: sort metrics.AUC in descending order (DESC).")
        return incorrect("These are not the three highest-AUC runs of the grid: order by metrics.AUC DESC.")


class FilterString(Exercise):
    """q3: a filter_string for runs with AUC above 0.8 and maxDepth 5."""

    key = "q3"
    title = "Write a filter"
    hints = (
        "Join two conditions with `and`. Metrics compare as numbers, params as quoted strings.",
        "metrics.AUC > 0.8 and params.maxDepth = '____'",
    )
    solution_code = """
good_filter = "metrics.AUC > 0.8 and params.maxDepth = '5'"
"""

    def evaluate(self, good_filter: object = None) -> CheckResult:
        import mlflow

        if is_blank(good_filter) or (isinstance(good_filter, str) and not good_filter.strip()):
            return not_attempted("good_filter is still blank: write the filter as a string.")
        if not isinstance(good_filter, str):
            return incorrect(f"good_filter is a {type(good_filter).__name__}; a filter is one string.")
        if re.search(r"params\.\w+\s*(<=|>=|<|>)", good_filter):
            return incorrect("Params are strings, so MLflow cannot compare them with < or >: use params.maxDepth = '5'.")
        runs = grid_runs()
        if not runs:
            return _no_grid()
        try:
            found = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=good_filter, output_format="list")
        except MlflowException as exc:
            text = str(exc)
            if "quoted string" in text.lower() or ("comparator" in text.lower() and "param" in text.lower()):
                return incorrect("MLflow wants a quoted value there: params (and tags) are strings, so write = '5', not = 5 or > 5.")
            return incorrect(f"MLflow could not read that filter ({text.splitlines()[0][:160]}). Quote strings with '…'.")
        expected = {
            r.info.run_id for r in runs if r.data.metrics["AUC"] > Q3_MIN_AUC and r.data.params.get("maxDepth") == Q3_DEPTH
        }
        got = {r.info.run_id for r in found if r.info.status == "FINISHED" and GRID_TAG in r.data.tags}
        if got == expected:
            return correct(f"{len(got)} run(s) match. Paste the same filter into the UI's search box.")
        missing, extra = expected - got, got - expected
        extra_runs = [r for r in found if r.info.run_id in extra]
        wrong_depth = sum(r.data.params.get("maxDepth") != Q3_DEPTH for r in extra_runs)
        low_auc = sum(r.data.metrics.get("AUC", 0.0) <= Q3_MIN_AUC for r in extra_runs)
        problems = []
        if wrong_depth:
            problems.append(f"{wrong_depth} with a maxDepth other than 5 (add params.maxDepth = '5')")
        if low_auc:
            problems.append(f"{low_auc} with AUC at or below 0.8 (add metrics.AUC > 0.8)")
        if problems:
            return incorrect(f"Your filter also returns runs it should not: {'; '.join(problems)}.")
        return incorrect(f"Your filter misses {len(missing)} run(s) that have AUC > 0.8 and maxDepth 5: is a condition too strict?")


def _same(got: list[float], expected: list[float]) -> bool:
    return len(got) == len(expected) and all(abs(a - b) < 1e-9 for a, b in zip(got, expected))


def _changed(values: Iterable[tuple[str, str | None, str | None]]) -> set[str]:
    return {name for name, a, b in values if a != b}


class DifferingParams(Exercise):
    """q4: the names of the params that differ between the best and the worst grid run."""

    key = "q4"
    title = "What differs between best and worst"
    hints = (
        "get_run gives .data.params for each run; compare the two dicts key by key.",
        "[k for k in best.data.params if best.data.params[k] != worst.data.params.get(k)]",
    )
    solution_code = """
best, worst = grid.iloc[0], grid.iloc[-1]
differing = [c.removeprefix("params.") for c in param_cols if best[c] != worst[c]]
"""

    def evaluate(self, differing: object = None) -> CheckResult:
        if is_blank(differing):
            return not_attempted("differing is still blank: set it to a list of param names.")
        if isinstance(differing, str) or not isinstance(differing, (list, tuple, set)):
            return incorrect(f"differing is a {type(differing).__name__}; make it a list of names such as ['numTrees'].")
        runs = grid_runs()
        if len(runs) < 2:
            return _no_grid()
        best, worst = runs[0].data.params, runs[-1].data.params
        keys = set(best) | set(worst)
        expected = _changed((k, best.get(k), worst.get(k)) for k in keys)
        got = {str(x).removeprefix("params.") for x in differing}
        if got == expected:
            return correct(f"Best and worst differ in {sorted(expected)}: in the UI, Compare → 'Show diff only' shows the same.")
        if got - keys:
            return incorrect(f"{sorted(got - keys)[0]!r} is not a param of these runs: use the names after 'params.'.")
        if got - expected:
            return incorrect(f"{sorted(got - expected)[0]!r} has the same value in both runs: list only params that differ.")
        return incorrect(f"{len(expected - got)} differing param(s) missing: compare every param of the two runs.")


q1 = BestWithTwentyTrees()
q2 = TopThree()
q3 = FilterString()
q4 = DifferingParams()
