"""Lesson 3 checks against a real (temporary) MLflow store, one section per exercise.

Spark is started only by the last section (importances that are not the forest's, on the
shared session of ``spark_fixtures``): model folders are faked with ``mlflow.log_text`` (an
``MLmodel`` YAML body, ``requirements.txt``, …), and q4 gets a bare ``PipelineModel``, which
PySpark builds without a JVM. Each section covers the reference answer, nothing run
yet, the untouched starter, and typical mistakes named by their message.
"""

from __future__ import annotations

import hashlib
import json
import math
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from pyspark.ml import Pipeline, PipelineModel
from spark_fixtures import course_spark  # noqa: F401 - a fixture
from store_helpers import assert_incorrect, log_run

from coursekit import BLANK, Outcome
from coursekit.data import FEATURES, LABEL, PIMA_SHA256
from coursekit.exercises import lesson03
from coursekit.exercises.lesson03 import EXPERIMENT, q1, q2, q3, q4, q5

pytestmark = pytest.mark.usefixtures("lesson_experiment")

REQUIREMENTS = lesson03.expected_requirements()
IMPORTANCES = dict(zip(FEATURES, [0.09, 0.40, 0.04, 0.10, 0.11, 0.10, 0.16]))


def _columns(names, kind="integer"):
    return json.dumps([{"type": kind, "name": name, "required": True} for name in names])


def model_folder(path="rf_model", *, flavors=("python_function", "spark"), inputs=FEATURES, outputs=("prediction",),
                 example=True, requirements=REQUIREMENTS, signature=True):
    """The text files of a logged model, as ``{artifact path: text}`` for ``log_run(texts=...)``."""
    mlmodel = {
        "artifact_path": path,
        "flavors": {name: {"model_data": "sparkml"} for name in flavors},
        "mlflow_version": mlflow.__version__,
        "model_id": None,
    }
    if signature:
        mlmodel["signature"] = {"inputs": _columns(inputs), "outputs": _columns(outputs, "double") if outputs else None,
                                "params": None}
    if example:
        mlmodel["saved_input_example_info"] = {"artifact_path": "input_example.json", "type": "dataframe"}
    files = {f"{path}/MLmodel": yaml.safe_dump(mlmodel)}
    if requirements is not None:
        files[f"{path}/requirements.txt"] = "\n".join(requirements)
    if example:
        files[f"{path}/input_example.json"] = json.dumps({"columns": list(inputs), "data": [[1] * len(inputs)]})
    if "spark" in flavors:
        files[f"{path}/sparkml/metadata/part-00000"] = "{}"
    return files


def test_every_check_is_not_attempted_in_a_fresh_store():
    for exercise in (q1, q2, q3):
        result = exercise.result()
        assert result.outcome is Outcome.NOT_ATTEMPTED, result
        assert EXPERIMENT in result.message and "No run named" in result.message
    assert q4.result().outcome is Outcome.NOT_ATTEMPTED
    assert q5.result().outcome is Outcome.NOT_ATTEMPTED


def test_check_prints_the_verdict(capsys):
    log_run(lesson03.MODEL_RUN, metrics={"AUC": 0.83}, texts=model_folder())
    q1.check()
    assert capsys.readouterr().out.startswith("✅ Correct — q1: Log the model with its signature.")


def test_hints_and_solutions_are_there_for_every_exercise():
    for exercise in (q1, q2, q3, q4, q5):
        assert len(exercise.hints) >= 2 and exercise.solution_code.strip()


# --- q1: Spark model with signature, input example and explicit requirements -----------------


def test_q1_correct():
    log_run(lesson03.MODEL_RUN, metrics={"AUC": 0.83}, texts=model_folder())
    result = q1.result()
    assert result.outcome is Outcome.CORRECT
    assert "your two lines" in result.message


def test_q1_requirements_in_another_order_are_fine():
    log_run(lesson03.MODEL_RUN, texts=model_folder(requirements=list(reversed(REQUIREMENTS))))
    assert q1.result().outcome is Outcome.CORRECT


def test_q1_starter_without_a_model_is_not_attempted():
    # The starter logs the AUC; the log_model call is still commented out.
    log_run(lesson03.MODEL_RUN, metrics={"AUC": 0.83})
    result = q1.result()
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "no model yet" in result.message


