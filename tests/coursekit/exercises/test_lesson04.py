"""Lesson 4 checks against a real (temporary) MLflow store, one section per exercise.

Spark is not started: the numTrees × maxDepth grid is logged with the real fluent API
exactly as the lesson's grid cell logs it (run names, the ``grid`` tag, the four params),
with AUC values chosen so every typical mistake gives a different answer. Each section
covers the reference answer (computed the way the solution notebook does), blanks, an
empty store, and the typical mistakes, whose message must name the specific problem.
"""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from store_helpers import assert_incorrect, log_run, store_template

from coursekit import BLANK, Outcome
from coursekit.exercises import lesson04
from coursekit.exercises.lesson04 import EXPERIMENT, grid_runs, q1, q2, q3, q4

pytestmark = pytest.mark.usefixtures("lesson_experiment")

GRID_TAG = {"grid": "numTrees x maxDepth"}
SEED = 42
#: (numTrees, maxDepth) -> AUC. Best overall: 50 trees depth 5; best with 20 trees: depth 5;
#: worst: 5 trees depth 2. Depth 5 with 5 trees is at or below 0.8; depth 8 has two runs above 0.8.
GRID_AUC = {
    (5, 2): 0.70, (5, 5): 0.79, (5, 8): 0.76,
    (20, 2): 0.74, (20, 5): 0.83, (20, 8): 0.81,
    (50, 2): 0.75, (50, 5): 0.86, (50, 8): 0.82,
}  # fmt: skip
TOP3 = [0.86, 0.83, 0.82]
WORST3 = [0.70, 0.74, 0.75]
GOOD_FILTER = "metrics.AUC > 0.8 and params.maxDepth = '5'"


def log_grid(aucs=None, *, status="FINISHED"):
    """The lesson's grid cell without Spark: one run per (numTrees, maxDepth). Returns {(trees, depth): run_id}."""
    ids = {}
    for (trees, depth), auc in (GRID_AUC if aucs is None else aucs).items():
        ids[(trees, depth)] = log_run(
            f"rf-{trees}trees-depth{depth}",
            params={"model_type": "RandomForest", "numTrees": trees, "maxDepth": depth, "seed": SEED},
            tags=GRID_TAG,
            metrics={"AUC": auc},
            status=status,
        )
    return ids


@store_template
def grid_store():
    """The lesson's grid (``log_grid()``), logged once for the module; returns {(trees, depth): run_id}."""
    return log_grid()


@pytest.fixture
def grid(grid_store):
    """The lesson's grid in the test's own copy of the store (``grid_store``): {(trees, depth): run_id}."""
    return grid_store.value


# --- the answers, computed the way solutions/04_compare_runs.ipynb does ------------------------------


def search_grid():
    return mlflow.search_runs(
        experiment_names=[EXPERIMENT], filter_string="tags.grid = 'numTrees x maxDepth'", order_by=["metrics.AUC DESC"]
    )


def solution_q1():
    best20 = mlflow.search_runs(
        experiment_names=[EXPERIMENT], filter_string="params.numTrees = '20'", order_by=["metrics.AUC DESC"], max_results=1
    )
    return best20.loc[0, "run_id"]


def solution_q2():
    return mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=3)


def solution_q4():
    grid = search_grid()
    param_cols = [c for c in grid.columns if c.startswith("params.")]
    best, worst = grid.iloc[0], grid.iloc[-1]
    return [c.removeprefix("params.") for c in param_cols if best[c] != worst[c]]


def run_solution_code(exercise, name):
    """Execute the code ``exercise.solution()`` shows, in a namespace like the notebook's; return ``name``."""
    grid = search_grid()
    namespace = {
        "mlflow": mlflow,
        "EXPERIMENT": EXPERIMENT,
        "grid": grid,
        "param_cols": [c for c in grid.columns if c.startswith("params.")],
    }
    exec(exercise.solution_code, namespace)  # noqa: S102 - our own reference code
    return namespace[name]


# --- grid_runs and the whole-lesson behaviour ------------------------------------------------------------


def test_grid_runs_are_the_finished_tagged_runs_best_first(grid):
    runs = grid_runs()
    assert [r.info.run_id for r in runs] == [grid[k] for k in sorted(GRID_AUC, key=GRID_AUC.get, reverse=True)]
    assert runs[0].info.run_name == "rf-50trees-depth5"
    assert [r.data.metrics["AUC"] for r in runs] == sorted(GRID_AUC.values(), reverse=True)


