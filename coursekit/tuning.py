"""Train-and-log one RandomForest attempt, and read the attempts back: what the tuning panel wraps.

Plain functions and one small class, so they can be called (and tested) without
a browser. Each call of :meth:`Tuner.train_and_log` logs exactly one MLflow run.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from coursekit.data import FEATURES, LABEL
from coursekit.spark_models import activate, spark_flavor

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

ATTEMPT_TAG = "attempt"
DURATION_TAG = "duration_s"
SOURCE_TAG = "source"
SOURCE = "tuning-panel"
FEATURE_SUBSET_STRATEGIES = ("auto", "all", "sqrt", "log2", "onethird")
IMPURITIES = ("gini", "entropy")
# average_precision is scikit-learn's step-wise area under the precision-recall curve; Spark's
# areaUnderPR interpolates linearly and differs in the third decimal, so the names stay apart.
METRICS = ("AUC", "average_precision", "accuracy", "f1")
# The one source of the numeric settings' ranges: the panel's sliders, the refusal messages
# and lesson 5's table of settings all use these (a test compares the lesson's table with them).
BOUNDS: dict[str, tuple[float, float]] = {
    "numTrees": (1, 200),
    "maxDepth": (1, 20),
    "subsamplingRate": (0.05, 1.0),
    "minInstancesPerNode": (1, 50),
}
SUBSAMPLING_STEP = 0.05


class TuningError(ValueError):
    """An attempt could not be trained; the message says why in one sentence."""


@dataclass(frozen=True)
class ForestParams:
    """The RandomForestClassifier settings one attempt tries, with the panel's bounds."""

    numTrees: int = 20
    maxDepth: int = 5
    featureSubsetStrategy: str = "auto"
    impurity: str = "gini"
    subsamplingRate: float = 1.0
    minInstancesPerNode: int = 1

    def validate(self) -> None:
        """Raise :class:`TuningError` naming the first setting Spark would reject."""
        for name in ("numTrees", "maxDepth", "minInstancesPerNode"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TuningError(f"{name} must be a whole number, not {value!r}.")
        if isinstance(self.subsamplingRate, bool) or not isinstance(self.subsamplingRate, (int, float)):
            raise TuningError(f"subsamplingRate must be a number, not {self.subsamplingRate!r}.")
        for name in ("numTrees", "maxDepth"):
            _check_range(name, getattr(self, name))
        if self.featureSubsetStrategy not in FEATURE_SUBSET_STRATEGIES:
            raise TuningError(f"featureSubsetStrategy must be one of {', '.join(FEATURE_SUBSET_STRATEGIES)}.")
        if self.impurity not in IMPURITIES:
            raise TuningError(f"impurity must be 'gini' or 'entropy', not {self.impurity!r}.")
        for name in ("subsamplingRate", "minInstancesPerNode"):
            _check_range(name, getattr(self, name))

    @classmethod
    def from_mapping(cls, values: Any) -> ForestParams:
        """Build from a dict or a leaderboard row (numpy numbers become plain Python ones)."""
        return cls(
            numTrees=int(values["numTrees"]), maxDepth=int(values["maxDepth"]),
            featureSubsetStrategy=str(values["featureSubsetStrategy"]), impurity=str(values["impurity"]),
            subsamplingRate=float(values["subsamplingRate"]), minInstancesPerNode=int(values["minInstancesPerNode"]),
        )

    def run_name(self, attempt: int) -> str:
        """A run name that says what was tried, e.g. ``try-03 trees=20 depth=5 sqrt gini``."""
        return (
            f"try-{attempt:02d} trees={self.numTrees} depth={self.maxDepth} {self.featureSubsetStrategy} "
            f"{self.impurity} sub={self.subsamplingRate:g} min={self.minInstancesPerNode}"
        )


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt logged."""

    run_id: str
    run_name: str
    attempt: int
    metrics: dict[str, float]
    duration_s: float


def prepare_data(data: DataFrame, seed: int) -> tuple[DataFrame, DataFrame]:
    """Split 70/30 with ``seed`` and assemble the feature vector once, cached, so each attempt only fits."""
    from pyspark.ml.feature import VectorAssembler

    assembled = VectorAssembler(inputCols=FEATURES, outputCol="features").transform(data).select("features", LABEL)
    train, test = assembled.randomSplit([0.7, 0.3], seed=seed)
    return train.cache(), test.cache()


def score(model: PipelineModel | Any, test: DataFrame) -> dict[str, float]:
    """AUC, average precision, accuracy and F1 of ``model`` on ``test``, from one collect of 136 rows.

    scikit-learn computes the same area under the ROC curve as Spark's
    BinaryClassificationEvaluator on the same probabilities; one collect
    instead of four Spark jobs keeps a click under a second.
    """
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

    rows = model.transform(test).select(LABEL, "probability", "prediction").collect()
    labels = [int(r[LABEL]) for r in rows]
    positive = [float(r["probability"][1]) for r in rows]
    predicted = [int(r["prediction"]) for r in rows]
    return {
        "AUC": float(roc_auc_score(labels, positive)),
        "average_precision": float(average_precision_score(labels, positive)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted)),
    }


class Tuner:
    """Trains one seeded RandomForest per call and logs it as one run in ``experiment_name``."""

    def __init__(self, train: DataFrame, test: DataFrame, experiment_name: str, seed: int = 42) -> None:
        self.train = train
        self.test = test
        self.experiment_name = experiment_name
        self.seed = seed
        self.client = MlflowClient()
        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is None:
            raise TuningError(f"Experiment {experiment_name!r} does not exist: run the setup cell first.")
        self.experiment_id = experiment.experiment_id
        self.models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def next_attempt(self) -> int:
        """1 + the number of attempts already logged in the experiment."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.{SOURCE_TAG} = '{SOURCE}'", max_results=10_000
        )
        return len(runs) + 1

    def train_and_log(self, params: ForestParams) -> AttemptResult:
        """Fit one forest with ``params``, log exactly one run (params, metrics, tags), return what was logged.

        Invalid settings raise :class:`TuningError` before any run exists; a fit
        that fails inside Spark ends its run as FAILED with the reason as a tag,
        then raises :class:`TuningError`.
        """
        params.validate()
        from pyspark.ml.classification import RandomForestClassifier

        activate(self.train.sparkSession)  # the panel calls this from its worker thread
        with self._lock:
            attempt = self.next_attempt()
            name = params.run_name(attempt)
            run = self.client.create_run(
                self.experiment_id, run_name=name, tags={SOURCE_TAG: SOURCE, ATTEMPT_TAG: str(attempt)}
            )
            run_id = run.info.run_id
            started = time.perf_counter()
            try:
                forest = RandomForestClassifier(labelCol=LABEL, featuresCol="features", seed=self.seed, **asdict(params))
                model = forest.fit(self.train)
                metrics = score(model, self.test)
            except Exception as exc:
                reason = first_line(exc)
                self.client.set_tag(run_id, "error", reason[:500])
                self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
                raise TuningError(f"Spark could not train this forest: {reason[:200]}") from exc
            duration = time.perf_counter() - started
            now = int(time.time() * 1000)
            self.client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, str(v)) for k, v in {"model_type": "RandomForest", **asdict(params), "seed": self.seed}.items()],
                tags=[RunTag(DURATION_TAG, f"{duration:.2f}")],
            )
            self.client.set_terminated(run_id)
            self.models[run_id] = model
            log.info("attempt %s logged as %s (AUC %.3f)", attempt, run_id, metrics["AUC"])
            return AttemptResult(run_id, name, attempt, metrics, duration)

    def leaderboard(self) -> pd.DataFrame:
        """All finished attempts, best AUC first: attempt, run name, the six settings, metrics, run id."""
        return leaderboard(self.experiment_name)

    def log_best_model(self, pip_requirements: list[str] | None = None) -> str:
        """Log the Spark model of the best attempt into that attempt's run; return the model URI.

        Refits from the logged params when the model is no longer in memory
        (after a kernel restart): the seed makes it the same forest.
        """
        import pyspark

        activate(self.train.sparkSession)  # the panel calls this from its worker thread
        board = self.leaderboard()
        if board.empty:
            raise TuningError("No attempt yet: press Train & log first.")
        best = board.iloc[0]
        run_id = str(best["run_id"])
        model = self.models.get(run_id)
        if model is None:
            from pyspark.ml.classification import RandomForestClassifier

            settings = asdict(ForestParams.from_mapping(best))
            model = RandomForestClassifier(labelCol=LABEL, featuresCol="features", seed=self.seed, **settings).fit(self.train)
        requirements = pip_requirements or [f"mlflow=={mlflow.__version__}", f"pyspark=={pyspark.__version__}"]
        # Save, then attach to the run with the client: no active run is needed, and a failure
        # here can never mark the best attempt's run as FAILED.
        with tempfile.TemporaryDirectory(prefix="course-model-") as tmp:
            # mlflow.spark itself; over Spark Connect the kit's stand-in (coursekit.spark_models).
            spark_flavor(self.train.sparkSession).save_model(model, f"{tmp}/rf_model", pip_requirements=requirements)
            self.client.log_artifacts(run_id, f"{tmp}/rf_model", "rf_model")
        return f"runs:/{run_id}/rf_model"