@pytest.mark.parametrize(
    ("files", "words"),
    [
        (model_folder("model"), ["'model'", "'rf_model'", "artifact path"]),
        (model_folder("spark-model"), ["'spark-model'", "'rf_model'"]),
        ({"notes.txt": "hello"}, ["no model", "mlflow.spark.log_model"]),
        (model_folder(flavors=("python_function", "sklearn")), ["not a Spark model", "mlflow.spark.log_model"]),
        (model_folder(signature=False), ["no signature", "signature=signature"]),
        (model_folder(inputs=[*FEATURES, LABEL]), ["'diabetic'", "does not read", "input_example"]),
        (model_folder(inputs=FEATURES[:-1]), ["lack", "'age'"]),
        (model_folder(outputs=()), ["no outputs"]),
        (model_folder(example=False), ["no input example", "input_example=input_example"]),
        (model_folder(requirements=[*REQUIREMENTS, "cloudpickle==3.1.1", "numpy==2.3.5"]),
         ["inferred", "'cloudpickle==3.1.1'", "pip_requirements=PIP_REQUIREMENTS"]),
        (model_folder(requirements=REQUIREMENTS[:1]), ["lacks", "pyspark=="]),
        (model_folder(requirements=[REQUIREMENTS[0], "pyspark==3.5.0"]), ["different version", "'pyspark==3.5.0'"]),
        (model_folder(requirements=[REQUIREMENTS[0], "pyspark"]), ["different version", "'pyspark'"]),
        (model_folder(requirements=None), ["no requirements.txt"]),
    ],
)
def test_q1_mistakes(files, words):
    log_run(lesson03.MODEL_RUN, metrics={"AUC": 0.83}, texts=files)
    assert_incorrect(q1.result(), *words)


def test_q1_run_left_running():
    log_run(lesson03.MODEL_RUN, texts=model_folder(), status=None)
    assert_incorrect(q1.result(), "RUNNING")


def test_q1_reads_the_latest_attempt():
    log_run(lesson03.MODEL_RUN, texts=model_folder(signature=False))
    time.sleep(0.01)  # start times are in milliseconds
    log_run(lesson03.MODEL_RUN, texts=model_folder())
    assert q1.result().outcome is Outcome.CORRECT


def test_q1_reads_a_model_recorded_as_a_logged_model(tmp_path, lesson_experiment):
    # Other flavours (and later MLflow versions) store the model as an MLflow 3 LoggedModel.
    run_id = log_run(lesson03.MODEL_RUN, metrics={"AUC": 0.83})
    folder = tmp_path / "model"
    for path, text in model_folder().items():
        target = folder / path.removeprefix("rf_model/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    client = MlflowClient()
    logged = client.create_logged_model(lesson_experiment, name="rf_model", source_run_id=run_id)
    client.log_model_artifacts(logged.model_id, str(folder))
    assert q1.result().outcome is Outcome.CORRECT


# --- q2: feature importances as a dict artifact ------------------------------------------------


def test_q2_correct():
    log_run(lesson03.ARTIFACTS_RUN, dicts={lesson03.IMPORTANCES_FILE: IMPORTANCES})
    result = q2.result()
    assert result.outcome is Outcome.CORRECT
    assert "'glu'" in result.message


def test_q2_starter_with_only_pass_is_not_attempted():
    log_run(lesson03.ARTIFACTS_RUN)
    result = q2.result()
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "no artifact yet" in result.message


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"params": IMPORTANCES}, ["logged as params", "log_dict"]),
        ({"dicts": {"importances.json": IMPORTANCES}}, ["'importances.json'", "'feature_importances.json'"]),
        ({"dicts": {"config.json": {"seed": 42}}}, ["No 'feature_importances.json'", "config.json"]),
        ({"texts": {lesson03.IMPORTANCES_FILE: str(IMPORTANCES)}}, ["not valid JSON", "mlflow.log_text(str(...))"]),
        ({"dicts": {lesson03.IMPORTANCES_FILE: dict(enumerate(IMPORTANCES.values()))}}, ["positions", "'0'", "zip FEATURES"]),
        ({"dicts": {lesson03.IMPORTANCES_FILE: {f"f{i}": v for i, v in enumerate(IMPORTANCES.values())}}}, ["positions", "'f0'"]),
        ({"dicts": {lesson03.IMPORTANCES_FILE: {**IMPORTANCES, LABEL: 0.0}}}, ["'diabetic'", "label"]),
        ({"dicts": {lesson03.IMPORTANCES_FILE: {k: v for k, v in IMPORTANCES.items() if k != "age"}}}, ["'age'", "missing"]),
        ({"dicts": {lesson03.IMPORTANCES_FILE: {k: str(v) for k, v in IMPORTANCES.items()}}}, ["text", "float(value)"]),
        ({"dicts": {lesson03.IMPORTANCES_FILE: {k: v / 2 for k, v in IMPORTANCES.items()}}}, ["add up to 0.500", "not 1"]),
        ({"dicts": {lesson03.IMPORTANCES_FILE: {k: -v for k, v in IMPORTANCES.items()}}}, ["between 0 and 1"]),
    ],
)
def test_q2_mistakes(kwargs, words):
    log_run(lesson03.ARTIFACTS_RUN, **kwargs)
    assert_incorrect(q2.result(), *words)


