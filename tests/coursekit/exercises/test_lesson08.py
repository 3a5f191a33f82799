"""Lesson 8 (capstone) checks against a real (temporary) MLflow store and model registry.

Attempts are runs built like ``Tuner.train_and_log`` builds them (tag ``source``, the six
settings, ``AUC``) plus a fake ``rf_model/MLmodel`` so they can be registered; Spark is not
started. Each check: the reference answer, not attempted, and the mistakes it must name.
"""

from __future__ import annotations

import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from store_helpers import assert_incorrect, set_aliases, store_template
from test_lesson07 import registry  # noqa: F401 - autouse: every test also runs against a Unity-Catalog-like registry

from coursekit import BLANK, Outcome, tracking
from coursekit.exercises import lesson07, lesson08
from coursekit.exercises.lesson08 import BUDGET, EXPERIMENT, MAX_DEPTH_LIMIT, MODEL_NAME, attempts_this_round, q1, q2, q3
from coursekit.tuning import SOURCE, SOURCE_TAG

pytestmark = pytest.mark.usefixtures("lesson_experiment")


_counter = {"n": 0}


def attempt(auc, depth=4, *, trees=50, status="FINISHED"):
    """One tuning attempt as the Tuner logs it, with a fake model; returns its run id."""
    _counter["n"] += 1
    settings = {"numTrees": trees, "maxDepth": depth, "featureSubsetStrategy": "sqrt", "impurity": "gini",
                "subsamplingRate": 1.0, "minInstancesPerNode": 1}
    with mlflow.start_run(run_name=f"try-{_counter['n']:02d} depth={depth}") as run:
        mlflow.set_tags({SOURCE_TAG: SOURCE, "attempt": str(_counter["n"])})
        mlflow.log_params({"model_type": "RandomForest", **settings, "seed": 42})
        mlflow.log_metric("AUC", auc)
        mlflow.log_text("flavors: {spark: {}}", "rf_model/MLmodel")
    if status != "FINISHED":
        MlflowClient().set_terminated(run.info.run_id, status)
    time.sleep(0.002)  # start times are in milliseconds
    return run.info.run_id


def register(run_id, *, tag=True, description="Capstone: best allowed attempt."):
    """Register the run's fake model, with the test_auc tag and a description like the reference solution."""
    client = MlflowClient()
    version = mlflow.register_model(f"runs:/{run_id}/rf_model", MODEL_NAME)
    auc = client.get_run(run_id).data.metrics["AUC"]
    if tag:
        client.set_model_version_tag(MODEL_NAME, version.version, "test_auc", f"{auc:.3f}")
    if description:
        client.update_model_version(MODEL_NAME, version.version, description=description)
    time.sleep(0.01)  # later attempts start after this registration
    return client.get_model_version(MODEL_NAME, version.version)


@store_template
def champion_store():
    """A baseline champion (AUC 0.80) registered from a plain run, as step 3 does; returns its version number."""
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_metric("AUC", 0.80)
        mlflow.log_params({"numTrees": 3, "maxDepth": 2})
        mlflow.log_text("flavors: {spark: {}}", "rf_model/MLmodel")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/rf_model", MODEL_NAME)
    MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version.version)
    time.sleep(0.01)
    return version.version


@pytest.fixture
def champion(champion_store, client):
    """The baseline champion's model version (``champion_store``), read from the test's copy of the store."""
    return client.get_model_version(MODEL_NAME, champion_store.value)


@store_template(base="champion_store")
def search_store(champion_version):
    """After the champion: a round of four attempts, the best overall too deep; returns (best allowed, runner-up,
    too deep) run ids."""
    runner_up = attempt(0.83, depth=3)
    best = attempt(0.846, depth=6)
    too_deep = attempt(0.85, depth=10)
    attempt(0.81, depth=8)
    return best, runner_up, too_deep


@pytest.fixture
def search(search_store):
    """``search_store`` in the test's copy of the store: (best allowed, runner-up, too deep) run ids."""
    return search_store.value


# --- rounds and the budget ------------------------------------------------------------------------


def test_attempts_this_round_counts_since_the_last_capstone_registration(search):
    board = attempts_this_round()
    assert len(board) == 4
    assert board.loc[0, "AUC"] == pytest.approx(0.85)
    assert list(board["maxDepth"]) == [10, 6, 3, 8]  # numbers, best AUC first
    register(search[0])
    assert len(attempts_this_round()) == 0
    attempt(0.80)
    assert len(attempts_this_round()) == 1


def test_the_baseline_registration_does_not_start_a_round(champion):
    attempt(0.82)
    assert len(attempts_this_round()) == 1
    assert lesson08.capstone_versions() == []


