"""Checks for lesson 2, "Log metrics".

Each check reads the learner's real MLflow store: the latest run with the
exercise's run name in the lesson's experiment, its metric histories
(``MlflowClient.get_metric_history``) and its artifacts.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from unittest import mock

from mlflow.entities import Metric, Run
from mlflow.tracking import MlflowClient

from coursekit.exercises.checks import CheckResult, Exercise, close_to, correct, incorrect, is_blank, not_attempted
from coursekit.exercises.store import QUIET_DOWNLOADS, artifact_paths, find_latest_run, similar_keys
from coursekit.exercises.verdicts import missing_run, scored_on_wrong_rows, unfinished_run
from coursekit.settings import experiment_name

EXPERIMENT = experiment_name("lesson-02-log-metrics")
METRICS_RUN = "ex1-metrics"
STEPS_RUN = "ex2-steps"
FIGURES_RUN = "ex4-figures"
LATEST_RUN = "ex5-latest"
# Exercise 1's metrics and the Spark metricName each one comes from.
VAL_METRICS = {
    "val_auc": "areaUnderROC", "val_pr_auc": "areaUnderPR", "val_accuracy": "accuracy",
    "val_f1": "fMeasureByLabel", "val_precision": "precisionByLabel", "val_recall": "recallByLabel",
}
STEP_METRICS = ("train_auc", "val_auc")
FIGURES = {"roc_curve.png": "roc", "confusion_matrix.png": "confusion"}
# Exercise 5 logs val_auc as these (step, value) pairs, in this order.
QUIZ_LOG = ((3, 0.70), (1, 0.90), (3, 0.80), (2, 0.75))
# Other words learners use for each data split, to recognise e.g. test_auc or validation_auc.
_SPLIT_WORDS = {"val": ("validation", "valid", "test", "eval", "holdout"), "train": ("training", "trn", "fit")}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _nothing_yet(run_name: str, what: str) -> CheckResult:
    return not_attempted(f"Run '{run_name}' has no {what} yet: un-comment the lines, fill in the blanks and run the cell again.")


def _missing_metric(wanted: str, metrics: dict[str, float], how: str) -> CheckResult:
    """Name the metric that is missing, and a look-alike the learner logged instead, if any."""
    near = similar_keys(wanted, metrics)
    if near:
        return incorrect(f"Found metric {near[0]!r}, but the exercise asks for {wanted!r}: metric names are exact and case-sensitive.")
    split, measure = wanted.split("_", 1)
    aliases = {_squash(measure)} | {_squash(w + measure) for w in _SPLIT_WORDS[split]}
    if wanted in VAL_METRICS:
        aliases |= {_squash(VAL_METRICS[wanted]), _squash(split + VAL_METRICS[wanted])}
    alias = sorted(k for k in metrics if _squash(k) in aliases and k not in {*VAL_METRICS, *STEP_METRICS})
    if alias:
        return incorrect(f"Found metric {alias[0]!r}; this lesson's convention calls it {wanted!r}: data split first, then the measure.")
    return incorrect(f"Metric {wanted!r} is missing: {how}.")


def _metrics_problem(run: Run, run_name: str, names: Iterable[str], how: str) -> CheckResult | None:
    """Nothing logged yet, an unfinished run, or the first of ``names`` missing (``how`` says how to log it); else None."""
    metrics = run.data.metrics
    if not metrics:
        return _nothing_yet(run_name, "metrics")
    return unfinished_run(run) or next((_missing_metric(n, metrics, how) for n in names if n not in metrics), None)


def _bad_value(name: str, value: float, where: str = "") -> CheckResult | None:
    if math.isnan(value):
        return incorrect(f"{name}{where} is NaN: MLflow accepts it silently, but no filter like metrics.{name} > 0.5 ever finds it.")
    if not 0.0 <= value <= 1.0:
        return incorrect(f"{name}{where} is {value}, outside 0…1: log the number the evaluator returns, unchanged.")
    return None


def _latest(history: Sequence[Metric]) -> Metric:
    """The value MLflow reports as the metric's latest: highest step, then timestamp, then value."""
    return max(history, key=lambda m: (m.step, m.timestamp, m.value))