def test_q2_a_list_is_not_a_dict():
    mlflow.start_run(run_name=lesson03.ARTIFACTS_RUN)
    mlflow.log_text(json.dumps(list(IMPORTANCES.values())), lesson03.IMPORTANCES_FILE)
    mlflow.end_run()
    assert_incorrect(q2.result(), "list, not a dict")


def test_q2_run_left_running():
    log_run(lesson03.ARTIFACTS_RUN, dicts={lesson03.IMPORTANCES_FILE: IMPORTANCES}, status=None)
    assert_incorrect(q2.result(), "RUNNING")


# --- q3: provenance tags and dataset input --------------------------------------------------------


def log_provenance(tags=None, params=None, context="training", status="FINISHED"):
    """A provenance run; ``context=None`` logs no dataset input."""
    run = mlflow.start_run(run_name=lesson03.PROVENANCE_RUN)
    if tags:
        mlflow.set_tags(tags)
    if params:
        mlflow.log_params(params)
    if context:
        # Float columns only: integer columns make MLflow warn, and warnings fail the tests.
        frame = pd.DataFrame({"glu": [85.0, 120.0], LABEL: [0.0, 1.0]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="pima_diabetes", targets=LABEL), context=context)
    if status:
        mlflow.end_run(status=status)
    return run.info.run_id


def good_tags():
    return {lesson03.COMMIT_TAG: lesson03.current_commit() or "unknown", lesson03.CHECKSUM_TAG: PIMA_SHA256}


def test_q3_correct():
    log_provenance(good_tags())
    result = q3.result()
    assert result.outcome is Outcome.CORRECT
    assert "checksum" in result.message


def test_q3_starter_blanks_are_not_attempted():
    log_provenance({lesson03.COMMIT_TAG: BLANK, lesson03.CHECKSUM_TAG: BLANK}, context=None)
    result = q3.result()
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "____" in result.message


def test_q3_run_without_tags_is_not_attempted():
    log_provenance(context=None)
    assert q3.result().outcome is Outcome.NOT_ATTEMPTED


def _sha(algorithm):
    return hashlib.new(algorithm, b"pima").hexdigest()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({lesson03.CHECKSUM_TAG: _sha("md5")}, ["32 characters", "MD5", "SHA-256"]),
        ({lesson03.CHECKSUM_TAG: _sha("sha1")}, ["40 characters", "SHA-1"]),
        ({lesson03.CHECKSUM_TAG: _sha("sha256")}, ["not the SHA-256", "file_sha256(dataset_path())"]),
        ({lesson03.CHECKSUM_TAG: "ca71eca2"}, ["dataset digest", "query", "file_sha256"]),
        ({lesson03.CHECKSUM_TAG: PIMA_SHA256.upper()}, ["case"]),
    ],
)
def test_q3_checksum_mistakes(change, words):
    log_provenance({**good_tags(), **change})
    assert_incorrect(q3.result(), *words)


