"""Regenerate the MLflow UI screenshots that lesson 4 shows, from the real UI.

    .venv/bin/python scripts/ui_screenshots.py

Executes the lesson 4 solution into a temporary store (so the pictures show
exactly the runs a learner creates), serves that store with the course's
MlflowUI helper, walks lesson 4's click path in headless Chromium
(coursekit.ui_tour) and writes lessons/img/04-*.png. tests/test_ui_browser.py
walks the same path in CI and asserts on the pages.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import papermill

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coursekit.generate import KERNEL_NAME  # noqa: E402

SOLUTION = REPO / "solutions" / "04_compare_runs.ipynb"
OUT_DIR = REPO / "lessons" / "img"
GOOD_FILTER = "metrics.AUC > 0.8 and params.maxDepth = '5'"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="course-shots-") as tmp:
        os.environ["COURSE_DATA_DIR"] = tmp
        papermill.execute_notebook(
            str(SOLUTION), str(Path(tmp) / "out.ipynb"), parameters={"START_UI": False},
            kernel_name=KERNEL_NAME, cwd=str(SOLUTION.parent), progress_bar=False,
        )
        from coursekit import lesson04
        from coursekit.tracking import configure_tracking
        from coursekit.ui import MlflowUI
        from coursekit.ui_tour import take_tour

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
    for path in result.screenshots:
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
