"""The MLflow UI, driven in headless Chromium against the runs lessons 4 and 6 create.

These are the click paths the lessons teach (and the ones that produce their screenshots):
lesson 4's run list, search box, Compare with a parallel-coordinates plot, Show diff only;
lesson 6's cross-validation parent unfolded to its child runs, and the parent's own page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from nbrun import FAST_PARAMETERS, SOLUTIONS, error_outputs, run_notebook

from coursekit.authoring.ui_tour import take_tour, take_tree_tour
from coursekit.exercises import lesson04
from coursekit.ui import MlflowUI

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / ".ci-artifacts" / "lesson06-tree"  # git-ignored; look at them after a UI change
LESSON06 = "06_autolog_nested_runs"
TREE_SHOTS = ["06-search-tree.png", "06-parent-run.png"]

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def lesson04_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding exactly what the lesson 4 solution logs (CI's smaller grid)."""
    store = tmp_path_factory.mktemp("lesson04")
    solution = next(p for p in SOLUTIONS if p.stem == "04_compare_runs")
    nb = run_notebook(solution, store / "out.ipynb", store, FAST_PARAMETERS["04_compare_runs"])
    assert error_outputs(nb) == []
    return store


def test_ui_lists_filters_and_compares_the_lesson_runs(
    lesson04_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(lesson04_store))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the store is the one in COURSE_DATA_DIR
    from coursekit.tracking import configure_tracking

    configure_tracking()
    runs = lesson04.grid_runs()
    names = {r.info.run_name for r in runs}
    assert len(names) == len(FAST_PARAMETERS["04_compare_runs"]["NUM_TREES_GRID"]) * len(
        FAST_PARAMETERS["04_compare_runs"]["MAX_DEPTH_GRID"]
    )
    best = runs[0]
    compare = [runs[0].info.run_name, runs[1].info.run_name, runs[-1].info.run_name]

    ui = MlflowUI()
    ui.start()
    try:
        result = take_tour(
            ui.experiment_url(best.info.experiment_id), tmp_path, prefix="rf-", all_runs=names,
            filter_string=f"metrics.AUC >= {best.data.metrics['AUC'] - 1e-9}",
            filter_expected={best.info.run_name}, compare=compare,
        )
    finally:
        ui.stop()

    assert set(result.table_runs) == names, "the runs table lists every grid run by name"
    assert result.filtered_runs == [best.info.run_name], "the search box finds the best run"
    assert result.compared_runs == compare, "the compare view names the selected runs"
    assert result.parallel_axes == ["maxDepth", "numTrees", "AUC"], "a parallel-coordinates plot of params → AUC"
    assert {"model_type", "seed"} <= set(result.diff_only_hides), "Show diff only hides identical params"
    assert "numTrees" not in result.diff_only_hides and "maxDepth" not in result.diff_only_hides
    assert [p.name for p in result.screenshots] == [
        "04-runs-table.png", "04-search-filter.png", "04-compare-parallel.png", "04-compare-diff.png"
    ]
    for shot in result.screenshots:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_lesson04_shows_the_screenshots_the_tour_produces() -> None:
    lesson = (SOLUTIONS[0].parent.parent / "lessons" / "04_compare_runs.ipynb").read_text(encoding="utf-8")
    for name in ("04-runs-table.png", "04-search-filter.png", "04-compare-parallel.png", "04-compare-diff.png"):
        assert f"](img/{name})" in lesson
        assert (SOLUTIONS[0].parent.parent / "lessons" / "img" / name).is_file()


@pytest.fixture(scope="module")
def lesson06_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding exactly what the lesson 6 solution logs (with CI's parameters, if it has some)."""
    store = tmp_path_factory.mktemp("lesson06")
    solution = next(p for p in SOLUTIONS if p.stem == LESSON06)
    nb = run_notebook(solution, store / "out.ipynb", store, FAST_PARAMETERS.get(LESSON06, {}))
    assert error_outputs(nb) == []
    return store


def test_ui_unfolds_the_search_parent_into_its_child_runs(
    lesson06_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(lesson06_store))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from mlflow.tracking import MlflowClient

    from coursekit.exercises import lesson06
    from coursekit.tracking import configure_tracking

    configure_tracking()
    client = MlflowClient()
    experiment = client.get_experiment_by_name(lesson06.EXPERIMENT)
    assert experiment is not None
    parents = client.search_runs(
        [experiment.experiment_id], filter_string=f"attributes.run_name = '{lesson06.SEARCH_RUN}'"
    )
    assert len(parents) == 1, "the solution logs one cross-validation parent"
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'"
    )
    names = {r.info.run_name for r in children}
    assert 2 <= len(names) == len(children), "one child run per candidate, each with its own name"
    columns = ["avg_areaUnderROC", "RandomForestClassifier.numTrees", "RandomForestClassifier.maxDepth"]

    SHOTS.mkdir(parents=True, exist_ok=True)
    ui = MlflowUI()
    ui.start()
    try:
        result = take_tree_tour(
            ui.experiment_url(experiment.experiment_id), SHOTS, parent=lesson06.SEARCH_RUN, children=names,
            columns=columns, hide_columns=["Dataset", "Source", "Models"],
        )
    finally:
        ui.stop()

    assert result.parent_listed, "the runs table lists the search's parent run"
    assert names.isdisjoint(result.table_before), "its children start folded away"
    assert sorted(result.children_shown) == sorted(names), "unfolding it shows exactly its child runs, right under it"
    assert set(result.table_after) - set(result.table_before) == names, "and nothing else appears"
    assert set(columns) <= set(result.columns), "the children's metric and params are columns of the table"
    assert result.page_title == lesson06.SEARCH_RUN
    assert sorted(result.page_children) == sorted(names), "the parent's page lists its child runs"
    assert {"numFolds", "best_RandomForestClassifier.numTrees", "best_RandomForestClassifier.maxDepth"} <= set(
        result.page_params
    ), "and the search's params, the best candidate's among them"
    assert [p.name for p in result.screenshots] == TREE_SHOTS
    for shot in result.screenshots:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_lesson06_shows_the_screenshots_the_tour_produces() -> None:
    lesson = REPO / "lessons" / f"{LESSON06}.ipynb"
    solution = REPO / "solutions" / f"{LESSON06}.ipynb"
    for notebook in (solution, lesson):
        if not notebook.exists():
            continue  # lessons/ is generated from solutions/: test_generate reports a missing one
        text = notebook.read_text(encoding="utf-8")
        assert sorted(set(re.findall(r"\]\(img/(06-[^)]*)\)", text))) == sorted(TREE_SHOTS), notebook.name
    assert solution.exists()
    for name in TREE_SHOTS:
        assert (REPO / "lessons" / "img" / name).is_file()
