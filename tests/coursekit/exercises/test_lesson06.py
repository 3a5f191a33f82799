"""Lesson 6 checks against a real (temporary) MLflow store, one section per exercise.

Spark is started once, for one test only (what the lesson says about the settings, on a real fit). Elsewhere
the runs autolog writes are built with the MLflow API exactly as MLflow 3.17.2's ``mlflow.pyspark.ml.autolog``
writes them (tests/test_notebooks.py reads the real ones from the executed
solution): the tag ``mlflow.autologging = pyspark.ml`` on runs it creates, ``estimator_class`` /
``estimator_name`` on every run it fills, stage-prefixed params, ``areaUnderROC_test`` after an evaluation,
child runs tagged ``mlflow.parentRunId`` with ``avg_areaUnderROC`` and ``std_areaUnderROC``. Each section
covers the reference answer, nothing done yet, and the typical mistakes, named by their message.
"""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from spark_fixtures import course_spark  # noqa: F401 - a fixture
from store_helpers import assert_incorrect, assert_not_attempted, log_run, store_template

from coursekit import BLANK, Outcome
from coursekit.exercises import lesson06
from coursekit.exercises.lesson06 import EXPERIMENT, MANUAL_RUN, OWN_METRIC_RUN, SEARCH_RUN, q1, q2, q3, q4, q5

pytestmark = pytest.mark.usefixtures("lesson_experiment")

PIPELINE = {"estimator_class": "pyspark.ml.pipeline.Pipeline", "estimator_name": "Pipeline"}
CV = {"estimator_class": "pyspark.ml.tuning.CrossValidator", "estimator_name": "CrossValidator"}
AUTOLOG = {"mlflow.autologging": "pyspark.ml"}
# (numTrees, maxDepth) -> (avg_areaUnderROC, std_areaUnderROC), as the solution's search measured them.
GRID = {(10, 3): (0.842, 0.003), (10, 5): (0.823, 0.004), (30, 3): (0.845, 0.013), (30, 5): (0.843, 0.012)}


def stage_params(num_trees: int = 20, max_depth: int = 5) -> dict[str, str]:
    """A few of the 25 params autolog logs for the course's pipeline."""
    return {"stages": "['VectorAssembler', 'RandomForestClassifier']", "VectorAssembler.outputCol": "features",
            "RandomForestClassifier.numTrees": str(num_trees), "RandomForestClassifier.maxDepth": str(max_depth),
            "RandomForestClassifier.seed": "42"}


def autolog_fit(*, model=False, metrics=None, run_name=None):
    """A fit autolog ran with no run open: its own run, tagged, params of both stages; ``metrics`` after evaluate."""
    return log_run(run_name, params=stage_params(), tags={**AUTOLOG, **PIPELINE},
                   metrics=metrics if metrics is not None else {"areaUnderROC_test": 0.835},
                   artifacts=["estimator_info.json", *(["model/MLmodel"] if model else [])])


def search(run_name=SEARCH_RUN, grid=GRID, *, parent_tags=None, model=False, status="FINISHED", child_tags=None):
    """A CrossValidator fitted under autolog inside ``run_name`` (None: autolog made the parent). Returns (parent, {cell: child})."""
    client = MlflowClient()
    parent_id = log_run(run_name, params={"numFolds": "2", "best_RandomForestClassifier.numTrees": "30"},
                        tags=parent_tags if parent_tags is not None else CV, status=None,
                        artifacts=["search_results.csv", *(["best_model/MLmodel"] if model else [])])
    experiment_id = mlflow.active_run().info.experiment_id
    if status:
        mlflow.end_run(status=status)
    children = {}
    for (trees, depth), (avg, std) in grid.items():
        child = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent_id, **AUTOLOG, **PIPELINE,
                                                       **(child_tags or {})})
        for key, value in stage_params(trees, depth).items():
            client.log_param(child.info.run_id, key, value)
        client.log_metric(child.info.run_id, "avg_areaUnderROC", avg)
        client.log_metric(child.info.run_id, "std_areaUnderROC", std)
        client.set_terminated(child.info.run_id)
        children[(trees, depth)] = child.info.run_id
    return parent_id, children