@pytest.mark.parametrize(
    ("tags", "params", "words"),
    [
        ({lesson03.CHECKSUM_TAG: PIMA_SHA256}, None, ["'git_commit'", "missing", "mlflow.set_tags"]),
        ({lesson03.COMMIT_TAG: "unknown"}, None, ["'dataset_sha256'", "missing"]),
        ({lesson03.CHECKSUM_TAG: PIMA_SHA256}, {lesson03.COMMIT_TAG: "abc"}, ["'git_commit'", "logged as a param", "tags"]),
        ({"gitCommit": "abc", lesson03.CHECKSUM_TAG: PIMA_SHA256}, None, ["'gitCommit'", "'git_commit'", "exact"]),
    ],
)
def test_q3_tag_mistakes(tags, params, words):
    log_provenance(tags, params)
    assert_incorrect(q3.result(), *words)


def test_q3_dataset_input_missing_or_in_the_wrong_context():
    log_provenance(good_tags(), context=None)
    assert_incorrect(q3.result(), "no dataset input", "mlflow.log_input")
    time.sleep(0.01)
    log_provenance(good_tags(), context="evaluation")
    assert_incorrect(q3.result(), "'evaluation'", "context=\"training\"")


def test_q3_run_left_running():
    log_provenance(good_tags(), status=None)
    assert_incorrect(q3.result(), "RUNNING")


def test_q3_commit_mistakes_in_a_git_checkout(monkeypatch):
    head = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setattr(lesson03, "current_commit", lambda: head)
    cases = [
        ("unknown", ["'unknown'", "git checkout", "0123456"]),
        (head[:7], ["short hash", "40-character"]),
        ("f" * 40, ["HEAD is 0123456", "git rev-parse HEAD"]),
        (head + "\n", ["whitespace", ".strip()"]),
    ]
    for value, words in cases:
        log_provenance({**good_tags(), lesson03.COMMIT_TAG: value})
        assert_incorrect(q3.result(), *words)
        time.sleep(0.01)
    log_provenance({**good_tags(), lesson03.COMMIT_TAG: head})
    assert q3.result().outcome is Outcome.CORRECT


def test_q3_outside_git_the_fallback_is_correct(monkeypatch):
    monkeypatch.setattr(lesson03, "current_commit", lambda: None)
    log_provenance({**good_tags(), lesson03.COMMIT_TAG: "unknown"})
    assert q3.result().outcome is Outcome.CORRECT


def test_q3_on_databricks_without_a_git_repository_is_not_checkable_in_one_line(tmp_path, monkeypatch, capsys):
    # A Databricks Git folder does not show git its .git: `git rev-parse HEAD` fails there as in any plain folder.
    (tmp_path / "no-git-here").mkdir()
    monkeypatch.chdir(tmp_path / "no-git-here")
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "16.4")
    assert lesson03.current_commit() is None
    log_provenance({**good_tags(), lesson03.COMMIT_TAG: "unknown"})
    result = q3.result()
    assert result.outcome is Outcome.UNSUPPORTED, result
    assert "git" in result.message and "checksum" in result.message
    q3.check()
    shown = capsys.readouterr().out
    assert shown.count("\n") == 1 and "Traceback" not in shown, shown
    assert "Not checkable here" in shown


def test_q3_on_databricks_without_git_still_names_the_other_mistakes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "client.4.9")
    log_provenance({**good_tags(), lesson03.COMMIT_TAG: "unknown", lesson03.CHECKSUM_TAG: "abc"})
    assert_incorrect(q3.result(), "SHA-256")
    time.sleep(0.01)
    log_provenance(good_tags(), context=None)
    assert_incorrect(q3.result(), "no dataset input")


def test_q3_on_databricks_where_git_sees_the_commit_is_judged_as_locally(monkeypatch):
    head = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setattr(lesson03, "current_commit", lambda: head)
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "16.4")
    log_provenance({**good_tags(), lesson03.COMMIT_TAG: head})
    assert q3.result().outcome is Outcome.CORRECT
    time.sleep(0.01)
    log_provenance({**good_tags(), lesson03.COMMIT_TAG: "unknown"})
    assert_incorrect(q3.result(), "'unknown'")


