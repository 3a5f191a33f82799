"""Checks for lesson 3, "Log the model, its artifacts, and make the run reproducible".

q1-q3 read the learner's real MLflow store (the latest run with the exercise's run name); q4 and q5 judge a value
the learner computed, q5 against the AUC logged by the lesson's ``rf-train`` run.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable
from typing import Any

import mlflow
import numpy as np
import pyspark
import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from coursekit.data import FEATURES, LABEL, PIMA_SHA256
from coursekit.exercises.checks import (
    CheckResult,
    Exercise,
    close_to,
    correct,
    incorrect,
    is_blank,
    not_attempted,
    unsupported,
)
from coursekit.exercises.store import artifact_paths, find_latest_run, logged_model, read_artifact_text, similar_keys, user_tags
from coursekit.exercises.verdicts import fitted_in_memory, importances_problem, missing_run, still_blank, unfinished_run
from coursekit.settings import experiment_name, on_databricks
from coursekit.spark_models import CONNECT_PREFIX, is_connect

EXPERIMENT = experiment_name("lesson-03-log-model")
TRAIN_RUN = "rf-train"
MODEL_RUN = "ex1-model"
ARTIFACTS_RUN = "ex2-artifacts"
PROVENANCE_RUN = "ex3-provenance"
MODEL_PATH = "rf_model"
IMPORTANCES_FILE = "feature_importances.json"
COMMIT_TAG = "git_commit"
CHECKSUM_TAG = "dataset_sha256"
UNKNOWN_COMMIT = "unknown"
NO_GIT_ON_DATABRICKS = ("On Databricks git finds no repository here (a Git folder does not expose .git), so git_commit "
                        "cannot be compared with a commit; the checksum and the dataset input are right.")
AUC_TOLERANCE = 1e-6


def expected_requirements() -> list[str]:
    """The explicit ``pip_requirements`` the lesson passes for the Spark model."""
    return [f"mlflow=={mlflow.__version__}", f"pyspark=={pyspark.__version__}"]


def current_commit() -> str | None:
    """``git rev-parse HEAD`` in the current folder, or None outside a git checkout (or without git)."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def model_files(run: Run, name: str) -> tuple[list[str], Callable[[str], str | None]]:
    """Files of the model ``name`` logged by ``run`` (relative to the model) and a reader for them.

    MLflow 3.17's Spark flavour writes into the run's artifacts (looked up first); other flavours record a LoggedModel.
    """
    run_id, prefix = run.info.run_id, f"{name}/"
    files = [p[len(prefix):] for p in artifact_paths(run_id) if p.startswith(prefix)]
    if files:
        return files, lambda path: read_artifact_text(f"runs:/{run_id}/{name}/{path}")
    client = MlflowClient()
    model = logged_model(run, name, client)
    if model is None:
        return [], lambda path: None
    root = model.artifact_location.rstrip("/")
    return [a.path for a in client.list_logged_model_artifacts(model.model_id)], lambda path: read_artifact_text(f"{root}/{path}")


def _names(columns_json: object) -> list[str]:
    """Column names of one side of a signature as MLmodel stores it (a JSON string)."""
    return [c.get("name", "") for c in (json.loads(columns_json) if isinstance(columns_json, str) else []) if isinstance(c, dict)]