def hand_children(parent_name=MANUAL_RUN, *, nested=True, extra_tags=None, params=True, auc=0.84, cells=((10, 3), (30, 5))):
    """The parent of exercise 5 and one run per candidate, nested or (nested=False) flat after it. Returns the parent id."""
    with mlflow.start_run(run_name=parent_name) as parent:
        if not nested:
            mlflow.end_run()
        for trees, depth in cells:
            with mlflow.start_run(run_name=f"trees={trees} depth={depth}", nested=nested):
                if params:
                    mlflow.log_params({"numTrees": trees, "maxDepth": depth})
                mlflow.log_metric("AUC", auc)
                if extra_tags:
                    mlflow.set_tags(extra_tags)
    return parent.info.run_id


@store_template
def search_store():
    """A CrossValidator over GRID fitted under autolog inside SEARCH_RUN (``search()``); returns (parent, {cell: child})."""
    return search()


@pytest.fixture
def cv_search(search_store):
    """``search_store`` in the test's own copy of the store: (parent id, {(numTrees, maxDepth): child id})."""
    return search_store.value


@pytest.fixture
def autolog_off():
    """Autologging switched off in this process before and after the test (q1 reads that state)."""
    mlflow.pyspark.ml.autolog(disable=True)
    yield
    mlflow.pyspark.ml.autolog(disable=True)


def test_fresh_store_is_not_attempted_everywhere(autolog_off):
    assert_not_attempted(q1.result(None), "No run yet")
    for exercise, name in ((q2, OWN_METRIC_RUN), (q3, SEARCH_RUN), (q5, MANUAL_RUN)):
        assert_not_attempted(exercise.result(), f"No run named '{name}'", EXPERIMENT)
    assert_not_attempted(q4.result(BLANK), "best_child_id", "blank")
    assert_not_attempted(q4.result("0" * 32), "finish exercise 3")


def test_the_shipped_cells_are_not_attempted(autolog_off):
    """What the lesson's blanks leave: no autolog run, empty parents (their with blocks run), a blank id."""
    log_run(SEARCH_RUN)  # exercise 2's start_run is inside its blank region; 3's and 5's are not
    log_run(MANUAL_RUN)
    assert_not_attempted(q1.result(None))  # mlflow.last_active_run() before any run of this kernel
    assert_not_attempted(q2.result(), "No run named")
    assert_not_attempted(q3.result(), "holds nothing yet")
    assert_not_attempted(q4.result(BLANK))
    assert_not_attempted(q5.result(), "no child runs yet")


def test_each_autolog_call_replaces_every_setting(autolog_off):
    """What the lesson says about the settings: leave one out and it is back at its default."""
    from mlflow.utils.autologging_utils import get_autologging_config

    mlflow.pyspark.ml.autolog(log_models=False, silent=True)
    assert get_autologging_config("pyspark.ml", "log_models") is False
    mlflow.pyspark.ml.autolog(silent=True)
    assert get_autologging_config("pyspark.ml", "log_models") is True
    assert get_autologging_config("pyspark.ml", "log_post_training_metrics") is True
    assert get_autologging_config("pyspark.ml", "log_datasets") is True
    mlflow.pyspark.ml.autolog(disable=True)
    assert lesson06._autolog_is_on() is False


