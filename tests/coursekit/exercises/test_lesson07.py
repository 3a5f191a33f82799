"""Lesson 7 checks against a real (temporary) MLflow store and model registry.

Spark is not started: candidate runs get an AUC metric, params and a fake ``rf_model``
(an ``MLmodel`` text file), which ``mlflow.register_model`` accepts in MLflow 3.17 as it
only looks for that file. Each check: the reference answer, not attempted, typical mistakes.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
from mlflow.entities.model_registry.model_version_search import ModelVersionSearch
from mlflow.entities.model_registry.registered_model_search import RegisteredModelSearch
from mlflow.exceptions import MlflowException
from mlflow.store.entities.paged_list import PagedList
from mlflow.tracking import MlflowClient
from store_helpers import assert_incorrect, set_aliases, store_template

from coursekit import BLANK, Outcome, tracking
from coursekit.exercises import lesson07
from coursekit.exercises.lesson07 import EXPERIMENT, MODEL_NAME, q1, q2, q3, q4, q5

pytestmark = pytest.mark.usefixtures("lesson_experiment")

BASELINE = {"numTrees": "3", "maxDepth": "2", "featureSubsetStrategy": "auto", "seed": "42"}
BEST = {"numTrees": "60", "maxDepth": "3", "featureSubsetStrategy": "sqrt", "seed": "42"}
MIDDLE = {"numTrees": "20", "maxDepth": "8", "featureSubsetStrategy": "auto", "seed": "42"}


UC_PAGE = 2  # a small page size, so a check that ignores page tokens misses versions


def behave_like_unity_catalog(monkeypatch):
    """Make every MlflowClient answer like Databricks' Unity Catalog registry (MLflow 3.17's ``databricks-uc`` store).

    ``search_model_versions`` refuses ``order_by`` and any filter but one ``name = '…'`` or ``run_id = '…'``;
    ``search_registered_models`` refuses ``filter_string`` and ``order_by``. Their results are MLflow's own
    ``ModelVersionSearch`` / ``RegisteredModelSearch``, as the Unity Catalog store returns them: no tags, no aliases
    (``.tags`` and ``.aliases`` are methods that raise when called), and they come in small pages. Stages are
    unsupported. ``get_registered_model``, ``get_model_version`` and ``get_model_version_by_alias`` stay as they are.
    """
    real_versions, real_models = MlflowClient.search_model_versions, MlflowClient.search_registered_models

    def version_found(v):
        return ModelVersionSearch(
            name=v.name, version=v.version, creation_timestamp=v.creation_timestamp, last_updated_timestamp=v.last_updated_timestamp,
            description=v.description, user_id=v.user_id, source=v.source, run_id=v.run_id, status=v.status,
            status_message=v.status_message,
        )

    def model_found(m):
        return RegisteredModelSearch(m.name, m.creation_timestamp, m.last_updated_timestamp, m.description)

    def search_model_versions(self, filter_string=None, max_results=10_000, order_by=None, page_token=None):
        if order_by:
            raise MlflowException("Unity Catalog: search_model_versions does not support order_by")
        if not re.fullmatch(r"\s*(name|run_id)\s*=\s*'[^']*'\s*", filter_string or ""):
            raise MlflowException(f"Unity Catalog: one condition, name = '...' or run_id = '...', not {filter_string!r}")
        page = real_versions(self, filter_string, min(max_results, UC_PAGE), None, page_token)
        return PagedList([version_found(v) for v in page], page.token)

    def search_registered_models(self, filter_string=None, max_results=100, order_by=None, page_token=None):
        if filter_string or order_by:
            raise MlflowException("Unity Catalog: search_registered_models takes no filter_string or order_by")
        page = real_models(self, None, min(max_results, UC_PAGE), None, page_token)
        return PagedList([model_found(m) for m in page], page.token)

    def no_stages(*args, **kwargs):
        raise MlflowException("Unity Catalog has no stages: use aliases")

    monkeypatch.setattr(MlflowClient, "search_model_versions", search_model_versions)
    monkeypatch.setattr(MlflowClient, "search_registered_models", search_registered_models)
    monkeypatch.setattr(MlflowClient, "get_latest_versions", no_stages)
    monkeypatch.setattr(MlflowClient, "transition_model_version_stage", no_stages)


@pytest.fixture(autouse=True, params=["mlflow-registry", "unity-catalog-like"])
def registry(request, monkeypatch):
    """Every test runs twice: against MLflow's own registry, and against one that answers like Unity Catalog."""
    if request.param == "unity-catalog-like":
        behave_like_unity_catalog(monkeypatch)
    return request.param