class LogDescribedModel(Exercise):
    """q1: log the Spark pipeline with explicit requirements, a signature and an input example."""

    key = "q1"
    title = "Log the model with its signature"
    hints = (
        "Four arguments after the model: the artifact path (by position) and pip_requirements, signature, input_example.",
        'The artifact path is "rf_model"; the three keyword values are the variables PIP_REQUIREMENTS, signature and input_example.',
        "Leaving out pip_requirements makes MLflow guess the requirements in a second Spark process: slower, and a longer list.",
    )
    solution_code = """
with mlflow.start_run(run_name="ex1-model"):
    mlflow.log_metric("AUC", auc)
    spark_flavor.log_model(
        model, "rf_model",
        pip_requirements=PIP_REQUIREMENTS, signature=signature, input_example=input_example,
    )
"""

    def evaluate(self) -> CheckResult:
        run = find_latest_run(EXPERIMENT, MODEL_RUN)
        if run is None:
            return missing_run(EXPERIMENT, MODEL_RUN)
        everything = artifact_paths(run.info.run_id)
        files, read = model_files(run, MODEL_PATH)
        others = sorted({p.rsplit("/", 1)[0] for p in everything if p.endswith("/MLmodel")})
        if not files and not others:
            if everything:
                return incorrect(f"Run '{MODEL_RUN}' has artifacts but no model: call mlflow.spark.log_model(model, {MODEL_PATH!r}, ...).")
            return not_attempted(f"Run '{MODEL_RUN}' has no model yet: un-comment the call, fill in the blanks and run the cell again.")
        unfinished = unfinished_run(run)
        if unfinished:
            return unfinished
        if "MLmodel" not in files:
            return incorrect(f"A model was logged under {others[0]!r}; the exercise asks for the artifact path {MODEL_PATH!r}.")
        mlmodel = yaml.safe_load(read("MLmodel") or "") or {}
        if "spark" not in (mlmodel.get("flavors") or {}):
            return incorrect(f"{MODEL_PATH!r} is not a Spark model: log the pipeline with mlflow.spark.log_model.")
        if "python_function" not in mlmodel["flavors"] and is_connect():
            return unsupported(f"{CONNECT_PREFIX} MLflow {mlflow.__version__} cannot log a Connect-fitted model itself, so the "
                               "signature, input example and requirements.txt this exercise checks were not written; check it on local Spark.")
        signature = mlmodel.get("signature") or {}
        inputs = _names(signature.get("inputs"))
        if not inputs:
            return incorrect("MLmodel has no signature: pass signature=signature so the model says which columns it expects.")
        extra, missing = [c for c in inputs if c not in FEATURES], [c for c in FEATURES if c not in inputs]
        if extra:
            return incorrect(f"The signature's inputs include {extra[0]!r}, which the model does not read: infer it from input_example.")
        if missing:
            return incorrect(f"The signature's inputs lack {missing[0]!r}: infer it from input_example, which has all seven features.")
        if not _names(signature.get("outputs")):
            return incorrect("The signature has inputs but no outputs: infer it from (input_example, the model's predictions).")
        if not mlmodel.get("saved_input_example_info"):
            return incorrect("MLmodel has no input example: also pass input_example=input_example (a few rows of pandas).")
        return _judge_requirements(read("requirements.txt"))