def test_deleted_attempts_still_count(client, champion):
    run_id = attempt(0.82)
    client.delete_run(run_id)
    assert len(lesson08.attempts()) == 1 and len(attempts_this_round()) == 1


def test_every_check_is_not_attempted_in_a_fresh_store():
    assert q1.result(BLANK).outcome is Outcome.NOT_ATTEMPTED
    assert q1.result("0" * 32).outcome is Outcome.NOT_ATTEMPTED
    assert q2.result(BLANK).outcome is Outcome.NOT_ATTEMPTED
    assert q3.result(BLANK).outcome is Outcome.NOT_ATTEMPTED


# --- q1: best allowed attempt within the budget --------------------------------------------------


def test_q1_correct_with_the_reference_solution(search):
    board = attempts_this_round()
    allowed = board[(board["maxDepth"] <= MAX_DEPTH_LIMIT) & (board["status"] == "FINISHED")]
    result = q1.result(allowed.iloc[0]["run_id"])
    assert result.outcome is Outcome.CORRECT
    assert "0.846" in result.message and f"4 of {BUDGET}" in result.message


@pytest.mark.parametrize("answer", [BLANK, None, ...])
def test_q1_blank_is_not_attempted(search, answer):
    assert q1.result(answer).outcome is Outcome.NOT_ATTEMPTED


def test_q1_constraint_violated(search):
    assert_incorrect(q1.result(search[2]), "Constraint violated", "maxDepth 10", "astype(int)")


def test_q1_not_the_best_allowed(search):
    assert_incorrect(q1.result(search[1]), "0.830", "0.846", "best allowed")


def test_q1_over_budget(champion):
    for i in range(BUDGET):
        attempt(0.80 + i / 100)
    best = attempt(0.9)
    assert_incorrect(q1.result(best), "Over budget", f"{BUDGET + 1} attempts", f"budget is {BUDGET}")


def test_q1_deleting_attempts_does_not_refund_the_budget(client, champion):
    runs = [attempt(0.80) for _ in range(BUDGET)]
    best = attempt(0.9)
    client.delete_run(runs[0])
    assert_incorrect(q1.result(best), "Over budget", "deleted runs too")


def test_q1_a_second_round_has_its_own_budget(search):
    register(search[0])
    for i in range(BUDGET):
        last = attempt(0.80 + i / 1000, depth=5)
    assert q1.result(last).outcome is Outcome.CORRECT


def test_q1_the_baseline_run_is_not_an_attempt(search, champion):
    assert_incorrect(q1.result(champion.run_id), "not a tuning attempt")


def test_q1_a_failed_attempt(champion):
    attempt(0.8)
    failed = attempt(0.9, status="FAILED")
    assert_incorrect(q1.result(failed), "FAILED")


def test_q1_not_a_string(search):
    assert_incorrect(q1.result(attempts_this_round().iloc[:1]), "DataFrame", "run_id")


def test_q1_unknown_id_and_other_experiment(search):
    assert_incorrect(q1.result("not-a-run"), "No run has the id")
    tracking.ensure_experiment(lesson07.EXPERIMENT)
    mlflow.set_experiment(lesson07.EXPERIMENT)
    with mlflow.start_run() as other:
        mlflow.log_metric("AUC", 0.9)
    assert_incorrect(q1.result(other.info.run_id), "another experiment", EXPERIMENT)


# --- q2: registered, tagged, described -------------------------------------------------------------


def test_q2_correct(search):
    result = q2.result(register(search[0]))
    assert result.outcome is Outcome.CORRECT
    assert "tagged and described" in result.message


@pytest.mark.parametrize("answer", [BLANK, None])
def test_q2_blank_is_not_attempted(search, answer):
    assert q2.result(answer).outcome is Outcome.NOT_ATTEMPTED


def test_q2_not_registered(search):
    assert_incorrect(q2.result(search[0]), "run id", "mlflow.register_model")


def test_q2_registered_the_deeper_attempt(search):
    assert_incorrect(q2.result(register(search[2])), "Constraint violated", "maxDepth 10")


def test_q2_registered_the_runner_up(search):
    assert_incorrect(q2.result(register(search[1])), "0.846", "best allowed")


def test_q2_a_version_that_is_not_from_the_capstone(search, champion):
    assert_incorrect(q2.result(champion), "does not come from a capstone attempt")


def test_q2_without_the_test_auc_tag(search):
    assert_incorrect(q2.result(register(search[0], tag=False)), "no tag 'test_auc'")


