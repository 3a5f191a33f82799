"""The MLflow UI, driven in headless Chromium against the runs lesson 4 creates.

This is the click path lesson 4 teaches (and the one that produces its screenshots):
the run list, the search box, Compare with a parallel-coordinates plot, Show diff only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nbrun import FAST_PARAMETERS, SOLUTIONS, error_outputs, run_notebook
from coursekit import lesson04
from coursekit.ui import MlflowUI
from coursekit.ui_tour import take_tour

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