def log_candidate(auc, params=BASELINE, path="rf_model"):
    """A finished candidate run with AUC, params and a fake model under ``path``; returns the run id."""
    with mlflow.start_run(run_name=f"try trees={params['numTrees']}") as run:
        mlflow.log_params(params)
        mlflow.log_metric("AUC", auc)
        mlflow.log_text("flavors: {spark: {}}", f"{path}/MLmodel")
    return run.info.run_id


def register(run_id, name=MODEL_NAME):
    return mlflow.register_model(f"runs:/{run_id}/rf_model", name)


@store_template
def two_versions_store():
    """Version 1 = baseline (AUC 0.80), version 2 = best (AUC 0.841); a middle run stays unregistered.
    Built once (before the ``registry`` fixture makes the client Unity-Catalog-like); returns the version numbers."""
    baseline = register(log_candidate(0.80, BASELINE))
    log_candidate(0.822, MIDDLE)
    best = register(log_candidate(0.841, BEST))
    return baseline.version, best.version


@pytest.fixture
def two_versions(two_versions_store, client):
    """The test's own copy of ``two_versions_store``: its (baseline, best) model versions."""
    return tuple(client.get_model_version(MODEL_NAME, version) for version in two_versions_store.value)


# --- helpers ------------------------------------------------------------------------------------


def test_registry_helpers_read_versions_aliases_and_lineage(two_versions, client):
    assert [int(v.version) for v in lesson07.registered_versions()] == [1, 2]
    assert lesson07.model_aliases() == {}
    set_aliases(client, champion=2)
    assert lesson07.model_aliases() == {"champion": 2}
    assert lesson07.version_aucs() == pytest.approx({1: 0.80, 2: 0.841})
    assert lesson07.model_aliases(name="no-such-model") is None
    assert lesson07.registered_versions(name="no-such-model") == []


def test_versions_are_read_page_by_page_and_sorted_here(two_versions, registry, client):
    register(log_candidate(0.83, MIDDLE))  # three versions: more than one Unity-Catalog-like page
    assert [int(v.version) for v in lesson07.registered_versions()] == [1, 2, 3]
    if registry == "unity-catalog-like":  # the fake is as strict as the real store
        listed = client.search_model_versions(f"name = '{MODEL_NAME}'")
        assert len(listed) == UC_PAGE and not isinstance(listed[0].tags, dict)
        with pytest.raises(MlflowException, match="order_by"):
            client.search_model_versions(f"name = '{MODEL_NAME}'", order_by=["version_number ASC"])


def test_a_fake_model_file_is_enough_to_register(two_versions):
    baseline, best = two_versions
    assert baseline.status == "READY" and best.source.endswith("/rf_model")


def test_every_check_is_not_attempted_in_a_fresh_store():
    for exercise, answer in ((q1, BLANK), (q3, BLANK), (q5, BLANK)):
        assert exercise.result(answer).outcome is Outcome.NOT_ATTEMPTED
    for exercise in (q2, q4):
        result = exercise.result()
        assert result.outcome is Outcome.NOT_ATTEMPTED
        assert MODEL_NAME in result.message


# --- q1: register the best run's model ----------------------------------------------------------


def test_q1_correct_with_the_reference_solution(two_versions):
    best = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=1)
    version = register(best.loc[0, "run_id"])
    result = q1.result(version)
    assert result.outcome is Outcome.CORRECT
    assert "0.841" in result.message and "3 versions" in result.message


def test_q1_a_tie_from_a_second_run_of_the_lesson_is_correct(two_versions):
    again = register(log_candidate(0.841, BEST))
    assert q1.result(again).outcome is Outcome.CORRECT
    assert q1.result(two_versions[1]).outcome is Outcome.CORRECT