class SeveralMetrics(Exercise):
    """q1: log six validation metrics of one model with a single ``log_metrics`` call."""

    key = "q1"
    title = "Log several metrics at once"
    hints = (
        "BinaryClassificationEvaluator knows areaUnderROC and areaUnderPR; the other four come from "
        "MulticlassClassificationEvaluator. Collect all six in a dict, then call mlflow.log_metrics(dict) once.",
        'Positive-class precision, recall and F1 are "precisionByLabel", "recallByLabel" and "fMeasureByLabel", '
        'each with metricLabel=1.0 (the **positive dict); accuracy is "accuracy".',
    )
    solution_code = """
with mlflow.start_run(run_name="ex1-metrics"):
    mlflow.log_params({"numTrees": NUM_TREES, "maxDepth": MAX_DEPTH})
    val_metrics = {
        "val_auc": binary.evaluate(predictions, {binary.metricName: "areaUnderROC"}),
        "val_pr_auc": binary.evaluate(predictions, {binary.metricName: "areaUnderPR"}),
        "val_accuracy": multi.evaluate(predictions, {multi.metricName: "accuracy"}),
        "val_f1": multi.evaluate(predictions, {multi.metricName: "fMeasureByLabel", **positive}),
        "val_precision": multi.evaluate(predictions, {multi.metricName: "precisionByLabel", **positive}),
        "val_recall": multi.evaluate(predictions, {multi.metricName: "recallByLabel", **positive}),
    }
    mlflow.log_metrics(val_metrics)
"""

    def evaluate(self) -> CheckResult:
        run = find_latest_run(EXPERIMENT, METRICS_RUN)
        if run is None:
            return missing_run(EXPERIMENT, METRICS_RUN)
        metrics, params = run.data.metrics, run.data.params
        as_params = [k for k in VAL_METRICS if k in params and k not in metrics]
        if as_params:
            return incorrect(f"{as_params[0]!r} was logged as a param: measured numbers are metrics (mlflow.log_metrics).")
        problem = _metrics_problem(run, METRICS_RUN, VAL_METRICS, "add it to the dict you pass to mlflow.log_metrics")
        if problem:
            return problem
        bad = next(filter(None, (_bad_value(name, metrics[name]) for name in VAL_METRICS)), None)
        if bad:
            return bad
        if abs(metrics["val_pr_auc"] - metrics["val_auc"]) < 1e-12:
            return incorrect("val_pr_auc is exactly val_auc, so one metricName computed both: areaUnderPR is the PR curve's area.")
        precision, recall, f1 = (metrics[k] for k in ("val_precision", "val_recall", "val_f1"))
        harmonic = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if not close_to(f1, harmonic, 1e-6):
            return incorrect(
                f"val_f1 ({f1:.3f}) is not the F1 of val_precision and val_recall (that would be {harmonic:.3f}): "
                "compute all three for the positive class, with the ...ByLabel metric names and metricLabel=1.0. "
                'The plain "f1" and "weighted..." names average both classes.'
            )
        client = MlflowClient()
        stamps = {_latest(client.get_metric_history(run.info.run_id, k)).timestamp for k in VAL_METRICS}
        if len(stamps) > 1:
            return incorrect("The six metrics have different timestamps, so several calls logged them: use one mlflow.log_metrics call.")
        if metrics["val_auc"] < 0.5:
            return incorrect(f"val_auc is {metrics['val_auc']:.3f}, worse than a coin toss: score the `predictions` of the val rows.")
        rows = scored_on_wrong_rows(run, "val_auc")
        if rows:
            return incorrect(
                f"val_auc ({metrics['val_auc']:.3f}) was computed on {rows}, which the forest has seen: evaluate "
                "`predictions`, which is model.transform(val)."
            )
        return correct(
            f"val_auc = {metrics['val_auc']:.3f} looks good, yet val_recall = {recall:.3f}: the forest misses "
            f"{1 - recall:.0%} of the diabetic patients. One number never tells the whole story."
        )