def _judge_requirements(text: str | None) -> CheckResult:
    if text is None:
        return incorrect("The model has no requirements.txt: log it with mlflow.spark.log_model, which writes one.")
    lines = sorted(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    wanted = sorted(expected_requirements())
    if lines == wanted:
        return correct("MLmodel records the seven inputs, the prediction output and an example; requirements.txt holds your two lines.")
    extra, missing = [x for x in lines if x not in wanted], [x for x in wanted if x not in lines]
    if missing and not extra:
        return incorrect(f"requirements.txt lacks {missing[0]!r}: pass pip_requirements=PIP_REQUIREMENTS, the full list.")
    if missing and any(x.split("==")[0] == missing[0].split("==")[0] for x in extra):
        return incorrect(f"requirements.txt pins a different version ({extra[0]!r}); pin the versions you run: PIP_REQUIREMENTS.")
    return incorrect(f"requirements.txt also has {extra[0]!r}: MLflow inferred or added lines. Pass pip_requirements=PIP_REQUIREMENTS.")


class LogImportances(Exercise):
    """q2: log the forest's feature importances as a JSON dict artifact."""

    key = "q2"
    title = "Log the feature importances"
    hints = (
        "forest_model.featureImportances has one number per feature, in the order of FEATURES: pair them with zip.",
        "Build {name: float(value)} with zip(FEATURES, forest_model.featureImportances.toArray()).",
        'Then mlflow.log_dict(importances, "feature_importances.json"); log_text(str(dict)) would write Python\'s repr, not JSON.',
    )
    solution_code = """
with mlflow.start_run(run_name="ex2-artifacts"):
    importances = {name: float(value) for name, value in zip(FEATURES, forest_model.featureImportances.toArray())}
    mlflow.log_dict(importances, "feature_importances.json")
"""

    def evaluate(self) -> CheckResult:
        run = find_latest_run(EXPERIMENT, ARTIFACTS_RUN)
        if run is None:
            return missing_run(EXPERIMENT, ARTIFACTS_RUN)
        files = artifact_paths(run.info.run_id)
        as_params = sorted(set(run.data.params) & set(FEATURES))
        if not files and not as_params:
            return not_attempted(f"Run '{ARTIFACTS_RUN}' has no artifact yet: un-comment the lines, fill in the blanks, run it again.")
        unfinished = unfinished_run(run)
        if unfinished:
            return unfinished
        if IMPORTANCES_FILE not in files:
            if as_params:
                return incorrect(f"The importances were logged as params ({as_params[0]!r}, …): log_dict stores the dict as one file.")
            near = [f for f in files if "importance" in f.lower()]
            if near:
                return incorrect(f"Found {near[0]!r}, but the exercise asks for the artifact file {IMPORTANCES_FILE!r}.")
            return incorrect(f"No {IMPORTANCES_FILE!r} in the run (found {', '.join(files)}): log it with mlflow.log_dict.")
        try:
            importances = json.loads(read_artifact_text(f"runs:/{run.info.run_id}/{IMPORTANCES_FILE}") or "")
        except ValueError:
            return incorrect(f"{IMPORTANCES_FILE} is not valid JSON: log the dict with mlflow.log_dict, not mlflow.log_text(str(...)).")
        return _judge_importances(importances)


def _judge_importances(importances: Any) -> CheckResult:
    if not isinstance(importances, dict):
        return incorrect(f"{IMPORTANCES_FILE} holds a {type(importances).__name__}, not a dict: map each feature name to its importance.")
    keys = [str(k) for k in importances]
    if set(keys) != set(FEATURES):
        if all(k.lstrip("f").isdigit() for k in keys):
            return incorrect(f"The keys are positions ({keys[0]!r}, …), not feature names: zip FEATURES with the importances.")
        extra = [k for k in keys if k not in FEATURES]
        if extra:
            why = " (that is the label, not a feature)" if extra[0] == LABEL else ""
            return incorrect(f"Key {extra[0]!r} is not one of the seven features{why}: use exactly the names in FEATURES.")
        missing = [f for f in FEATURES if f not in keys]
        return incorrect(f"Feature {missing[0]!r} is missing from the dict: include all seven names in FEATURES.")
    values = list(importances.values())
    if any(isinstance(v, str) for v in values):
        return incorrect("The importances are stored as text: convert each one with float(value) before logging.")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0 for v in values):
        return incorrect("Each importance must be a number between 0 and 1: take them from forest_model.featureImportances.")
    if not close_to(sum(values), 1.0, 1e-4):
        return incorrect(f"The importances add up to {sum(values):.3f}, not 1: take all seven from forest_model.featureImportances.")
    mismatch = importances_problem(importances, find_latest_run(EXPERIMENT, TRAIN_RUN))
    if mismatch:
        return mismatch
    top = max(importances, key=importances.get)
    return correct(f"The forest leans most on {top!r} ({importances[top]:.2f}); the file opens as formatted JSON in the UI.")