def test_q1_accepts_the_model_info_of_log_model_with_registered_model_name(two_versions):
    best = two_versions[1]
    info = SimpleNamespace(model_uri=f"runs:/{best.run_id}/rf_model", run_id=best.run_id, registered_model_version=2)
    assert q1.result(info).outcome is Outcome.CORRECT


@pytest.mark.parametrize("answer", [BLANK, None, ...])
def test_q1_blank_is_not_attempted(two_versions, answer):
    assert q1.result(answer).outcome is Outcome.NOT_ATTEMPTED


def test_q1_registered_a_run_that_is_not_the_best(two_versions):
    assert_incorrect(q1.result(two_versions[0]), "0.800", "0.841", "metrics.AUC DESC")


def test_q1_run_id_instead_of_a_version(two_versions):
    assert_incorrect(q1.result(two_versions[1].run_id), "run id", "mlflow.register_model")


def test_q1_model_uri_string_instead_of_a_version(two_versions):
    assert_incorrect(q1.result(f"runs:/{two_versions[1].run_id}/rf_model"), "the string", "ModelVersion")


def test_q1_registered_under_a_look_alike_name(two_versions):
    stranger = register(two_versions[1].run_id, name="pima_diabetes_rf")
    assert_incorrect(q1.result(stranger), "'pima_diabetes_rf'", MODEL_NAME, "exact")


def test_q1_logged_but_never_registered():
    info = SimpleNamespace(model_uri="runs:/abc/rf_model", run_id="abc", registered_model_version=None)
    assert_incorrect(q1.result(info), "never registered", "mlflow.register_model")


def test_q1_the_whole_registered_model_instead_of_one_version(two_versions, client):
    assert_incorrect(q1.result(client.get_registered_model(MODEL_NAME)), "RegisteredModel", "one model version")


def test_q1_a_run_of_another_experiment(two_versions):
    tracking.ensure_experiment("someone-elses-experiment")  # artifacts in the temporary store, not ./mlruns
    mlflow.set_experiment("someone-elses-experiment")
    stranger = register(log_candidate(0.99, BEST))
    assert_incorrect(q1.result(stranger), "another experiment", EXPERIMENT)


def test_q1_a_version_without_a_run(two_versions, client):
    orphan = client.create_model_version(MODEL_NAME, source=two_versions[1].source)
    assert_incorrect(q1.result(orphan), "no run behind it", "runs:/")


def test_q1_only_one_version():
    best = register(log_candidate(0.841, BEST))
    assert_incorrect(q1.result(best), "only this one version", "baseline")


def test_q1_a_deleted_version(two_versions, client):
    client.delete_model_version(MODEL_NAME, "2")
    assert_incorrect(q1.result(two_versions[1]), "not in the registry")


# --- q2: descriptions and tags ------------------------------------------------------------------


def describe_and_tag(client, *, description="Flags diabetes.", task=("task", "binary-classification"), auc_key="test_auc"):
    if description:
        client.update_registered_model(MODEL_NAME, description=description)
    if task:
        client.set_registered_model_tag(MODEL_NAME, *task)
    if auc_key:
        for v in client.search_model_versions(f"name = '{MODEL_NAME}'"):
            auc = client.get_run(v.run_id).data.metrics["AUC"]
            client.set_model_version_tag(MODEL_NAME, v.version, auc_key, f"{auc:.3f}")


def test_q2_correct(two_versions, client):
    describe_and_tag(client)
    assert q2.result().outcome is Outcome.CORRECT


def test_q2_nothing_done_yet_is_not_attempted(two_versions):
    result = q2.result()
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "no description or tags yet" in result.message


def test_q2_model_registered_under_a_look_alike_name():
    register(log_candidate(0.8), name="Pima-Diabetes-RF")
    assert_incorrect(q2.result(), "'Pima-Diabetes-RF'", "exact")


def test_q2_description_on_a_version_instead_of_the_model(two_versions, client):
    describe_and_tag(client, description=None)
    client.update_model_version(MODEL_NAME, "1", description="the baseline")
    assert_incorrect(q2.result(), "Version 1 has a description", "update_registered_model")


def test_q2_no_description(two_versions, client):
    describe_and_tag(client, description=None)
    assert_incorrect(q2.result(), "no description", "update_registered_model")