def test_grid_runs_ignore_failed_untagged_metricless_and_foreign_runs(grid):
    params = {"model_type": "RandomForest", "numTrees": 20, "maxDepth": 5, "seed": SEED}
    ignored = {
        log_run("rf-20trees-depth5", params=params, tags=GRID_TAG, metrics={"AUC": 0.99}, status="FAILED"),
        log_run("rf-20trees-depth5", params=params, tags=GRID_TAG, metrics={"AUC": 0.98}, status="KILLED"),
        log_run("scratch", params=params, metrics={"AUC": 0.97}),
        log_run("other-grid", params=params, tags={"grid": "something else"}, metrics={"AUC": 0.96}),
        log_run("rf-20trees-depth5", params=params, tags=GRID_TAG),
    }
    mlflow.set_experiment("someone-elses-experiment")
    ignored.add(log_run("rf-50trees-depth5", params=params, tags=GRID_TAG, metrics={"AUC": 0.95}))
    mlflow.set_experiment(EXPERIMENT)
    ignored.add(log_run("rf-50trees-depth5", params=params, tags=GRID_TAG, metrics={"AUC": 0.94}, status=None))

    found = {r.info.run_id for r in grid_runs()}
    assert found == set(grid.values())
    assert not found & ignored


def test_grid_runs_without_the_experiment_is_empty(monkeypatch):
    monkeypatch.setattr(lesson04, "EXPERIMENT", "no-such-experiment")
    assert grid_runs() == []


def test_every_check_is_not_attempted_in_an_empty_store():
    answers = {
        q1: "0" * 32,
        q2: pd.DataFrame({"run_id": ["a", "b", "c"], "metrics.AUC": TOP3}),
        q3: GOOD_FILTER,
        q4: ["numTrees", "maxDepth"],
    }
    for exercise, answer in answers.items():
        result = exercise.result(answer)
        assert result.outcome is Outcome.NOT_ATTEMPTED, (exercise.key, result)
        assert EXPERIMENT in result.message and "grid cell" in result.message


def test_untagged_or_failed_runs_alone_count_as_an_empty_grid():
    log_run("scratch", params={"numTrees": 20, "maxDepth": 5}, metrics={"AUC": 0.9})
    log_grid(status="FAILED")
    assert grid_runs() == []
    assert q3.result(GOOD_FILTER).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize("exercise", [q1, q2, q3, q4], ids=lambda q: q.key)
@pytest.mark.parametrize("answer", [BLANK, None, ...], ids=["BLANK", "None", "Ellipsis"])
def test_blank_answers_are_not_attempted(grid, exercise, answer):
    result = exercise.result(answer)
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert "blank" in result.message


def test_calling_a_check_without_an_answer_is_not_attempted(grid):
    for exercise in (q1, q2, q3, q4):
        assert exercise.result().outcome is Outcome.NOT_ATTEMPTED


def test_the_solution_each_check_shows_is_accepted(grid):
    assert q1.result(run_solution_code(q1, "best20_id")).outcome is Outcome.CORRECT
    assert q2.result(run_solution_code(q2, "top3")).outcome is Outcome.CORRECT
    assert q3.result(run_solution_code(q3, "good_filter")).outcome is Outcome.CORRECT
    assert q4.result(run_solution_code(q4, "differing")).outcome is Outcome.CORRECT


def test_rerunning_the_grid_still_accepts_the_reference_answers(grid):
    first = grid
    second = log_grid()  # identical params and AUCs: twin runs
    assert len(grid_runs()) == 2 * len(GRID_AUC)

    best20_id = solution_q1()
    assert best20_id in {first[(20, 5)], second[(20, 5)]}
    assert q1.result(best20_id).outcome is Outcome.CORRECT
    twin = first[(20, 5)] if best20_id == second[(20, 5)] else second[(20, 5)]
    assert q1.result(twin).outcome is Outcome.CORRECT

    top3 = solution_q2()
    assert list(top3["metrics.AUC"]) == [0.86, 0.86, 0.83]
    assert q2.result(top3).outcome is Outcome.CORRECT

    found = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=GOOD_FILTER)
    assert len(found) == 4
    result = q3.result(GOOD_FILTER)
    assert result.outcome is Outcome.CORRECT
    assert "4 run(s) match" in result.message

    assert q4.result(solution_q4()).outcome is Outcome.CORRECT


def test_check_prints_the_verdict(grid, capsys):
    q1.check(solution_q1())
    assert capsys.readouterr().out.startswith("✅ Correct — q1: Best run with 20 trees.")
    q3.check("metrics.AUC > 0.8")
    assert capsys.readouterr().out.startswith("❌ Not yet — q3: Write a filter.")