class RecordProvenance(Exercise):
    """q3: tag the code version and the dataset checksum, and log the dataset as an input."""

    key = "q3"
    title = "Record where the model came from"
    hints = (
        "Two tags (git_commit, dataset_sha256) from the variables computed above, then one mlflow.log_input call.",
        'mlflow.set_tags({"git_commit": code_version, "dataset_sha256": dataset_sha256}), then log_input(dataset, context="training").',
        "The checksum is SHA-256 of the CSV file's bytes (file_sha256), not MLflow's dataset digest.",
    )
    solution_code = """
with mlflow.start_run(run_name="ex3-provenance"):
    mlflow.set_tags({"git_commit": code_version, "dataset_sha256": dataset_sha256})
    mlflow.log_input(dataset, context="training")
"""

    def evaluate(self) -> CheckResult:
        run = find_latest_run(EXPERIMENT, PROVENANCE_RUN)
        if run is None:
            return missing_run(EXPERIMENT, PROVENANCE_RUN)
        tags, params = user_tags(run), run.data.params
        inputs = run.inputs.dataset_inputs if run.inputs else []
        if not tags and not params and not inputs:
            return not_attempted(f"Run '{PROVENANCE_RUN}' has no tags yet: fill in the blanks and run the cell again.")
        problem = still_blank({**params, **tags}) or unfinished_run(run)
        if problem:
            return problem
        for name in (COMMIT_TAG, CHECKSUM_TAG):
            if name not in tags:
                if name in params:
                    return incorrect(f"{name!r} was logged as a param: facts about where a run came from are tags (mlflow.set_tags).")
                near = similar_keys(name, tags)
                if near:
                    return incorrect(f"Found tag {near[0]!r}, but the exercise asks for {name!r}: tag keys are exact.")
                return incorrect(f"Tag {name!r} is missing: set it with mlflow.set_tags.")
        problem = _commit_problem(tags[COMMIT_TAG]) or _checksum_problem(tags[CHECKSUM_TAG], inputs)
        if problem:
            return problem
        if not inputs:
            return incorrect('Both tags are right, but no dataset input was logged: add mlflow.log_input(dataset, context="training").')
        contexts = {t.value for i in inputs for t in i.tags if t.key == "mlflow.data.context"}
        if "training" not in contexts:
            return incorrect(f'The dataset input has context {sorted(contexts) or "none"}: log it with context="training".')
        if current_commit() is None and on_databricks():  # a Databricks Git folder does not show git its .git
            return unsupported(NO_GIT_ON_DATABRICKS)
        return correct("Anyone can now check out that commit, verify the data by its checksum, and re-run.")


def _commit_problem(value: str) -> CheckResult | None:
    head = current_commit()
    if value == head or (head is None and value.strip()):
        return None
    if head is None:
        return incorrect(f"Tag {COMMIT_TAG} is empty: outside a git checkout, record {UNKNOWN_COMMIT!r}.")
    if value.strip() == head:
        return incorrect(f"Tag {COMMIT_TAG} has extra whitespace around the commit: .strip() git's output.")
    if value == UNKNOWN_COMMIT:
        return incorrect(f"Tag {COMMIT_TAG} is {UNKNOWN_COMMIT!r}, but this is a git checkout: record `git rev-parse HEAD` ({head[:7]}…)")
    if len(value) >= 4 and head.startswith(value):
        return incorrect(f"Tag {COMMIT_TAG} is a short hash ({value!r}): record the full 40-character commit.")
    return incorrect(f"Tag {COMMIT_TAG} is {value[:12]!r}…, but HEAD is {head[:7]}…: record `git rev-parse HEAD` (committed? re-run).")


def _checksum_problem(value: str, inputs: list[Any]) -> CheckResult | None:
    text = value.strip().lower()
    if value == PIMA_SHA256:
        return None
    if text == PIMA_SHA256:
        return incorrect(f"Tag {CHECKSUM_TAG} differs only in case or spaces: store the hex digest exactly as file_sha256 returns it.")
    if value in {i.dataset.digest for i in inputs} or len(text) == 8:
        return incorrect(f"Tag {CHECKSUM_TAG} looks like MLflow's dataset digest, a hash of the query, not the file: use file_sha256.")
    kind = {32: "an MD5", 40: "a SHA-1"}.get(len(text))
    if kind:
        return incorrect(f"Tag {CHECKSUM_TAG} has {len(text)} characters, {kind} digest: the lesson records SHA-256 (64 characters).")
    return incorrect(f"Tag {CHECKSUM_TAG} is not the SHA-256 of the dataset file: hash its bytes with file_sha256(dataset_path()).")


_NOT_A_BOOL = {
    "DataFrame": "collect the 'prediction' column of each and compare the lists with ==.",
    "Column": "a Spark Column is an expression, not a value: collect both columns first.",
    "list": "== between two lists gives one True or False; compare the two lists, not one of them.",
    "Series": "element-wise results: compare lists with ==, or reduce with .all().",
    "ndarray": "element-wise results: compare lists with ==, or reduce with .all().",
}