@pytest.mark.parametrize(
    ("task", "words"),
    [
        (None, ["no tag 'task'", "set_registered_model_tag"]),
        (("Task", "binary-classification"), ["'Task'", "'task'", "exact"]),
        (("task", "classification"), ["'classification'", "'binary-classification'"]),
    ],
)
def test_q2_task_tag_mistakes(two_versions, client, task, words):
    describe_and_tag(client, task=task)
    assert_incorrect(q2.result(), *words)


def test_q2_task_tag_on_a_version(two_versions, client):
    describe_and_tag(client, task=None)
    client.set_model_version_tag(MODEL_NAME, "2", "task", "binary-classification")
    assert_incorrect(q2.result(), "tag of version 2", "whole model")


def test_q2_a_version_registered_after_the_loop(two_versions, client):
    describe_and_tag(client)
    register(log_candidate(0.83, MIDDLE))
    assert_incorrect(q2.result(), "Version 3 has no tag 'test_auc'", "every version")


def test_q2_auc_tag_on_the_model_instead_of_the_versions(two_versions, client):
    describe_and_tag(client, auc_key=None)
    client.set_registered_model_tag(MODEL_NAME, "test_auc", "0.841")
    assert_incorrect(q2.result(), "tag of the registered model", "set_model_version_tag")


@pytest.mark.parametrize("key", ["Test_AUC", "test-auc", "testAUC"])
def test_q2_auc_tag_with_a_look_alike_key(two_versions, client, key):
    describe_and_tag(client, auc_key=key)
    assert_incorrect(q2.result(), repr(key), "'test_auc'", "exact")


@pytest.mark.parametrize(("value", "words"), [("0.9", ["'0.9'", "0.800"]), ("high", ["'high'", "client.get_run"])])
def test_q2_auc_tag_with_a_wrong_value(two_versions, client, value, words):
    describe_and_tag(client)
    client.set_model_version_tag(MODEL_NAME, "1", "test_auc", value)
    assert_incorrect(q2.result(), "Version 1", *words)


# --- q3: load the champion by alias and score it -------------------------------------------------


def test_q3_correct(two_versions, client):
    set_aliases(client, champion=1)
    result = q3.result(0.80 + 1e-6)
    assert result.outcome is Outcome.CORRECT
    assert "version 1" in result.message and "0.800" in result.message


@pytest.mark.parametrize("answer", [BLANK, None])
def test_q3_blank_is_not_attempted(two_versions, answer):
    assert q3.result(answer).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (pd.DataFrame({"AUC": [0.8]}), ["DataFrame", "not a number"]),
        ("0.8", ["str", "not a number"]),
        (True, ["bool", "not a number"]),
        (1.5, ["1.5", "outside 0…1"]),
    ],
)
def test_q3_not_an_auc(two_versions, client, answer, words):
    set_aliases(client, champion=1)
    assert_incorrect(q3.result(answer), *words)


def test_q3_auc_of_another_version(two_versions, client):
    set_aliases(client, champion=1)
    assert_incorrect(q3.result(0.841), "version 2", "champion is version 1", "@champion")


def test_q3_auc_on_the_training_rows(two_versions, client):
    set_aliases(client, champion=1)
    assert_incorrect(q3.result(0.95), "0.950", "0.800", "test_rows")


def test_q3_no_champion_yet(two_versions):
    assert_incorrect(q3.result(0.8), "No version has the alias 'champion'")


def test_q3_alias_with_a_capital_letter(two_versions, client):
    set_aliases(client, Champion=1)
    assert_incorrect(q3.result(0.8), "'Champion'", "case-sensitive")


def test_q3_no_model_is_not_attempted():
    assert q3.result(0.8).outcome is Outcome.NOT_ATTEMPTED


# --- q4: compare, then promote ------------------------------------------------------------------


def test_q4_correct_after_a_promotion(two_versions, client):
    set_aliases(client, champion=2, challenger=1)
    result = q4.result()
    assert result.outcome is Outcome.CORRECT
    assert "champion -> version 2" in result.message


def test_q4_a_tie_keeps_the_champion(two_versions, client):
    register(log_candidate(0.841, BEST))
    set_aliases(client, champion=2, challenger=3)
    assert q4.result().outcome is Outcome.CORRECT