class MetricOverSteps(Exercise):
    """q2: log ``train_auc`` and ``val_auc`` once per forest size, with the number of trees as the step."""

    key = "q2"
    title = "Log a metric over steps"
    hints = (
        "Inside the loop, fit one forest per n_trees and log train_auc and val_auc with mlflow.log_metric(..., step=...).",
        "The step is the number of trees of that forest, n_trees: the chart's x-axis then reads as forest size.",
    )
    solution_code = """
with mlflow.start_run(run_name="ex2-steps") as steps_run:
    mlflow.log_param("maxDepth", MAX_DEPTH)
    for n_trees in TREE_COUNTS:
        forest_model = forest_pipeline(n_trees).fit(train)
        mlflow.log_metric("train_auc", binary.evaluate(forest_model.transform(train)), step=n_trees)
        mlflow.log_metric("val_auc", binary.evaluate(forest_model.transform(val)), step=n_trees)
"""

    def evaluate(self, tree_counts: object = None) -> CheckResult:
        run = find_latest_run(EXPERIMENT, STEPS_RUN)
        if run is None:
            return missing_run(EXPERIMENT, STEPS_RUN)
        problem = _metrics_problem(run, STEPS_RUN, STEP_METRICS, "log it inside the loop with mlflow.log_metric(..., step=n_trees)")
        if problem:
            return problem
        client = MlflowClient()
        steps: dict[str, list[int]] = {}
        values: dict[str, dict[int, float]] = {}
        for name in STEP_METRICS:
            history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: (m.step, m.timestamp))
            problem = _step_problem(name, [m.step for m in history], tree_counts)
            if problem:
                return problem
            bad = next(filter(None, (_bad_value(name, m.value, f" at step {m.step}") for m in history)), None)
            if bad:
                return bad
            steps[name] = [m.step for m in history]
            values[name] = {m.step: m.value for m in history}
        if steps["train_auc"] != steps["val_auc"]:
            return incorrect(f"train_auc is at steps {steps['train_auc']}, val_auc at {steps['val_auc']}: log both at the same steps.")
        train, val = values["train_auc"], values["val_auc"]
        if all(train[s] < val[s] for s in train):
            return incorrect("train_auc is below val_auc at every step, yet a forest scores its own rows best: swapped train and val?")
        if all(close_to(train[s], val[s], 1e-12) for s in train):
            return incorrect(
                "train_auc equals val_auc at every step, so both scored the same rows: train_auc scores "
                "forest_model.transform(train), val_auc forest_model.transform(val)."
            )
        first, last = steps["val_auc"][0], steps["val_auc"][-1]
        return correct(
            f"val_auc goes from {val[first]:.3f} with {_trees(first)} to {val[last]:.3f} with {_trees(last)}, "
            f"while train_auc climbs to {train[last]:.3f}: the gap is what the forest memorised."
        )


def _trees(n: int) -> str:
    return f"{n} tree" if n == 1 else f"{n} trees"


def _step_problem(name: str, steps: list[int], tree_counts: object) -> CheckResult | None:
    """What is wrong with the steps of one metric's history, if anything."""
    if len(steps) == 1:
        return incorrect(f"{name} has a single value (step {steps[0]}): log it inside the loop, once per forest size.")
    if set(steps) == {0}:
        return incorrect(f"All {len(steps)} values of {name} are at step 0: pass step=n_trees to mlflow.log_metric so they form a curve.")
    repeated = sorted(s for s in set(steps) if steps.count(s) > 1)
    if repeated:
        return incorrect(f"{name} has {steps.count(repeated[0])} values at step {repeated[0]}: give each forest size its own step.")
    wanted = sorted({int(n) for n in tree_counts}) if isinstance(tree_counts, (list, tuple, range)) else None
    if wanted and steps != wanted:
        if steps == list(range(len(steps))) or steps == list(range(1, len(steps) + 1)):
            return incorrect(f"{name} was logged at steps {steps}, the loop's position: use the number of trees, n_trees, as the step.")
        return incorrect(f"{name} was logged at steps {steps}, but the forest sizes in TREE_COUNTS are {wanted}: use step=n_trees.")
    if 0 in steps:
        return incorrect(f"{name} has a value at step 0, but no forest has 0 trees: use the number of trees as the step.")
    if len(steps) < 3:
        return incorrect(f"{name} has only {len(steps)} steps: log one per forest size in TREE_COUNTS, so the curve shows a trend.")
    return None