def test_what_the_lesson_says_about_the_settings_holds_for_a_real_fit(course_spark, autolog_off):  # noqa: F811
    """The 'before fit' rule and the settings table, against MLflow 3.17.2 (a bare forest on the course split)."""
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.evaluation import BinaryClassificationEvaluator

    client = MlflowClient()
    experiment_id = mlflow.get_experiment_by_name(EXPERIMENT).experiment_id
    evaluator = BinaryClassificationEvaluator(labelCol="diabetic")
    forest = RandomForestClassifier(labelCol="diabetic", numTrees=5, maxDepth=3, seed=42)
    train, test = course_spark.train, course_spark.test
    # Turned on after fit: nothing is recorded, not even by evaluate.
    early = forest.fit(train)
    mlflow.pyspark.ml.autolog(log_models=False, silent=True)
    evaluator.evaluate(early.transform(test))
    assert client.search_runs([experiment_id]) == []
    # log_datasets (default True): the training DataFrame and the evaluated one become the run's inputs.
    model = forest.fit(train)
    evaluator.evaluate(model.transform(test))
    (run,) = client.search_runs([experiment_id])
    contexts = sorted(t.value for i in run.inputs.dataset_inputs for t in i.tags if t.key == "mlflow.data.context")
    assert contexts == ["eval", "train"] and set(run.data.metrics) == {"areaUnderROC_test"}
    assert run.data.tags["mlflow.autologging"] == "pyspark.ml"
    # log_post_training_metrics=False: evaluate logs nothing; log_datasets=False: no inputs.
    mlflow.pyspark.ml.autolog(log_models=False, log_datasets=False, log_post_training_metrics=False, silent=True)
    quiet = forest.fit(train)
    evaluator.evaluate(quiet.transform(test))
    newest = client.get_run(mlflow.last_active_run().info.run_id)
    assert newest.data.metrics == {} and newest.inputs.dataset_inputs == [] and newest.info.run_id != run.info.run_id
    # disable=True: a fit makes no run.
    mlflow.pyspark.ml.autolog(disable=True)
    forest.fit(train)
    assert len(client.search_runs([experiment_id])) == 2


def test_hints_and_solutions_print(capsys):
    for exercise in (q1, q2, q3, q4, q5):
        exercise.hint()
        exercise.hint(2)
        exercise.solution()
    out = capsys.readouterr().out
    assert out.count("💡") == 10 and out.count("📖") == 5
    assert "log_models=False" in out and "nested=True" in out and "avg_areaUnderROC DESC" in out


def test_param_reads_stage_prefixed_and_plain_names():
    run = MlflowClient().get_run(log_run("p", params={**stage_params(10, 3), "best_RandomForestClassifier.numTrees": "99"}))
    assert lesson06.param(run, "numTrees") == "10" and lesson06.param(run, "maxDepth") == "3"
    plain = MlflowClient().get_run(log_run("q", params={"numTrees": "7"}))
    assert lesson06.param(plain, "numTrees") == "7" and lesson06.param(plain, "maxDepth") is None


# --- q1: autolog one fit -------------------------------------------------------------------------------


def test_q1_correct_with_a_run_or_its_id(autolog_off):
    run_id = autolog_fit()
    for answer in (run_id, MlflowClient().get_run(run_id)):
        result = q1.result(answer)
        assert result.correct, result
        assert "areaUnderROC_test = 0.835" in result.message


def test_q1_autolog_turned_on_after_fit(autolog_off):
    """The fit ran first, so no run exists; autolog is on now: the learner put the lines in the wrong order."""
    mlflow.pyspark.ml.autolog(log_models=False, silent=True)
    assert_incorrect(q1.result(None), "no run recorded a fit", "only sees fits that start after it is turned on")


def test_q1_last_run_is_not_an_autolog_run(autolog_off):
    by_hand = log_run("by-hand", params={"numTrees": "20"}, metrics={"AUC": 0.83})
    assert_incorrect(q1.result(by_hand), "'by-hand', was not made by autolog", "before fit")


def test_q1_fit_inside_a_run_of_ones_own_is_not_autologs_run(autolog_off):
    inside = log_run("mine", params=stage_params(), tags=PIPELINE, metrics={"areaUnderROC_test": 0.835})
    assert_incorrect(q1.result(inside), "not made by autolog")


def test_q1_model_logged(autolog_off):
    assert_incorrect(q1.result(autolog_fit(model=True)), "logged a model (model/)", "log_models=False")


def test_q1_not_evaluated(autolog_off):
    assert_incorrect(q1.result(autolog_fit(metrics={})), "no metric", "evaluator.evaluate")