def test_q4_no_challenger_yet_is_not_attempted(two_versions, client):
    set_aliases(client, champion=1)
    assert q4.result().outcome is Outcome.NOT_ATTEMPTED


def test_q4_better_challenger_not_promoted(two_versions, client):
    set_aliases(client, champion=1, challenger=2)
    assert_incorrect(q4.result(), "beats the champion", "not moved", "version 2")


def test_q4_both_aliases_on_the_same_version(two_versions, client):
    set_aliases(client, champion=2, challenger=2)
    assert_incorrect(q4.result(), "Both aliases point at version 2", "old champion")


def test_q4_champion_moved_to_a_version_that_is_not_the_best(two_versions, client):
    register(log_candidate(0.822, MIDDLE))
    set_aliases(client, champion=3, challenger=1)
    assert_incorrect(q4.result(), "version 3", "version 2", "best version")


def test_q4_alias_with_a_capital_letter(two_versions, client):
    set_aliases(client, champion=2, Challenger=1)
    assert_incorrect(q4.result(), "'Challenger'", "case-sensitive")


def test_q4_challenger_without_champion(two_versions, client):
    set_aliases(client, challenger=2)
    assert_incorrect(q4.result(), "no champion")


# --- q5: lineage --------------------------------------------------------------------------------


@pytest.fixture
def promoted(two_versions, client):
    set_aliases(client, champion=2, challenger=1)
    return two_versions


def test_q5_correct_with_the_reference_solution(promoted, client):
    version = client.get_model_version_by_alias(MODEL_NAME, "champion")
    result = q5.result(dict(client.get_run(version.run_id).data.params))
    assert result.outcome is Outcome.CORRECT
    assert "numTrees=60" in result.message


def test_q5_a_subset_with_numbers_or_search_runs_keys_is_correct(promoted):
    assert q5.result({"numTrees": 60, "maxDepth": 3}).outcome is Outcome.CORRECT
    assert q5.result({"params.numTrees": "60", "params.maxDepth": "3"}).outcome is Outcome.CORRECT


@pytest.mark.parametrize("answer", [BLANK, None, ...])
def test_q5_blank_is_not_attempted(promoted, answer):
    assert q5.result(answer).outcome is Outcome.NOT_ATTEMPTED


def test_q5_the_whole_run(promoted, client):
    run = client.get_run(promoted[1].run_id)
    assert_incorrect(q5.result(run), "whole Run", "run.data.params")


def test_q5_not_a_dict(promoted):
    assert_incorrect(q5.result(["60", "3"]), "list", "dict")


def test_q5_params_of_the_challenger(promoted):
    assert_incorrect(q5.result(dict(BASELINE)), "version 1 (challenger)", "not of the champion", "get_model_version_by_alias")


def test_q5_metrics_instead_of_params(promoted):
    assert_incorrect(q5.result({"AUC": 0.841}), "metrics", "run.data.params")


def test_q5_missing_max_depth(promoted):
    assert_incorrect(q5.result({"numTrees": "60"}), "'maxDepth'")


def test_q5_a_key_the_run_does_not_have(promoted):
    assert_incorrect(q5.result({**BEST, "num_trees": "60"}), "'num_trees'", "not a param")


def test_q5_a_retyped_wrong_value(promoted):
    assert_incorrect(q5.result({**BEST, "maxDepth": "4"}), "maxDepth", "'4'", "'3'")


def test_q5_no_champion(two_versions):
    assert_incorrect(q5.result(dict(BEST)), "No version has the alias 'champion'")


# --- issue 9: the "best run" of the reference search is one the check must not accept ------------


@pytest.mark.parametrize("status", ["FAILED", "KILLED", "RUNNING"])
def test_q1_the_best_run_did_not_finish(two_versions, client, status):
    unfinished = log_candidate(0.86, MIDDLE)
    client.set_terminated(unfinished, status)
    best = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=1)
    assert best.loc[0, "run_id"] == unfinished
    assert_incorrect(q1.result(register(unfinished)), status, "not FINISHED", "attributes.status", "mlflow.delete_run")


def test_q1_the_best_run_was_deleted(two_versions):
    gone = log_candidate(0.86, MIDDLE)
    version = register(gone)
    mlflow.delete_run(gone)
    assert_incorrect(q1.result(version), "was deleted", "search again")