def test_hints_and_solutions_are_shown(capsys):
    q3.hint()
    q3.hint(99)
    q3.solution()
    out = capsys.readouterr().out
    assert "q3 hint 1/2" in out and "more: q3.hint(2)" in out
    assert "q3 hint 2/2" in out
    assert GOOD_FILTER in out


def test_a_check_never_shows_a_traceback(grid, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("store unreachable")

    monkeypatch.setattr(lesson04, "grid_runs", broken)
    assert_incorrect(q1.result(solution_q1()), "could not read your answer", "ConnectionError", "store unreachable")


# --- q1: best run with 20 trees -----------------------------------------------------------------------


def test_q1_correct(grid):
    best20_id = solution_q1()
    assert best20_id == grid[(20, 5)]
    result = q1.result(best20_id)
    assert result.outcome is Outcome.CORRECT
    assert "'rf-20trees-depth5'" in result.message and "AUC=0.830" in result.message


def test_q1_a_tie_among_20_tree_runs_is_correct():
    ids = log_grid({**GRID_AUC, (20, 8): GRID_AUC[(20, 5)]})
    assert q1.result(ids[(20, 8)]).outcome is Outcome.CORRECT
    assert q1.result(ids[(20, 5)]).outcome is Outcome.CORRECT


def test_q1_best_overall_but_not_20_trees(grid):
    best = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=1)
    assert best.loc[0, "run_id"] == grid[(50, 5)]
    assert_incorrect(
        q1.result(best.loc[0, "run_id"]),
        "'rf-50trees-depth5'", "numTrees=50", "does not have 20 trees", "params.numTrees = '20'",
    )


def test_q1_a_20_tree_run_that_is_not_the_best(grid):
    # Forgot order_by: search_runs returns the most recent 20-tree run first.
    unsorted = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string="params.numTrees = '20'", max_results=1)
    assert unsorted.loc[0, "run_id"] == grid[(20, 8)]
    assert_incorrect(
        q1.result(unsorted.loc[0, "run_id"]), "'rf-20trees-depth8'", "AUC=0.810", "has 20 trees", "scores higher", "DESC"
    )
    # Sorted the wrong way: the worst 20-tree run.
    ascending = mlflow.search_runs(
        experiment_names=[EXPERIMENT], filter_string="params.numTrees = '20'", order_by=["metrics.AUC ASC"], max_results=1
    )
    assert_incorrect(q1.result(ascending.loc[0, "run_id"]), "'rf-20trees-depth2'", "scores higher")


@pytest.mark.parametrize("run_id", ["0" * 32, "rf-20trees-depth5", ""])
def test_q1_an_id_that_is_not_a_grid_run(grid, run_id):
    assert_incorrect(q1.result(run_id), repr(run_id), "is not one of this lesson's grid runs", "EXPERIMENT")


def test_q1_a_20_tree_run_outside_the_grid(grid):
    scratch = log_run("scratch", params={"numTrees": 20, "maxDepth": 5}, metrics={"AUC": 0.99})
    failed = log_run("rf-20trees-depth5", params={"numTrees": 20}, tags=GRID_TAG, metrics={"AUC": 0.98}, status="FAILED")
    mlflow.set_experiment("someone-elses-experiment")
    foreign = log_run("rf-20trees-depth5", params={"numTrees": 20}, tags=GRID_TAG, metrics={"AUC": 0.97})
    for run_id in (scratch, failed, foreign):
        assert_incorrect(q1.result(run_id), "is not one of this lesson's grid runs")


def test_q1_not_a_string(grid):
    best20 = mlflow.search_runs(
        experiment_names=[EXPERIMENT], filter_string="params.numTrees = '20'", order_by=["metrics.AUC DESC"], max_results=1
    )
    assert_incorrect(q1.result(best20), "DataFrame", "one string", "run_id column")
    assert_incorrect(q1.result(best20["run_id"]), "Series", "one string")
    assert_incorrect(q1.result(list(best20["run_id"])), "list", "one string")
    run = mlflow.get_run(best20.loc[0, "run_id"])
    assert_incorrect(q1.result(run), "Run", "one string")


def test_q1_grid_without_20_trees():
    ids = log_grid({k: v for k, v in GRID_AUC.items() if k[0] != 20})
    assert_incorrect(q1.result(ids[(50, 5)]), "no run with numTrees = 20", "NUM_TREES_GRID")