def test_q3_outside_git_locally_stays_correct(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    log_provenance({**good_tags(), lesson03.COMMIT_TAG: "unknown"})
    assert q3.result().outcome is Outcome.CORRECT


def test_current_commit_is_none_outside_git_and_without_git(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert lesson03.current_commit() is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable at all
    assert lesson03.current_commit() is None


def test_current_commit_in_this_checkout_is_a_full_hash():
    commit = lesson03.current_commit()
    if commit is None:
        pytest.skip("not running inside a git checkout")
    assert len(commit) == 40 and all(ch in "0123456789abcdef" for ch in commit)


# --- q4: reload and compare predictions -----------------------------------------------------------


class PyFuncModel:
    """Stands in for mlflow.pyfunc.PyFuncModel (importing it here warns, and warnings fail the tests)."""


@pytest.mark.parametrize("same", [True, np.bool_(True)])
def test_q4_correct(same):
    assert q4.result(PipelineModel(stages=[]), same).outcome is Outcome.CORRECT


@pytest.mark.parametrize(("reloaded", "same"), [(BLANK, BLANK), (None, None), (PipelineModel(stages=[]), BLANK)])
def test_q4_blanks_are_not_attempted(reloaded, same):
    assert q4.result(reloaded, same).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize(
    ("reloaded", "same", "words"),
    [
        ("runs:/0123/rf_model", True, ["string", "mlflow.spark.load_model"]),
        (PyFuncModel(), True, ["pyfunc", "no .transform", "mlflow.spark.load_model"]),
        (Pipeline(stages=[]), True, ["Pipeline;", "returns a PipelineModel"]),
        (PipelineModel(stages=[]), False, ["False", "'prediction'"]),
        (PipelineModel(stages=[]), [0.0, 1.0, 1.0], ["list", "=="]),
        (PipelineModel(stages=[]), pd.DataFrame({"prediction": [0.0]}), ["DataFrame", "collect"]),
        (PipelineModel(stages=[]), pd.Series([True, True]), ["Series", ".all()"]),
        (PipelineModel(stages=[]), np.array([True, False]), ["ndarray", ".all()"]),
        (PipelineModel(stages=[]), "True", ["str", "True or False"]),
    ],
)
def test_q4_mistakes(reloaded, same, words):
    assert_incorrect(q4.result(reloaded, same), *words)


# --- q5: re-train from the logged params ----------------------------------------------------------

TRAIN_PARAMS = {"model_type": "RandomForest", "numTrees": 20, "maxDepth": 5, "seed": 42}


def test_q5_correct_within_the_tolerance():
    log_run(lesson03.TRAIN_RUN, params=TRAIN_PARAMS, metrics={"AUC": 0.8351648})
    result = q5.result(0.8351648 + 5e-7)
    assert result.outcome is Outcome.CORRECT
    assert "0.8352" in result.message


def test_q5_blank_is_not_attempted():
    log_run(lesson03.TRAIN_RUN, params=TRAIN_PARAMS, metrics={"AUC": 0.83})
    for answer in (BLANK, None, ...):
        assert q5.result(answer).outcome is Outcome.NOT_ATTEMPTED


def test_q5_without_the_training_run_is_not_attempted():
    result = q5.result(0.83)
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "rf-train" in result.message


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (0.8123, ["0.8123", "0.8352", "off by 0.0229", "seed"]),
        (0.8351648 + 2e-6, ["off by 0.0000", "seed"]),
        ("0.835", ["str", "float"]),
        (True, ["bool", "float"]),
        (pd.DataFrame({"AUC": [0.83]}), ["DataFrame"]),
        (math.nan, ["nan", "outside 0…1"]),
        (1.5, ["1.5", "outside 0…1"]),
    ],
)
def test_q5_mistakes(answer, words):
    log_run(lesson03.TRAIN_RUN, params=TRAIN_PARAMS, metrics={"AUC": 0.8351648})
    assert_incorrect(q5.result(answer), *words)


def test_q5_compares_with_the_latest_training_run():
    log_run(lesson03.TRAIN_RUN, params=TRAIN_PARAMS, metrics={"AUC": 0.70})
    time.sleep(0.01)
    log_run(lesson03.TRAIN_RUN, params=TRAIN_PARAMS, metrics={"AUC": 0.84})
    assert q5.result(0.84).outcome is Outcome.CORRECT
    assert_incorrect(q5.result(0.70), "0.8400")