class BestStep(Exercise):
    """q3: read the ``val_auc`` history back and find the forest size with the best value."""

    key = "q3"
    title = "Find the best step in a metric's history"
    hints = (
        'MlflowClient().get_metric_history(steps_run.info.run_id, "val_auc") returns Metric objects with .step and .value.',
        "max(history, key=lambda m: m.value) is the best Metric; its .step is the number of trees.",
    )
    solution_code = """
history = MlflowClient().get_metric_history(steps_run.info.run_id, "val_auc")
best_n_trees = max(history, key=lambda m: m.value).step
"""

    def evaluate(self, best_n_trees: object = None) -> CheckResult:
        if is_blank(best_n_trees):
            return not_attempted("best_n_trees is still blank: set it to the number of trees (the step) with the highest val_auc.")
        if isinstance(best_n_trees, Metric):
            return incorrect("best_n_trees is a whole Metric object: take its .step, the number of trees.")
        if isinstance(best_n_trees, bool) or not isinstance(best_n_trees, numbers.Real):
            return incorrect(f"best_n_trees is a {type(best_n_trees).__name__}: it should be a whole number, the step of the best value.")
        answer = float(best_n_trees)
        if not answer.is_integer():
            extra = " That looks like an AUC, not a number of trees: take the .step, not the .value." if 0 < answer < 1 else ""
            return incorrect(f"best_n_trees is {best_n_trees}, not a whole number.{extra}")
        run = find_latest_run(EXPERIMENT, STEPS_RUN)
        history = MlflowClient().get_metric_history(run.info.run_id, "val_auc") if run else []
        if len(history) < 2:
            return incorrect(f"Run '{STEPS_RUN}' has no val_auc history to search yet: finish exercise 2 first.")
        by_step: dict[int, float] = {}
        for m in sorted(history, key=lambda m: (m.step, m.timestamp, m.value)):
            by_step[m.step] = m.value
        latest = _latest(history)
        finite = [v for v in by_step.values() if not math.isnan(v)]
        if not finite:
            return incorrect(f"Every val_auc value in run '{STEPS_RUN}' is NaN: fix exercise 2 first.")
        best = max(finite)
        n = int(answer)
        if n not in by_step:
            return incorrect(f"{n} is not a step of val_auc in run '{STEPS_RUN}' (steps: {sorted(by_step)}): answer with one of them.")
        if math.isnan(by_step[n]) or by_step[n] < best - 1e-12:
            if n == latest.step:
                return incorrect(
                    f"{n} is the last step: its val_auc ({by_step[n]:.3f}) is the metric's *latest* value, the one the "
                    "runs table shows. The best value sits at another step: compare the .value of every Metric."
                )
            return incorrect(f"With {_trees(n)} val_auc is {by_step[n]:.3f}, but another step scores higher: compare every .value.")
        if n == latest.step:
            return correct(f"{_trees(n)} give the best val_auc, {best:.3f}; here the best happens to be the last step too.")
        return correct(
            f"{_trees(n)} give the best val_auc, {best:.3f}, yet the run's val_auc metric shows {latest.value:.3f}, "
            f"the value at the last step ({latest.step}): the latest value is not the best one."
        )


