"""coursekit.tuning: ForestParams without Spark, then Tuner against a real local Spark and MLflow store.

This is the one place the unit tests fit forests. Spark starts once (module fixture
``course_spark``); ``tried`` fits three small forests once and the read-only tests share
them; tests that need a clean slate get a fresh experiment from ``tuner``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
import pyspark
import pytest
import yaml
from mlflow.tracking import MlflowClient
from pyspark.ml.classification import RandomForestClassifier
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from spark_fixtures import SEED, CourseSpark, course_spark, tuner  # noqa: F401 - fixtures

from coursekit import tracking
from coursekit.data import LABEL
from coursekit.exercises.store import artifact_paths
from coursekit.tuning import (
    METRICS,
    AttemptResult,
    ForestParams,
    Tuner,
    TuningError,
    leaderboard,
    score,
)

SETTINGS = ("numTrees", "maxDepth", "featureSubsetStrategy", "impurity", "subsamplingRate", "minInstancesPerNode")
# mlflow.spark.log_model imports mlflow.pyfunc, whose import warns about its own type hints (once per process).
pytestmark = pytest.mark.filterwarnings(r"ignore:.*Any type hint is inferred as AnyType:UserWarning")

BOARD_COLUMNS = ["attempt", "run_name", *SETTINGS, *METRICS, "duration_s", "run_id"]
# Small forests keep each fit around a second; B differs from A in all six settings.
A = ForestParams(numTrees=5, maxDepth=3)
B = ForestParams(numTrees=2, maxDepth=2, featureSubsetStrategy="sqrt", impurity="entropy",
                 subsamplingRate=0.5, minInstancesPerNode=10)


def run_ids(experiment_id: str) -> set[str]:
    """Every run of the experiment, whatever its status or tags."""
    return {r.info.run_id for r in MlflowClient().search_runs([experiment_id], max_results=1000)}


def logged_params(params: ForestParams) -> dict[str, str]:
    return {
        "model_type": "RandomForest", "numTrees": str(params.numTrees), "maxDepth": str(params.maxDepth),
        "featureSubsetStrategy": params.featureSubsetStrategy, "impurity": params.impurity,
        "subsamplingRate": str(params.subsamplingRate), "minInstancesPerNode": str(params.minInstancesPerNode),
        "seed": str(SEED),
    }


# --- ForestParams (no Spark) ----------------------------------------------------------------------


def test_defaults_and_every_boundary_are_valid():
    ForestParams().validate()
    for params in (
        ForestParams(numTrees=1, maxDepth=1, subsamplingRate=0.05, minInstancesPerNode=1),
        ForestParams(numTrees=200, maxDepth=20, subsamplingRate=1.0, minInstancesPerNode=50),
        *(ForestParams(featureSubsetStrategy=s) for s in ("auto", "all", "sqrt", "log2", "onethird")),
        ForestParams(impurity="entropy"),
    ):
        params.validate()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"numTrees": 0}, ["numTrees", "between 1 and 200", "not 0"]),
        ({"numTrees": 201}, ["numTrees", "between 1 and 200", "not 201"]),
        ({"maxDepth": 0}, ["maxDepth", "between 1 and 20", "not 0"]),
        ({"maxDepth": 21}, ["maxDepth", "between 1 and 20", "not 21"]),
        ({"featureSubsetStrategy": "half"}, ["featureSubsetStrategy", "sqrt", "onethird"]),
        ({"featureSubsetStrategy": "SQRT"}, ["featureSubsetStrategy"]),
        ({"impurity": "variance"}, ["impurity", "'gini' or 'entropy'", "'variance'"]),
        ({"subsamplingRate": 0.0}, ["subsamplingRate", "between 0.05 and 1", "not 0.0"]),
        ({"subsamplingRate": 0.04}, ["subsamplingRate", "between 0.05 and 1", "not 0.04"]),
        ({"subsamplingRate": 1.5}, ["subsamplingRate", "between 0.05 and 1", "not 1.5"]),
        ({"minInstancesPerNode": 0}, ["minInstancesPerNode", "between 1 and 50", "not 0"]),
        ({"minInstancesPerNode": 51}, ["minInstancesPerNode", "between 1 and 50", "not 51"]),
    ],
)
def test_validate_names_the_bad_setting(change, words):
    with pytest.raises(TuningError) as refused:
        ForestParams(**change).validate()
    message = str(refused.value)
    assert message.startswith(next(iter(change))), message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.mark.parametrize(
    ("change", "name"),
    [({"numTrees": "20"}, "numTrees"), ({"maxDepth": 5.5}, "maxDepth"), ({"minInstancesPerNode": True}, "minInstancesPerNode"),
     ({"subsamplingRate": "0.5"}, "subsamplingRate")],
)
def test_validate_refuses_wrong_types_before_spark(change, name):
    # e.g. ForestParams(**best_params) with the strings the store keeps
    with pytest.raises(TuningError, match=name):
        ForestParams(**change).validate()


def test_first_line_of_an_empty_exception_is_its_type():
    from coursekit.tuning import first_line

    assert first_line(MemoryError()) == "MemoryError"
    assert first_line(RuntimeError("boom\nJava stack")) == "boom"


def test_tuning_error_is_a_value_error():
    # Code that already catches ValueError around bad settings keeps working.
    assert issubclass(TuningError, ValueError)


def test_run_name_says_what_was_tried():
    params = ForestParams(numTrees=60, maxDepth=3, featureSubsetStrategy="sqrt", impurity="entropy",
                          subsamplingRate=0.8, minInstancesPerNode=5)
    assert params.run_name(3) == "try-03 trees=60 depth=3 sqrt entropy sub=0.8 min=5"
    assert ForestParams().run_name(12) == "try-12 trees=20 depth=5 auto gini sub=1 min=1"


def test_from_mapping_converts_numpy_numbers():
    row = {"numTrees": np.int64(50), "maxDepth": np.int32(3), "featureSubsetStrategy": np.str_("sqrt"),
           "impurity": np.str_("entropy"), "subsamplingRate": np.float64(0.5), "minInstancesPerNode": np.int64(2)}
    params = ForestParams.from_mapping(row)
    assert params == ForestParams(50, 3, "sqrt", "entropy", 0.5, 2)
    assert [type(getattr(params, s)) for s in SETTINGS] == [int, int, str, str, float, int]


def test_from_mapping_converts_the_strings_the_store_keeps():
    stored = {"numTrees": "50", "maxDepth": "3", "featureSubsetStrategy": "log2", "impurity": "gini",
              "subsamplingRate": "1.0", "minInstancesPerNode": "4", "model_type": "RandomForest", "seed": "42"}
    params = ForestParams.from_mapping(stored)
    assert params == ForestParams(50, 3, "log2", "gini", 1.0, 4)
    assert [type(getattr(params, s)) for s in SETTINGS] == [int, int, str, str, float, int]
    # ...and a pandas row, as log_best_model passes one.
    assert ForestParams.from_mapping(pd.Series(stored)) == params


# --- Tuner with real Spark ------------------------------------------------------------------------


@dataclass
class Tried:
    """Attempts A, A, a Spark failure and B in one experiment, plus a better run that is no attempt."""

    tuner: Tuner
    results: list[AttemptResult]
    new_runs: list[set[str]]  # the run ids each train_and_log call added
    failed_run: str
    failure: TuningError
    outsider: str


@pytest.fixture(scope="module")
def tried(course_spark: CourseSpark) -> Tried:  # noqa: F811 - fixture imported above
    name = "tune-shared-attempts"
    experiment_id = tracking.ensure_experiment(name)
    tuner_ = Tuner(course_spark.train, course_spark.test, name, seed=SEED)
    results, new_runs = [], []

    def attempt(params):
        before = run_ids(experiment_id)
        results.append(tuner_.train_and_log(params))
        new_runs.append(run_ids(experiment_id) - before)

    attempt(A)
    attempt(A)
    # A real failure inside Spark: the training data has no label column.
    broken = Tuner(course_spark.train.select("features"), course_spark.test, name, seed=SEED)
    before = run_ids(experiment_id)
    with pytest.raises(TuningError) as failure:
        broken.train_and_log(ForestParams(numTrees=3))
    (failed_run,) = run_ids(experiment_id) - before
    attempt(B)
    # A hand-made run with a better AUC that is not a tuning attempt.
    mlflow.set_experiment(name)
    with mlflow.start_run(run_name="not-an-attempt") as outsider:
        mlflow.log_params({"numTrees": "99"})
        mlflow.log_metric("AUC", 0.99)
    return Tried(tuner_, results, new_runs, failed_run, failure.value, outsider.info.run_id)


def test_each_call_logs_exactly_one_finished_run(tried):
    client = MlflowClient()
    finished = tried.results
    assert [r.attempt for r in finished] == [1, 2, 4]  # the failed call was attempt 3
    for result, params, new in zip(finished, [A, A, B], tried.new_runs, strict=True):
        assert new == {result.run_id}
        run = client.get_run(result.run_id)
        assert run.info.status == "FINISHED"
        assert run.info.run_name == result.run_name == params.run_name(result.attempt)
        assert run.data.params == logged_params(params)
        assert set(run.data.metrics) == set(METRICS)
        for key in METRICS:
            assert 0.0 <= run.data.metrics[key] <= 1.0
            assert run.data.metrics[key] == pytest.approx(result.metrics[key], abs=1e-12)
        assert run.data.tags["attempt"] == str(result.attempt)
        assert run.data.tags["source"] == "tuning-panel"
        assert float(run.data.tags["duration_s"]) == pytest.approx(result.duration_s, abs=0.006)
        assert result.duration_s > 0
        assert result.run_id in tried.tuner.models


def test_attempt_numbers_increase_from_one(tried):
    client = MlflowClient()
    runs = client.search_runs([tried.tuner.experiment_id], "tags.source = 'tuning-panel'",
                              order_by=["attributes.start_time ASC"])
    assert [r.data.tags["attempt"] for r in runs] == ["1", "2", "3", "4"]
    assert tried.tuner.next_attempt() == 5


def test_same_settings_give_the_same_scores(tried):
    first, again, other = tried.results
    assert first.metrics == again.metrics  # seeded: the very same forest
    assert first.metrics["AUC"] != other.metrics["AUC"]


def test_the_forest_gets_all_six_settings_and_the_seed(tried):
    model = tried.tuner.models[tried.results[2].run_id]
    assert model.getNumTrees == B.numTrees
    assert model.getMaxDepth() == B.maxDepth
    assert model.getFeatureSubsetStrategy() == B.featureSubsetStrategy
    assert model.getImpurity() == B.impurity
    assert model.getSubsamplingRate() == B.subsamplingRate
    assert model.getMinInstancesPerNode() == B.minInstancesPerNode
    assert model.getSeed() == SEED
    assert model.getLabelCol() == LABEL


def test_score_auc_is_spark_area_under_roc(tried, course_spark):  # noqa: F811
    model = tried.tuner.models[tried.results[0].run_id]
    predictions = model.transform(course_spark.test)
    spark_auc = BinaryClassificationEvaluator(labelCol=LABEL, metricName="areaUnderROC").evaluate(predictions)
    ours = score(model, course_spark.test)
    assert abs(ours["AUC"] - spark_auc) < 1e-9
    assert abs(tried.results[0].metrics["AUC"] - spark_auc) < 1e-9
    assert 0.5 < spark_auc < 1.0  # a real model, not a coin toss


def test_a_spark_failure_ends_its_run_as_failed(tried):
    run = MlflowClient().get_run(tried.failed_run)
    assert run.info.status == "FAILED"
    assert run.data.tags["attempt"] == "3"
    assert "diabetic" in run.data.tags["error"]
    assert "\n" not in run.data.tags["error"]
    assert run.data.metrics == {}
    assert tried.failed_run not in tried.tuner.models
    assert str(tried.failure).startswith("Spark could not train this forest: ")
    assert tried.failure.__cause__ is not None


def test_invalid_params_create_no_run(tuner):  # noqa: F811
    for bad in (ForestParams(numTrees=0), ForestParams(impurity="variance"), ForestParams(subsamplingRate=1.5)):
        with pytest.raises(TuningError):
            tuner.train_and_log(bad)
    assert run_ids(tuner.experiment_id) == set()
    assert tuner.next_attempt() == 1
    assert tuner.models == {}


def test_a_failing_fit_leaves_one_failed_run_with_the_reason(tuner, monkeypatch):  # noqa: F811
    first_line = "Job aborted: " + "E" * 600

    def fit(self, dataset, params=None):
        raise RuntimeError(f"{first_line}\n\tat org.apache.spark.SparkContext.runJob")

    monkeypatch.setattr(RandomForestClassifier, "fit", fit)
    with pytest.raises(TuningError) as failure:
        tuner.train_and_log(ForestParams())
    assert str(failure.value) == f"Spark could not train this forest: {first_line[:200]}"
    assert isinstance(failure.value.__cause__, RuntimeError)
    (run,) = MlflowClient().search_runs([tuner.experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == first_line[:500]
    assert run.data.tags["attempt"] == "1"
    assert run.info.run_name == ForestParams().run_name(1)
    assert run.data.metrics == {}
    assert tuner.models == {}
    assert tuner.leaderboard().empty


def test_leaderboard_is_best_first_and_only_finished_attempts(tried):
    board = tried.tuner.leaderboard()
    assert list(board.columns) == BOARD_COLUMNS
    assert list(board.index) == [0, 1, 2]
    assert set(board["run_id"]) == {r.run_id for r in tried.results}
    assert tried.failed_run not in set(board["run_id"])
    assert tried.outsider not in set(board["run_id"])
    assert board["AUC"].is_monotonic_decreasing
    a_first, a_again, b = tried.results
    assert b.metrics["AUC"] < a_first.metrics["AUC"]  # seeded, so always true; the order below needs it
    # A tie is broken by the earlier attempt.
    assert board["attempt"].tolist() == [1, 2, 4]
    assert board.loc[0, "run_name"] == a_first.run_name
    assert board.loc[2, "AUC"] == pytest.approx(b.metrics["AUC"], abs=1e-12)
    assert ForestParams.from_mapping(board.iloc[2]) == B
    assert board.loc[0, "duration_s"] == pytest.approx(a_first.duration_s, abs=0.006)


def test_leaderboard_dtypes(tried):
    board = leaderboard(tried.tuner.experiment_name)
    pd.testing.assert_frame_equal(board, tried.tuner.leaderboard())
    for column in ("attempt", "numTrees", "maxDepth", "minInstancesPerNode"):
        assert pd.api.types.is_integer_dtype(board[column]), column
    for column in ("subsamplingRate", *METRICS, "duration_s"):
        assert pd.api.types.is_float_dtype(board[column]), column
    assert board["featureSubsetStrategy"].tolist() == ["auto", "auto", "sqrt"]
    assert board["impurity"].tolist() == ["gini", "gini", "entropy"]


def test_leaderboard_before_any_attempt_is_empty_with_the_columns(tuner):  # noqa: F811
    board = tuner.leaderboard()
    assert board.empty
    assert list(board.columns) == BOARD_COLUMNS


def test_log_best_model_logs_into_the_best_attempt(tried):
    experiment_runs = run_ids(tried.tuner.experiment_id)
    best = tried.results[0]
    # As the lesson's setup cell does: log_best_model resumes the run with the fluent API,
    # which refuses a run outside the active experiment.
    mlflow.set_experiment(tried.tuner.experiment_name)
    uri = tried.tuner.log_best_model()
    assert uri == f"runs:/{best.run_id}/rf_model"
    assert run_ids(tried.tuner.experiment_id) == experiment_runs  # no new run
    files = artifact_paths(best.run_id, path="rf_model")
    assert "rf_model/MLmodel" in files and "rf_model/requirements.txt" in files
    assert any(f.startswith("rf_model/sparkml/") for f in files)
    client = MlflowClient()
    requirements = client.download_artifacts(best.run_id, "rf_model/requirements.txt")
    with open(requirements, encoding="utf-8") as handle:
        assert handle.read().split() == [f"mlflow=={mlflow.__version__}", f"pyspark=={pyspark.__version__}"]
    assert (mlflow.__version__, pyspark.__version__) == ("3.17.2", "4.3.0")
    with open(client.download_artifacts(best.run_id, "rf_model/MLmodel"), encoding="utf-8") as handle:
        assert "spark" in yaml.safe_load(handle)["flavors"]
    # Only the best attempt got a model; its run is still a finished attempt with the same numbers.
    for other in tried.results[1:]:
        assert artifact_paths(other.run_id) == []
    run = client.get_run(best.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["AUC"] == pytest.approx(best.metrics["AUC"], abs=1e-12)


def test_log_best_model_refits_after_a_restart(tuner, course_spark, monkeypatch):  # noqa: F811
    result = tuner.train_and_log(A)
    original = tuner.models[result.run_id]
    tuner.models.clear()  # what a kernel restart does
    logged = []
    real_save_model = mlflow.spark.save_model

    def spy(model, *args, **kwargs):
        logged.append(model)
        return real_save_model(model, *args, **kwargs)

    monkeypatch.setattr(mlflow.spark, "save_model", spy)
    uri = tuner.log_best_model()
    assert uri == f"runs:/{result.run_id}/rf_model"
    (refit,) = logged
    assert refit is not original
    # Same seed and settings: the same forest, so the same scores as the logged attempt.
    assert refit.featureImportances == original.featureImportances
    assert score(refit, course_spark.test) == result.metrics
    assert "rf_model/MLmodel" in artifact_paths(result.run_id, path="rf_model")
    assert run_ids(tuner.experiment_id) == {result.run_id}


def test_log_best_model_without_attempts(tuner):  # noqa: F811
    with pytest.raises(TuningError, match="No attempt yet"):
        tuner.log_best_model()
    assert run_ids(tuner.experiment_id) == set()


def test_tuner_needs_an_existing_experiment(course_spark):  # noqa: F811
    with pytest.raises(TuningError, match="does not exist"):
        Tuner(course_spark.train, course_spark.test, "never-created")


def test_log_best_model_needs_no_active_experiment_or_run_and_never_fails_the_run(tuner, monkeypatch):  # noqa: F811
    result = tuner.train_and_log(A)
    tracking.ensure_experiment("somewhere-else")
    mlflow.set_experiment("somewhere-else")
    with mlflow.start_run(run_name="left-open"):
        assert tuner.log_best_model() == f"runs:/{result.run_id}/rf_model"

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(mlflow.spark, "save_model", broken)
    with pytest.raises(OSError):
        tuner.log_best_model()
    assert MlflowClient().get_run(result.run_id).info.status == "FINISHED"