class ReloadModel(Exercise):
    """q4: reload the logged Spark model and compare its predictions with the in-memory model."""

    key = "q4"
    title = "Reload the model and compare predictions"
    hints = (
        "spark_flavor.load_model(model_info.model_uri) (i.e. mlflow.spark.load_model) returns a Spark PipelineModel; "
        "transform test with both models.",
        "Collect each prediction column into a list ([row.prediction for row in ....collect()]) and compare the lists with ==.",
    )
    solution_code = """
reloaded = spark_flavor.load_model(model_info.model_uri)
before = [row.prediction for row in model.transform(test).select("prediction").collect()]
after = [row.prediction for row in reloaded.transform(test).select("prediction").collect()]
same_predictions = before == after
"""

    def evaluate(self, reloaded: object = None, same_predictions: object = None) -> CheckResult:
        if is_blank(reloaded):
            return not_attempted("reloaded is still blank: load the logged model with mlflow.spark.load_model.")
        kind = type(reloaded).__name__
        if isinstance(reloaded, str):
            return incorrect("reloaded is a string (the model URI): pass it to mlflow.spark.load_model to get the model back.")
        if kind == "PyFuncModel":
            return incorrect("reloaded is the generic pyfunc wrapper, which has no .transform: use mlflow.spark.load_model.")
        if kind != "PipelineModel":
            return incorrect(f"reloaded is a {kind}; mlflow.spark.load_model returns a PipelineModel.")
        if fitted_in_memory(reloaded):
            return incorrect("reloaded is the model trained in this notebook, not a copy read back from the store: "
                             "load it with mlflow.spark.load_model(model_info.model_uri).")
        if is_blank(same_predictions):
            return not_attempted("same_predictions is still blank: compare the two prediction lists.")
        if isinstance(same_predictions, (bool, np.bool_)):
            if same_predictions:
                return correct("The model read back from the store predicts exactly what the trained one did.")
            return incorrect("same_predictions is False: transform test with both models and compare the collected 'prediction' columns.")
        shape = type(same_predictions).__name__
        return incorrect(f"same_predictions is a {shape}, not True or False: {_NOT_A_BOOL.get(shape, 'it should be True or False.')}")


class RetrainFromParams(Exercise):
    """q5: rebuild the forest from the logged params and reproduce the logged AUC."""

    key = "q5"
    title = "Re-train from the logged params"
    hints = (
        "Read numTrees, maxDepth and seed from logged_params; they are strings, so convert them with int().",
        "Build RandomForestClassifier(labelCol=LABEL, numTrees=..., maxDepth=..., seed=...), fit a Pipeline on train, evaluate on test.",
        "Without the logged seed the forest draws different samples and the AUC moves.",
    )
    solution_code = """
again = RandomForestClassifier(
    labelCol=LABEL, numTrees=int(logged_params["numTrees"]),
    maxDepth=int(logged_params["maxDepth"]), seed=int(logged_params["seed"]),
)
reproduced_auc = evaluator.evaluate(Pipeline(stages=[assembler, again]).fit(train).transform(test))
"""

    def evaluate(self, reproduced_auc: object = None) -> CheckResult:
        if is_blank(reproduced_auc):
            return not_attempted("reproduced_auc is still blank: re-train from the logged params and evaluate on test.")
        run = find_latest_run(EXPERIMENT, TRAIN_RUN)
        if run is None or "AUC" not in run.data.metrics:
            return not_attempted(f"No '{TRAIN_RUN}' run with an AUC in '{EXPERIMENT}': run the training cell of section 1 first.")
        if isinstance(reproduced_auc, bool) or not isinstance(reproduced_auc, (int, float)):
            return incorrect(f"reproduced_auc is a {type(reproduced_auc).__name__}; evaluator.evaluate(...) returns the AUC as a float.")
        value, logged = float(reproduced_auc), run.data.metrics["AUC"]
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            return incorrect(f"reproduced_auc is {value}, outside 0…1: pass the number evaluator.evaluate returns.")
        if close_to(value, logged, AUC_TOLERANCE):
            return correct(f"Re-trained from the logged params, the AUC is {value:.4f} again (tolerance {AUC_TOLERANCE:g}).")
        off = f"off by {abs(value - logged):.4f}"
        return incorrect(f"reproduced_auc is {value:.4f}, but '{TRAIN_RUN}' logged {logged:.4f} ({off}): use every param and the seed.")


q1 = LogDescribedModel()
q2 = LogImportances()
q3 = RecordProvenance()
q4 = ReloadModel()
q5 = RetrainFromParams()