class LogFigures(Exercise):
    """q4: log the ROC curve and the confusion matrix with ``mlflow.log_figure``."""

    key = "q4"
    title = "Log figures as artifacts"
    hints = (
        "mlflow.log_figure(figure, artifact_file) saves a matplotlib Figure straight into the run: no file on disk needed.",
        'Pass the two Figure objects drawn above, roc_fig and cm_fig, with the names "roc_curve.png" and "confusion_matrix.png".',
    )
    solution_code = """
with mlflow.start_run(run_name="ex4-figures"):
    mlflow.log_metric("val_auc", binary.evaluate(predictions))
    mlflow.log_figure(roc_fig, "roc_curve.png")
    mlflow.log_figure(cm_fig, "confusion_matrix.png")
"""

    def evaluate(self) -> CheckResult:
        run = find_latest_run(EXPERIMENT, FIGURES_RUN)
        if run is None:
            return missing_run(EXPERIMENT, FIGURES_RUN)
        files = artifact_paths(run.info.run_id)
        unfinished = unfinished_run(run)
        if not files and not unfinished:
            return _nothing_yet(FIGURES_RUN, "figures")
        if unfinished:
            return unfinished
        for wanted, word in FIGURES.items():
            if wanted not in files:
                look_alike = sorted(f for f in files if word in f.lower())
                if look_alike:
                    return incorrect(
                        f"Found {look_alike[0]!r}, but the exercise asks for {wanted!r}: "
                        "the artifact_file you pass, folder and extension included, is the name in the store."
                    )
                return incorrect(f"No {wanted!r} among the run's artifacts: log that figure with mlflow.log_figure.")
        images = _read_artifacts(run.info.run_id, list(FIGURES))
        for name, content in images.items():
            if not content.startswith(_PNG_SIGNATURE):
                return incorrect(f"{name!r} is not a PNG image: log the matplotlib Figure itself with mlflow.log_figure.")
        if len(set(images.values())) < len(images):
            return incorrect("roc_curve.png and confusion_matrix.png are the same image: log roc_fig under one, cm_fig under the other.")
        if "val_auc" not in run.data.metrics:
            return _missing_metric("val_auc", run.data.metrics, "keep the log_metric line, so the figures sit next to their number")
        return correct("Open the run's Artifacts tab in the MLflow UI: both images are previewed there, next to val_auc.")


def _read_artifacts(run_id: str, paths: list[str]) -> dict[str, bytes]:
    """The bytes of some artifacts of a run, downloaded quietly to a temporary folder."""
    client = MlflowClient()
    with mock.patch.dict(os.environ, QUIET_DOWNLOADS), tempfile.TemporaryDirectory(prefix="coursekit-") as tmp:
        return {p: Path(client.download_artifacts(run_id, p, tmp)).read_bytes() for p in paths}


class PredictLatest(Exercise):
    """q5: predict which of four logged values MLflow reports as the metric's value."""

    key = "q5"
    title = "Predict the latest value"
    hints = (
        "MLflow does not keep the best value, nor simply the last call: it looks at the steps first.",
        "Take the highest step; if several values share it, the one logged later wins.",
    )
    solution_code = """
predicted_latest = 0.80  # step 3 is the highest; of its two values, 0.80 was logged later
"""

    def evaluate(self, predicted_latest: object = None) -> CheckResult:
        if is_blank(predicted_latest):
            return not_attempted("predicted_latest is still blank: write down your prediction, then run the cell.")
        run = find_latest_run(EXPERIMENT, LATEST_RUN)
        if run is None:
            return missing_run(EXPERIMENT, LATEST_RUN)
        history = MlflowClient().get_metric_history(run.info.run_id, "val_auc")
        if sorted((m.step, m.value) for m in history) != sorted(QUIZ_LOG):
            return incorrect(f"Run '{LATEST_RUN}' does not hold the four values of the quiz: re-run the cell, log_metric lines unchanged.")
        if isinstance(predicted_latest, bool) or not isinstance(predicted_latest, numbers.Real):
            return incorrect(f"predicted_latest is a {type(predicted_latest).__name__}: write one of the four numbers.")
        guess, actual = float(predicted_latest), run.data.metrics["val_auc"]
        if close_to(guess, actual, 1e-9):
            return correct("The highest step wins (3); of its two values, the one logged later. Size and call order alone decide nothing.")
        reasons = {
            max(v for _, v in QUIZ_LOG): "is the best value, but MLflow does not keep the best: it keeps the latest, by step.",
            QUIZ_LOG[-1][1]: "was logged last, but at a lower step than others: MLflow orders by step first.",
            QUIZ_LOG[0][1]: "is at the highest step, but another value was logged at that step afterwards.",
        }
        for value, reason in reasons.items():
            if close_to(guess, value, 1e-9):
                return incorrect(f"{value} {reason}")
        return incorrect(f"{guess} is not what MLflow shows. Look at the steps of the four calls, then at their order.")


q1 = SeveralMetrics()
q2 = MetricOverSteps()
q3 = BestStep()
q4 = LogFigures()
q5 = PredictLatest()