def test_q1_evaluated_on_the_training_rows(autolog_off):
    assert_incorrect(q1.result(autolog_fit(metrics={"areaUnderROC_train": 0.95})), "areaUnderROC_train", "test rows")


@pytest.mark.parametrize(("answer", "type_name"), [(42, "int"), (["a"], "list"), (object(), "object")])
def test_q1_wrong_type(autolog_off, answer, type_name):
    assert_incorrect(q1.result(answer), f"auto_run is a {type_name}", "mlflow.last_active_run()")


def test_q1_made_up_id_is_a_friendly_sentence(autolog_off):
    result = q1.result("0" * 32)
    assert result.outcome is Outcome.INCORRECT and "Traceback" not in result.message


# --- q2: your metric in autolog's run ----------------------------------------------------------------


def own_run(*, tags=PIPELINE, params=None, metrics=None, purpose=True, artifacts=(), status="FINISHED"):
    return log_run(OWN_METRIC_RUN, params=stage_params() if params is None else params,
                   tags={**tags, **({"purpose": "baseline"} if purpose else {})},
                   metrics={"areaUnderROC_test": 0.835, "test_auc": 0.835} if metrics is None else metrics,
                   artifacts=artifacts, status=status)


def test_q2_correct():
    autolog_fit()  # exercise 1's run, earlier
    own_run()
    result = q2.result()
    assert result.correct, result
    assert "test_auc = 0.835" in result.message


def test_q2_metric_landed_in_a_second_run():
    """The mistake: fit first (autolog's own run), then a new run with only the metric."""
    autolog_fit()
    own_run(tags={}, params={}, metrics={"test_auc": 0.835})
    assert_incorrect(q2.result(), "none of autolog's params", "two runs for one fit", "Fit inside the with block")


def test_q2_no_metric():
    own_run(metrics={"areaUnderROC_test": 0.835})
    assert_incorrect(q2.result(), "no metric test_auc")


def test_q2_no_tag():
    own_run(purpose=False)
    assert_incorrect(q2.result(), "no tag purpose")


def test_q2_metric_of_other_rows():
    own_run(metrics={"areaUnderROC_test": 0.835, "test_auc": 0.952})
    assert_incorrect(q2.result(), "differs from autolog's areaUnderROC_test")


def test_q2_model_logged():
    own_run(artifacts=["model/MLmodel"])
    assert_incorrect(q2.result(), "logged a model (model/)")


def test_q2_run_left_open():
    own_run(status=None)
    assert_incorrect(q2.result(), "still RUNNING")
    mlflow.end_run()


def test_q2_newest_run_counts_when_the_lesson_runs_twice():
    own_run(tags={}, params={}, metrics={"test_auc": 0.835})
    own_run()
    assert q2.result().correct


# --- q3: a whole search in one parent run --------------------------------------------------------------


def test_q3_correct(cv_search):
    result = q3.result()
    assert result.correct, result
    assert "4 child runs" in result.message


def test_q3_search_fitted_outside_the_named_run():
    log_run(SEARCH_RUN)  # the with block ran, but cv.fit was outside it
    search(run_name=None, parent_tags={**CV, **AUTOLOG})
    assert_incorrect(q3.result(), "made its own parent run", "outside the with block")


def test_q3_grid_over_one_param_only():
    search(grid={(10, 5): (0.82, 0.01), (30, 5): (0.84, 0.01)})
    assert_incorrect(q3.result(), "the same maxDepth (5)", "numTrees × maxDepth")


def test_q3_pipeline_fitted_instead_of_the_search():
    log_run(SEARCH_RUN, params=stage_params(), tags=PIPELINE)
    assert_incorrect(q3.result(), "records Pipeline, not a search", "cv.fit(train)")


def test_q3_models_logged():
    search(model=True)
    assert_incorrect(q3.result(), "logged a model (best_model/)", "log_models=False")


def test_q3_autolog_off_leaves_the_run_empty():
    log_run(SEARCH_RUN)
    assert_not_attempted(q3.result(), "holds nothing yet", "autolog on")