def test_q2_with_a_wrong_test_auc(search, client):
    version = register(search[0])
    client.set_model_version_tag(MODEL_NAME, version.version, "test_auc", "0.9")
    assert_incorrect(q2.result(version), "'0.9'", "0.846")


def test_q2_without_a_description(search):
    assert_incorrect(q2.result(register(search[0], description=None)), "no description", "update_model_version")


def test_q2_registered_under_another_name(search):
    other = mlflow.register_model(f"runs:/{search[0]}/rf_model", "pima_diabetes_rf")
    assert_incorrect(q2.result(other), "'pima_diabetes_rf'", "exact")


# --- q3: the decision --------------------------------------------------------------------------------


@store_template(base="search_store")
def registered_store(search_run_ids):
    """The best allowed attempt registered (AUC 0.846) against a baseline champion (AUC 0.80); returns its version
    number."""
    return register(search_run_ids[0]).version


@pytest.fixture
def registered(registered_store, client):
    """The registered best allowed attempt (``registered_store``), read from the test's copy of the store."""
    return client.get_model_version(MODEL_NAME, registered_store.value)


def test_q3_correct_promotion(registered, champion, client):
    set_aliases(client, champion=registered.version, challenger=champion.version)
    result = q3.result(registered)
    assert result.outcome is Outcome.CORRECT
    assert result.message.startswith("Promoted")


def test_q3_correct_when_the_champion_is_better(client):
    strong = attempt(0.90, depth=3)
    old = register(strong)
    set_aliases(client, champion=old.version)
    weaker = register(attempt(0.85, depth=3))
    set_aliases(client, challenger=weaker.version)
    result = q3.result(weaker)
    assert result.outcome is Outcome.CORRECT
    assert result.message.startswith("Kept")


def test_q3_a_tie_keeps_the_champion(registered, client):
    set_aliases(client, champion=registered.version)
    again = [attempt(0.846, depth=6)]
    tie = register(again[0])
    set_aliases(client, challenger=tie.version)
    assert q3.result(tie).outcome is Outcome.CORRECT


@pytest.mark.parametrize("answer", [BLANK, None])
def test_q3_blank_is_not_attempted(registered, answer):
    assert q3.result(answer).outcome is Outcome.NOT_ATTEMPTED


def test_q3_not_compared_yet(registered):
    assert_incorrect(q3.result(registered), "carries neither alias", "version 1")


def test_q3_alias_not_moved_although_better(registered, client):
    set_aliases(client, challenger=registered.version)
    assert_incorrect(q3.result(registered), "Alias not moved although better", "0.846", "0.800")


def test_q3_alias_moved_although_worse(client):
    strong = register(attempt(0.90, depth=3))
    weaker = register(attempt(0.85, depth=3))
    set_aliases(client, champion=weaker.version, challenger=strong.version)
    assert_incorrect(q3.result(weaker), "Alias moved although not better", "0.850", "0.900")


def test_q3_alias_moved_on_a_tie(registered, client):
    tie = register(attempt(0.846, depth=6))
    set_aliases(client, champion=tie.version, challenger=registered.version)
    assert_incorrect(q3.result(tie), "Alias moved although not better")


def test_q3_promoted_but_the_old_champion_lost_its_alias(registered, client):
    set_aliases(client, champion=registered.version)
    assert_incorrect(q3.result(registered), "old champion carries no alias", "challenger")


def test_q3_both_aliases_on_the_new_version(registered, client):
    set_aliases(client, champion=registered.version, challenger=registered.version)
    assert_incorrect(q3.result(registered), "Both aliases point at version")


def test_q3_no_champion(client, champion):
    client.delete_registered_model_alias(MODEL_NAME, "champion")
    version = register(attempt(0.84, depth=3))
    set_aliases(client, challenger=version.version)
    assert_incorrect(q3.result(version), "no champion", "step 3")


def test_q3_alias_with_a_capital_letter(registered, champion, client):
    client.delete_registered_model_alias(MODEL_NAME, "champion")
    set_aliases(client, Champion=registered.version, challenger=champion.version)
    assert_incorrect(q3.result(registered), "'Champion'", "case-sensitive")


def test_q3_reports_budget_and_constraint_before_the_aliases(champion, client):
    for _ in range(BUDGET):
        attempt(0.80)
    over = register(attempt(0.84))
    set_aliases(client, champion=over.version, challenger=champion.version)
    assert_incorrect(q3.result(over), "Over budget")
    deep = register(attempt(0.84, depth=12))
    set_aliases(client, champion=deep.version, challenger=champion.version)
    assert_incorrect(q3.result(deep), "Constraint violated")


def test_q3_not_registered(search):
    assert_incorrect(q3.result(search[0]), "run id", "register")