# --- q2: top three --------------------------------------------------------------------------------------


def test_q2_correct(grid):
    top3 = solution_q2()
    assert list(top3["metrics.AUC"]) == TOP3
    result = q2.result(top3)
    assert result.outcome is Outcome.CORRECT
    assert "first row is the best run" in result.message


def test_q2_the_grid_filter_and_a_pandas_sort_are_correct_too(grid):
    top3 = mlflow.search_runs(
        experiment_names=[EXPERIMENT], filter_string="tags.grid = 'numTrees x maxDepth'",
        order_by=["metrics.AUC DESC"], max_results=3,
    )
    assert q2.result(top3).outcome is Outcome.CORRECT
    everything = mlflow.search_runs(experiment_names=[EXPERIMENT])
    assert q2.result(everything.sort_values("metrics.AUC", ascending=False).head(3)).outcome is Outcome.CORRECT


@pytest.mark.parametrize("rows", [2, 5, 1])
def test_q2_wrong_number_of_rows(grid, rows):
    frame = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=rows)
    assert_incorrect(q2.result(frame), f"top3 has {rows} rows", "max_results=3")


def test_q2_all_runs_instead_of_three(grid):
    everything = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"])
    assert_incorrect(q2.result(everything), f"top3 has {len(GRID_AUC)} rows", "max_results=3")


def test_q2_ascending_order_gives_the_worst_three(grid):
    worst = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC ASC"], max_results=3)
    assert list(worst["metrics.AUC"]) == WORST3
    assert_incorrect(q2.result(worst), "*worst*", "descending", "DESC")
    # ORDER BY with no direction is ascending too.
    default = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC"], max_results=3)
    assert_incorrect(q2.result(default), "*worst*")


def test_q2_right_three_in_the_wrong_order(grid):
    top3 = solution_q2()
    assert_incorrect(q2.result(top3.iloc[::-1]), "Right three runs, wrong order", "best run must come first")
    assert_incorrect(q2.result(top3.iloc[[1, 0, 2]]), "Right three runs, wrong order")


def test_q2_three_runs_that_are_not_the_top_three(grid):
    # Forgot order_by: the three most recent runs.
    recent = mlflow.search_runs(experiment_names=[EXPERIMENT], max_results=3)
    assert sorted(recent["metrics.AUC"], reverse=True) != TOP3
    assert_incorrect(q2.result(recent), "not the three highest-AUC runs", "metrics.AUC DESC")


def test_q2_a_dataframe_without_run_id(grid):
    top3 = solution_q2()
    assert_incorrect(q2.result(top3[["metrics.AUC", "tags.mlflow.runName"]]), "no run_id column", "search_runs returns")
    assert_incorrect(q2.result(top3.set_index("run_id")), "no run_id column")


def test_q2_a_dataframe_without_the_auc_metric(grid):
    top3 = solution_q2()
    assert_incorrect(q2.result(top3[["run_id", "params.numTrees"]]), "no metrics.AUC column", "every run logs AUC")
    # Searched another experiment whose runs log no AUC.
    mlflow.set_experiment("someone-elses-experiment")
    for name in ("a", "b", "c"):
        log_run(name, metrics={"accuracy": 0.9})
    other = mlflow.search_runs(experiment_names=["someone-elses-experiment"], max_results=3)
    assert_incorrect(q2.result(other), "no metrics.AUC column")


def test_q2_not_a_dataframe(grid):
    top3 = solution_q2()
    assert_incorrect(q2.result(top3["run_id"]), "Series", "not the pandas DataFrame")
    as_list = mlflow.search_runs(
        experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=3, output_format="list"
    )
    assert_incorrect(q2.result(as_list), "list", "not the pandas DataFrame")
    assert_incorrect(q2.result(list(top3["run_id"])), "list", "not the pandas DataFrame")
    assert_incorrect(q2.result(top3.to_dict()), "dict", "not the pandas DataFrame")


# --- q3: write a filter ---------------------------------------------------------------------------------


def test_q3_correct(grid):
    found = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=GOOD_FILTER)
    assert set(found["run_id"]) == {grid[(20, 5)], grid[(50, 5)]}
    result = q3.result(GOOD_FILTER)
    assert result.outcome is Outcome.CORRECT
    assert "2 run(s) match" in result.message