def test_checks_never_print_download_progress(capsys):
    log_run(lesson03.MODEL_RUN, texts=model_folder())
    log_run(lesson03.ARTIFACTS_RUN, dicts={lesson03.IMPORTANCES_FILE: IMPORTANCES})
    assert q1.result().correct and q2.result().correct
    captured = capsys.readouterr()
    assert "Downloading" not in captured.out + captured.err


# --- issue 9: importances that are not the forest's (the lesson's Spark pipeline, shared session) -----

FOREST_PARAMS = {"model_type": "RandomForest", "numTrees": 10, "maxDepth": 5, "seed": 42}


@pytest.fixture(scope="module")
def forest_importances(course_spark):
    """featureImportances of the lesson's forest (FOREST_PARAMS) and of a smaller one, fitted as the lesson does."""
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.feature import VectorAssembler

    from coursekit.data import load_pima

    train, _ = load_pima(course_spark.spark).randomSplit([0.7, 0.3], seed=42)
    found = {}
    for trees in (FOREST_PARAMS["numTrees"], 3):
        forest = RandomForestClassifier(labelCol=LABEL, numTrees=trees, maxDepth=FOREST_PARAMS["maxDepth"], seed=42)
        model = Pipeline(stages=[VectorAssembler(inputCols=FEATURES, outputCol="features"), forest]).fit(train)
        found[trees] = {name: float(v) for name, v in zip(FEATURES, model.stages[-1].featureImportances.toArray())}
    return found


@pytest.fixture
def rf_train(forest_importances):
    return log_run(lesson03.TRAIN_RUN, params=FOREST_PARAMS, metrics={"AUC": 0.83})


def test_q2_the_forests_importances_are_correct(rf_train, forest_importances):
    log_run(lesson03.ARTIFACTS_RUN, dicts={lesson03.IMPORTANCES_FILE: forest_importances[10]})
    assert q2.result().outcome is Outcome.CORRECT


def test_q2_typed_in_equal_importances(rf_train):
    log_run(lesson03.ARTIFACTS_RUN, dicts={lesson03.IMPORTANCES_FILE: {name: 1 / 7 for name in FEATURES}})
    assert_incorrect(q2.result(), "All seven importances are 0.143", "forest_model.featureImportances")


def test_q2_made_up_importances(rf_train):
    log_run(lesson03.ARTIFACTS_RUN, dicts={lesson03.IMPORTANCES_FILE: IMPORTANCES})
    assert_incorrect(q2.result(), "not the importances of the forest", "'rf-train'", "forest_model.featureImportances")


def test_q2_importances_of_another_forest(rf_train, forest_importances):
    log_run(lesson03.ARTIFACTS_RUN, dicts={lesson03.IMPORTANCES_FILE: forest_importances[3]})
    assert_incorrect(q2.result(), "not the importances of the forest", "numTrees=10")


def test_q2_importances_zipped_with_the_names_in_another_order(rf_train, forest_importances):
    values = [forest_importances[10][name] for name in FEATURES]
    log_run(lesson03.ARTIFACTS_RUN, dicts={lesson03.IMPORTANCES_FILE: dict(zip(sorted(FEATURES), values))})
    assert_incorrect(q2.result(), "Right numbers, wrong names", "order of FEATURES")


def test_q4_the_model_in_memory_is_not_a_reloaded_one(course_spark, tmp_path):
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.feature import VectorAssembler

    from coursekit.data import load_pima

    train, test = load_pima(course_spark.spark).randomSplit([0.7, 0.3], seed=42)
    forest = RandomForestClassifier(labelCol=LABEL, numTrees=3, maxDepth=3, seed=42)
    model = Pipeline(stages=[VectorAssembler(inputCols=FEATURES, outputCol="features"), forest]).fit(train)
    # The shortcut: "reloaded = model" compares the model with itself.
    assert_incorrect(q4.result(model, True), "trained in this notebook", "mlflow.spark.load_model")
    # What mlflow.spark.load_model does underneath: PipelineModel.load of the saved folder.
    model.save(str(tmp_path / "sparkml"))
    reloaded = PipelineModel.load(str(tmp_path / "sparkml"))
    assert q4.result(reloaded, True).outcome is Outcome.CORRECT