def test_q3_train_validation_split_is_a_search_too():
    search(parent_tags={"estimator_class": "pyspark.ml.tuning.TrainValidationSplit"})
    assert q3.result().correct


# --- q4: pick the best child ------------------------------------------------------------------------------


def test_q4_correct(cv_search):
    _, children = cv_search
    result = q4.result(children[(30, 3)])
    assert result.correct, result
    assert "numTrees=30, maxDepth=3" in result.message and "0.845" in result.message


def test_q4_worst_child_sorted_ascending(cv_search):
    _, children = cv_search
    assert_incorrect(q4.result(children[(10, 5)]), "lowest avg_areaUnderROC", "sort DESC")


def test_q4_picked_by_the_spread(cv_search):
    _, children = cv_search
    assert_incorrect(q4.result(children[(10, 3)]), "std_areaUnderROC is how much the folds disagree", "sort by avg_areaUnderROC")


def test_q4_neither_best_nor_an_edge(cv_search):
    _, children = cv_search
    assert_incorrect(q4.result(children[(30, 5)]), "0.843", "the best is 0.845", "DESC")


def test_q4_parent_id(cv_search):
    parent, _ = cv_search
    assert_incorrect(q4.result(parent), "the parent run")


def test_q4_child_of_an_older_search(cv_search):
    _, older = cv_search
    search()
    assert_incorrect(q4.result(older[(30, 3)]), "not a child of the newest")


def test_q4_run_that_is_no_child(cv_search):
    assert_incorrect(q4.result(log_run("by-hand", metrics={"avg_areaUnderROC": 0.99})), "not a child")


@pytest.mark.parametrize(("answer", "words"), [
    (lambda: mlflow.search_runs(experiment_names=[EXPERIMENT], max_results=1), ["DataFrame", "run_id string"]),
    (lambda: mlflow.search_runs(experiment_names=[EXPERIMENT])["run_id"], ["Series"]),
    (lambda: mlflow.last_active_run(), ["whole Run", ".info.run_id"]),
    (lambda: 0.845, ["float"]),
])
def test_q4_wrong_type(cv_search, answer, words):
    assert_incorrect(q4.result(answer()), *words)


def test_q4_accepts_either_of_two_tied_best_children():
    _, children = search(grid={(10, 3): (0.845, 0.01), (30, 3): (0.845, 0.02), (30, 5): (0.80, 0.01)})
    assert q4.result(children[(10, 3)]).correct and q4.result(children[(30, 3)]).correct


# --- q5: nested runs by hand ------------------------------------------------------------------------------


def test_q5_correct():
    hand_children()
    result = q5.result()
    assert result.correct, result
    assert "2 children under one parent" in result.message


def test_q5_children_not_nested():
    hand_children(nested=False)
    assert_incorrect(q5.result(), "2 candidate run(s)", "not nested", "nested=True")


def test_q5_children_of_another_parent():
    log_run(MANUAL_RUN)
    hand_children(parent_name="my-own-parent")
    assert_incorrect(q5.result(), "children of 'my-own-parent'", MANUAL_RUN)


def test_q5_autolog_left_on():
    hand_children(extra_tags=PIPELINE)
    assert_incorrect(q5.result(), "Autolog was still on", "disable=True")


def test_q5_params_missing():
    hand_children(params=False)
    assert_incorrect(q5.result(), "has no param numTrees")


def test_q5_auc_out_of_range():
    hand_children(auc=83.5)
    assert_incorrect(q5.result(), "no AUC between 0 and 1")


def test_q5_a_single_child():
    hand_children(cells=((10, 3),))
    assert_incorrect(q5.result(), "a single child")


def test_q5_child_left_running():
    with mlflow.start_run(run_name=MANUAL_RUN):
        mlflow.start_run(run_name="trees=10 depth=3", nested=True)
        mlflow.log_params({"numTrees": 10, "maxDepth": 3})
        result = q5.result()
        mlflow.end_run()
    assert_incorrect(result, "still RUNNING")


def test_q5_newest_parent_counts_when_the_lesson_runs_twice():
    hand_children(nested=False)
    hand_children()
    assert q5.result().correct