@pytest.mark.parametrize(
    "good_filter",
    [
        "params.maxDepth = '5' and metrics.AUC > 0.8",
        'metrics.AUC > 0.8 AND params.maxDepth = "5"',
        "metrics.`AUC` > 0.8 and params.`maxDepth` = '5'",
        "metrics.AUC > 0.8 and params.maxDepth = '5' and tags.grid = 'numTrees x maxDepth'",
        "metrics.AUC >= 0.8001 and params.maxDepth LIKE '5'",
    ],
)
def test_q3_equivalent_filters_are_correct(grid, good_filter):
    assert q3.result(good_filter).outcome is Outcome.CORRECT


def test_q3_ignores_failed_and_untagged_runs_the_filter_also_returns(grid):
    params = {"model_type": "RandomForest", "numTrees": 20, "maxDepth": 5, "seed": SEED}
    log_run("rf-20trees-depth5", params=params, tags=GRID_TAG, metrics={"AUC": 0.9}, status="FAILED")
    log_run("scratch", params=params, metrics={"AUC": 0.9})
    assert len(mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=GOOD_FILTER)) == 4
    assert q3.result(GOOD_FILTER).outcome is Outcome.CORRECT


@pytest.mark.parametrize("bad_filter", ["params.maxDepth = 5", "metrics.AUC > 0.8 and params.maxDepth = 5"])
def test_q3_unquoted_param_value(grid, bad_filter):
    assert_incorrect(q3.result(bad_filter), "quoted value", "params (and tags) are strings", "= '5'")


@pytest.mark.parametrize("bad_filter", ["params.maxDepth > 4", "metrics.AUC > 0.8 and params.maxDepth >= '5'"])
def test_q3_numeric_comparison_on_a_param(grid, bad_filter):
    assert_incorrect(q3.result(bad_filter), "Params are strings", "< or >", "params.maxDepth = '5'")


@pytest.mark.parametrize(
    ("bad_filter", "words"),
    [
        ("metrics.AUC > 0.8 or params.maxDepth = '5'", ["could not read that filter", "'or'"]),
        ("metrics.AUC > 0.8 && params.maxDepth = '5'", ["could not read that filter", "Invalid comparison clause"]),
        ("metrics.AUC >", ["could not read that filter", "Invalid clause"]),
        ("metrics.AUC > 0.8 and params.maxDepth == '5'", ["could not read that filter", "Invalid comparator '=='"]),
        ("metrics.AUC > '0.8' and params.maxDepth = '5'", ["could not read that filter", "numeric value"]),
        ("AUC > 0.8 and maxDepth = '5'", ["could not read that filter"]),
    ],
)
def test_q3_syntax_errors(grid, bad_filter, words):
    assert_incorrect(q3.result(bad_filter), *words, "Quote strings")


def test_q3_missing_the_max_depth_condition(grid):
    assert_incorrect(q3.result("metrics.AUC > 0.8"), "maxDepth other than 5", "add params.maxDepth = '5'")
    assert_incorrect(q3.result("metrics.AUC > 0.8 and params.maxDepth != '2'"), "maxDepth other than 5")


def test_q3_names_both_problems_when_both_conditions_are_loose(grid):
    result = q3.result("metrics.AUC > 0.5")
    assert_incorrect(result, "maxDepth other than 5", "AUC at or below 0.8")


def test_q3_missing_the_auc_condition(grid):
    assert_incorrect(q3.result("params.maxDepth = '5'"), "1 with AUC at or below 0.8", "add metrics.AUC > 0.8")
    assert_incorrect(q3.result("metrics.AUC > 0.78 and params.maxDepth = '5'"), "at or below 0.8")


@pytest.mark.parametrize(
    ("bad_filter", "missing"),
    [
        ("metrics.AUC > 0.85 and params.maxDepth = '5'", 1),
        ("metrics.AUC > 0.8 and params.maxDepth = '5' and params.numTrees = '50'", 1),
        ("metrics.AUC > 0.9 and params.maxDepth = '5'", 2),
        ("metrics.AUC > 0.8 and params.maxDepth = '05'", 2),
    ],
)
def test_q3_too_strict(grid, bad_filter, missing):
    assert_incorrect(q3.result(bad_filter), f"misses {missing} run(s)", "too strict")


def test_q3_not_a_string(grid):
    assert_incorrect(q3.result(["metrics.AUC > 0.8", "params.maxDepth = '5'"]), "list", "one string")
    assert_incorrect(q3.result(("metrics.AUC > 0.8", "params.maxDepth = '5'")), "tuple", "one string")
    assert_incorrect(q3.result(0.8), "float", "one string")


def test_q3_empty_string_is_not_attempted(grid):
    assert q3.result("").outcome is Outcome.NOT_ATTEMPTED


