"""Regenerate the MLflow UI screenshots that lessons 4 and 6 show, from the real UI.

    .venv/bin/python scripts/ui_screenshots.py                # both lessons
    .venv/bin/python scripts/ui_screenshots.py --lesson 06    # only lesson 6's pictures

For each lesson, executes its solution into a temporary store (so the pictures show
exactly the runs a learner creates), serves that store with the course's MlflowUI
helper and walks the lesson's click path in headless Chromium (coursekit.authoring.ui_tour):

- lesson 4: the runs table, the search box, Compare and Show diff only -> lessons/img/04-*.png;
- lesson 6: the cross-validation parent run unfolded in the runs table to show its child runs,
  with their avg_areaUnderROC, numTrees and maxDepth (06-search-tree.png), then the parent's
  page with its "Child runs" and the search's params (06-parent-run.png).

tests/test_notebooks.py walks the same paths in CI (over the solutions' first-run store) and asserts on the pages.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coursekit.engine import execute_notebook  # noqa: E402

SOLUTION = REPO / "solutions" / "04_compare_runs.ipynb"
SOLUTION_06 = REPO / "solutions" / "06_autolog_nested_runs.ipynb"
OUT_DIR = REPO / "lessons" / "img"
GOOD_FILTER = "metrics.AUC > 0.8 and params.maxDepth = '5'"
# What lesson 6 asks a learner to add to the runs table to compare the children (and what makes room for it).
TREE_COLUMNS = ["avg_areaUnderROC", "RandomForestClassifier.numTrees", "RandomForestClassifier.maxDepth"]
TREE_HIDDEN = ["Dataset", "Source", "Models"]


def _execute(solution: Path, tmp: str, parameters: dict[str, object]) -> None:
    os.environ["COURSE_DATA_DIR"] = tmp  # the tour below reads the same store
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # the store is the one in COURSE_DATA_DIR
    execute_notebook(solution, Path(tmp) / "out.ipynb", parameters=parameters)


def lesson04() -> list[Path]:
    """Lesson 4's four pictures."""
    with tempfile.TemporaryDirectory(prefix="course-shots-") as tmp:
        _execute(SOLUTION, tmp, {"START_UI": False})
        from coursekit.authoring.ui_tour import take_tour
        from coursekit.exercises import lesson04
        from coursekit.tracking import configure_tracking
        from coursekit.ui import MlflowUI

        configure_tracking()
        runs = lesson04.grid_runs()
        matching = {r.info.run_name for r in runs if r.data.metrics["AUC"] > 0.8 and r.data.params["maxDepth"] == "5"}
        ui = MlflowUI()
        ui.start()
        try:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            result = take_tour(
                ui.experiment_url(runs[0].info.experiment_id), OUT_DIR, prefix="rf-",
                all_runs={r.info.run_name for r in runs}, filter_string=GOOD_FILTER, filter_expected=matching,
                compare=[runs[0].info.run_name, runs[len(runs) // 2].info.run_name, runs[-1].info.run_name],
            )
        finally:
            ui.stop()
    return result.screenshots


def search_tree(client: MlflowClient | None = None) -> tuple[str, str, set[str]]:
    """Experiment id, parent run id and child run names of lesson 6's cross-validation search in the store."""
    from mlflow.tracking import MlflowClient

    from coursekit.exercises import lesson06

    client = client or MlflowClient()
    experiment = client.get_experiment_by_name(lesson06.EXPERIMENT)
    parent = client.search_runs(
        [experiment.experiment_id], filter_string=f"attributes.run_name = '{lesson06.SEARCH_RUN}'",
        order_by=["attributes.start_time DESC"], max_results=1,
    )[0]
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    return experiment.experiment_id, parent.info.run_id, {r.info.run_name for r in children}


def lesson06() -> list[Path]:
    """Lesson 6's two pictures."""
    with tempfile.TemporaryDirectory(prefix="course-shots-") as tmp:
        _execute(SOLUTION_06, tmp, {})
        from coursekit.authoring.ui_tour import take_tree_tour
        from coursekit.exercises import lesson06
        from coursekit.tracking import configure_tracking
        from coursekit.ui import MlflowUI

        configure_tracking()
        experiment_id, _, children = search_tree()
        ui = MlflowUI()
        ui.start()
        try:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            result = take_tree_tour(
                ui.experiment_url(experiment_id), OUT_DIR, parent=lesson06.SEARCH_RUN, children=children,
                columns=TREE_COLUMNS, hide_columns=TREE_HIDDEN,
            )
        finally:
            ui.stop()
    if set(result.children_shown) != children:
        raise SystemExit(f"the runs table showed {result.children_shown} under the parent, the store has {sorted(children)}")
    return result.screenshots


LESSONS = {"04": lesson04, "06": lesson06}


def main(argv: list[str] | None = None) -> int:
    """Write the pictures of the chosen lesson (default: every lesson that has some)."""
    parser = argparse.ArgumentParser(description="Regenerate the MLflow UI screenshots of the lessons.")
    parser.add_argument("--lesson", choices=sorted(LESSONS), help="only this lesson's pictures (default: all)")
    args = parser.parse_args(argv)
    for number in [args.lesson] if args.lesson else sorted(LESSONS):
        for path in LESSONS[number]():
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
