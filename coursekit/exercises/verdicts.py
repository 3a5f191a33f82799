"""Verdicts that several lessons' checks share: a run that is missing or unfinished, a run id answered,
a blank left in, a param that matches, an AUC computed on the wrong rows.

Each function returns the learner-facing :class:`~coursekit.exercises.checks.CheckResult` (or a plain
answer), so every lesson words the same situation the same way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient

from coursekit.exercises.checks import BLANK, CheckResult, close_to, incorrect, is_blank, not_attempted
from coursekit.exercises.store import in_experiment

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

# The course's data split and forest seed (every lesson's SEED default), to re-score a logged AUC.
SEED = 42
SPLIT = (0.7, 0.3)
# A logged AUC and the same model re-scored here agree to ~1e-12; 1e-4 also admits scikit-learn's AUC.
RESCORE_TOLERANCE = 1e-4
# How to get rid of a run that a check rejected; every "best run" hint that meets one says it.
DELETE_HOW = "delete it with mlflow.delete_run(run_id) (or in the MLflow UI: tick its row, then Delete)"


@dataclass(frozen=True)
class Rescored:
    """The course's pipeline (assembler + forest) re-trained with one run's settings: AUC per part of the data, importances."""

    test: float
    train: float
    all_rows: float
    #: The forest's featureImportances, in the order of ``coursekit.data.FEATURES``.
    importances: tuple[float, ...] = ()


_RESCORED: dict[tuple[int, int], Rescored] = {}
#: How :func:`rescore` gets a session when none is active: None in a learner's kernel (a check never
#: starts Spark there); the grader's re-check worker (:mod:`coursekit.instructor.recheck`) sets a starter.
spark_starter: Callable[[], SparkSession] | None = None


def rescore(num_trees: int, max_depth: int) -> Rescored | None:
    """Fit the course's pipeline with these settings, seed and split; its AUC on test, train and all rows.

    Uses the Spark session the lesson started (None without one, or if Spark fails): a
    check never starts Spark itself. One small fit (about 2 s on a warm session); results are kept, the data never changes.
    """
    key = (num_trees, max_depth)
    if key in _RESCORED:
        return _RESCORED[key]
    try:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None and spark_starter is not None:
            spark = spark_starter()
        if spark is None:
            log.debug("no active Spark session: AUC of numTrees=%s maxDepth=%s not re-scored", *key)
            return None
        _RESCORED[key] = _rescore(spark, num_trees, max_depth)
    except Exception:  # noqa: BLE001 - re-scoring is extra evidence; without it the check judges the rest
        log.debug("could not re-score numTrees=%s maxDepth=%s", *key, exc_info=True)
        return None
    return _RESCORED[key]


def _rescore(spark: SparkSession, num_trees: int, max_depth: int) -> Rescored:
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.feature import VectorAssembler
    from sklearn.metrics import roc_auc_score

    from coursekit.data import FEATURES, LABEL, load_pima

    train, test = load_pima(spark).randomSplit(list(SPLIT), seed=SEED)
    forest = RandomForestClassifier(labelCol=LABEL, numTrees=num_trees, maxDepth=max_depth, seed=SEED)
    model = Pipeline(stages=[VectorAssembler(inputCols=FEATURES, outputCol="features"), forest]).fit(train)

    def scored(frame: DataFrame) -> tuple[list[int], list[float]]:
        rows = model.transform(frame).select(LABEL, "probability").collect()
        return [int(r[LABEL]) for r in rows], [float(r["probability"][1]) for r in rows]

    # BinaryClassificationEvaluator's areaUnderROC and scikit-learn's agree on 500 rows; one collect per split.
    (y_test, p_test), (y_train, p_train) = scored(test), scored(train)
    return Rescored(
        test=float(roc_auc_score(y_test, p_test)),
        train=float(roc_auc_score(y_train, p_train)),
        all_rows=float(roc_auc_score(y_test + y_train, p_test + p_train)),
        importances=tuple(float(v) for v in model.stages[-1].featureImportances.toArray()),
    )


# What rows_scored answers besides the rows' names.
HELD_OUT = "the held-out rows"
NO_MATCH = "none of the course's rows"


def rows_scored(run: Run, metric: str = "AUC") -> str | None:
    """Which rows a run's AUC (``metric``) was computed on: HELD_OUT, the training rows, all rows, or NO_MATCH.

    Re-trains the course's pipeline with the run's logged numTrees and maxDepth (and the course's
    seed and split) and compares the logged value with that model's AUC on test, train and all rows.
    None when it cannot tell: no Spark session, params missing, another seed logged, no finite value.
    """
    auc = run.data.metrics.get(metric)
    params = run.data.params
    try:
        num_trees, max_depth, seed = int(params["numTrees"]), int(params["maxDepth"]), int(params.get("seed", SEED))
    except (KeyError, ValueError):
        return None
    if auc is None or not math.isfinite(auc) or seed != SEED:
        return None
    scores = rescore(num_trees, max_depth)
    if scores is None:
        return None
    if close_to(auc, scores.test, RESCORE_TOLERANCE):
        return HELD_OUT
    if close_to(auc, scores.train, RESCORE_TOLERANCE):
        return "the training rows"
    if close_to(auc, scores.all_rows, RESCORE_TOLERANCE):
        return "all rows, the training rows included"
    return NO_MATCH


def scored_on_wrong_rows(run: Run, metric: str = "AUC") -> str | None:
    """The rows a run's AUC was computed on when they include training rows (see :func:`rows_scored`), else None."""
    rows = rows_scored(run, metric)
    return None if rows in (None, HELD_OUT, NO_MATCH) else rows