# --- q4: what differs between best and worst ------------------------------------------------------------


def test_q4_correct(grid):
    differing = solution_q4()
    assert sorted(differing) == ["maxDepth", "numTrees"]
    result = q4.result(differing)
    assert result.outcome is Outcome.CORRECT
    assert "['maxDepth', 'numTrees']" in result.message and "Show diff only" in result.message


@pytest.mark.parametrize(
    "differing",
    [("numTrees", "maxDepth"), {"maxDepth", "numTrees"}, ["params.numTrees", "params.maxDepth"], ["maxDepth", "numTrees"]],
)
def test_q4_any_collection_order_or_prefix_is_correct(grid, differing):
    assert q4.result(differing).outcome is Outcome.CORRECT


def test_q4_only_one_param_differs():
    # The worst run has the best run's numTrees: only maxDepth differs.
    log_grid({**GRID_AUC, (50, 2): 0.60})
    assert solution_q4() == ["maxDepth"]
    assert q4.result(["maxDepth"]).outcome is Outcome.CORRECT
    assert_incorrect(q4.result(["maxDepth", "numTrees"]), "'numTrees'", "same value in both runs")


@pytest.mark.parametrize("differing", ["numTrees", "numTrees, maxDepth", "['numTrees', 'maxDepth']"])
def test_q4_a_string_instead_of_a_list(grid, differing):
    assert_incorrect(q4.result(differing), "differing is a str", "list of names", "['numTrees']")


def test_q4_not_a_list(grid):
    assert_incorrect(q4.result(2), "int", "list of names")
    assert_incorrect(q4.result({"numTrees": "5", "maxDepth": "2"}), "dict", "list of names")


@pytest.mark.parametrize(
    ("differing", "name"),
    [(["numTrees", "maxDepth", "seed"], "'seed'"), (["numTrees", "maxDepth", "model_type"], "'model_type'")],
)
def test_q4_an_extra_param_that_is_equal_in_both_runs(grid, differing, name):
    assert_incorrect(q4.result(differing), name, "same value in both runs", "only params that differ")


@pytest.mark.parametrize(("differing", "missing"), [(["numTrees"], 1), (["maxDepth"], 1), ([], 2)])
def test_q4_a_missing_param(grid, differing, missing):
    assert_incorrect(q4.result(differing), f"{missing} differing param(s) missing", "compare every param")


@pytest.mark.parametrize(
    ("differing", "name"),
    [
        (["numTrees", "maxDepth", "AUC"], "'AUC'"),
        (["numTrees", "maxDepth", "metrics.AUC"], "'metrics.AUC'"),
        (["numTrees", "max_depth"], "'max_depth'"),
        (["NumTrees", "maxDepth"], "'NumTrees'"),
    ],
)
def test_q4_a_name_that_is_not_a_param(grid, differing, name):
    assert_incorrect(q4.result(differing), name, "is not a param of these runs", "after 'params.'")


# --- issue 9: a "best run" search that finds a run the checks leave out says which and why --------


@pytest.mark.parametrize(
    ("status", "tags", "why"),
    [
        ("FINISHED", None, "is not a grid run"),
        ("FAILED", GRID_TAG, "did not finish (FAILED)"),
        ("KILLED", GRID_TAG, "did not finish (KILLED)"),
    ],
)
def test_q1_names_the_stray_run_the_reference_search_finds(grid, status, tags, why):
    stray = log_run("retry", params={"numTrees": 20, "maxDepth": 5}, tags=tags, metrics={"AUC": 0.99}, status=status)
    best20 = mlflow.search_runs(
        experiment_names=[EXPERIMENT], filter_string="params.numTrees = '20'", order_by=["metrics.AUC DESC"], max_results=1
    )
    assert best20.loc[0, "run_id"] == stray
    assert_incorrect(q1.result(stray), "'retry'", why, "mlflow.delete_run", "tags.grid")


def test_q1_a_deleted_run_is_named(grid):
    mlflow.delete_run(grid[(20, 5)])
    assert_incorrect(q1.result(grid[(20, 5)]), "'rf-20trees-depth5'", "was deleted")


def test_q2_names_the_stray_run_in_the_top_three(grid):
    log_run("hand-made", params={"numTrees": 99, "maxDepth": 5}, metrics={"AUC": 0.95})
    top3 = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=3)
    assert_incorrect(q2.result(top3), "top3 includes run 'hand-made'", "not a grid run", "mlflow.delete_run")