def _check_range(name: str, value: float) -> None:
    low, high = BOUNDS[name]
    if not low <= value <= high:
        raise TuningError(f"{name} must be between {low:g} and {high:g}, not {value}.")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is empty."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


_INT_PARAMS = ("numTrees", "maxDepth", "minInstancesPerNode")


def leaderboard(experiment_name: str) -> pd.DataFrame:
    """The tuning attempts of ``experiment_name`` read from the store, best AUC first."""
    import pandas as pd

    columns = ["attempt", "run_name", *ForestParams.__dataclass_fields__, *METRICS, "duration_s", "run_id"]
    runs = mlflow.search_runs(
        experiment_names=[experiment_name],
        filter_string=f"tags.{SOURCE_TAG} = '{SOURCE}' and attributes.status = 'FINISHED'",
        order_by=["metrics.AUC DESC", "attributes.start_time ASC"],
    )
    if runs.empty:
        return pd.DataFrame(columns=columns)
    board = pd.DataFrame({
        "attempt": runs[f"tags.{ATTEMPT_TAG}"].astype(int),
        "run_name": runs["tags.mlflow.runName"],
        **{k: runs[f"params.{k}"] for k in ForestParams.__dataclass_fields__},
        **{k: runs[f"metrics.{k}"] for k in METRICS},
        "duration_s": runs[f"tags.{DURATION_TAG}"].astype(float),
        "run_id": runs["run_id"],
    })
    for key in _INT_PARAMS:
        board[key] = board[key].astype(int)
    board["subsamplingRate"] = board["subsamplingRate"].astype(float)
    return board.reset_index(drop=True)