def fitted_in_memory(model: object) -> bool:
    """Whether a Spark ``PipelineModel`` was fitted in this session rather than read back from a store.

    A freshly fitted forest carries its training summary; ``PipelineModel.load`` (and so
    ``mlflow.spark.load_model``) gives one without. False when it cannot tell.
    """
    try:
        stages = list(getattr(model, "stages", None) or [])
        return bool(stages and getattr(stages[-1], "hasSummary", False))
    except Exception:  # noqa: BLE001 - no JVM, Spark Connect: not telling is not an error
        log.debug("could not tell whether the model was fitted here", exc_info=True)
        return False


def not_a_result(run: Run) -> CheckResult | None:
    """An "incorrect" for a run picked as the best that was deleted or did not finish, else None."""
    name = run.info.run_name
    if run.info.lifecycle_stage == "deleted":
        return incorrect(f"Run '{name}' was deleted, so search_runs no longer finds it: search again and take what it finds now.")
    if run.info.status != RunStatus.to_string(RunStatus.FINISHED):
        return incorrect(
            f"Run '{name}' is {run.info.status}, not FINISHED: an unfinished run is not a result to compare. Add "
            f"attributes.status = 'FINISHED' to your filter_string, or {DELETE_HOW}."
        )
    return None


def importances_problem(importances: Mapping[str, float], run: Run | None) -> CheckResult | None:
    """An "incorrect" when ``importances`` are not those of the forest ``run`` trained (re-trained from its params), else None.

    Nothing is compared without the lesson's Spark session, the run's params, or with another seed.
    """
    from coursekit.data import FEATURES

    params = run.data.params if run else {}
    try:
        num_trees, max_depth, seed = int(params["numTrees"]), int(params["maxDepth"]), int(params.get("seed", SEED))
    except (KeyError, ValueError):
        return None
    scores = rescore(num_trees, max_depth) if seed == SEED else None
    if run is None or scores is None or not scores.importances:
        return None
    expected = dict(zip(FEATURES, scores.importances))
    if all(close_to(float(importances[name]), expected[name], 1e-9) for name in FEATURES):
        return None
    values = sorted(float(v) for v in importances.values())
    if all(close_to(a, b, 1e-9) for a, b in zip(values, sorted(expected.values()))):
        return incorrect("Right numbers, wrong names: featureImportances follows the order of FEATURES, so zip it with FEATURES as it is.")
    if close_to(values[0], values[-1], 1e-9):
        return incorrect(
            f"All seven importances are {values[0]:.3f}: typed-in numbers, not what the forest learned. "
            "Take them from forest_model.featureImportances."
        )
    return incorrect(
        f"These are not the importances of the forest trained in run '{run.info.run_name}' (numTrees={num_trees}, "
        f"maxDepth={max_depth}): take them from forest_model.featureImportances, not from another forest or by hand."
    )


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


def still_blank(values: Mapping[str, str], kind: str = "") -> CheckResult | None:
    """"Not attempted" naming the first key that is, or whose value is, still the starter's ``____``; else None.

    ``kind`` ("Param") starts the sentence when all ``values`` are of one kind.
    """
    blanks = sorted(k for k, v in values.items() if v.strip() == repr(BLANK) or k == repr(BLANK))
    if not blanks:
        return None
    what = f"{kind} {blanks[0]!r}" if kind else repr(blanks[0])
    return not_attempted(f"{what} is still the blank ____: replace every ____ and run the cell again.")


def run_id_problem(answer: object, name: str, blank: str, how: str) -> CheckResult | None:
    """The verdict on a run-id answer called ``name`` that is still blank (``blank`` says what to set) or not a string
    (``how`` says where to take one); None for a string."""
    if is_blank(answer):
        return not_attempted(f"{name} is still blank: {blank}")
    if not isinstance(answer, str):
        return incorrect(f"{name} is a {type(answer).__name__}, not a string: {how}")
    return None


def run_in(experiment: str, run_id: str, elsewhere: str, client: MlflowClient | None = None) -> Run | CheckResult:
    """The run with this id if it belongs to ``experiment``; else an "incorrect": no such run, or (``elsewhere`` says
    where to search instead) a run of another experiment."""
    client = client or MlflowClient()
    try:
        run = client.get_run(run_id)
    except Exception:  # noqa: BLE001 - any lookup failure means the id is not a run
        return incorrect(f"No run has the id {run_id!r}: copy it from the run_id column.")
    if not in_experiment(run, experiment, client):
        return incorrect(f"That run belongs to another experiment: {elsewhere}")
    return run
