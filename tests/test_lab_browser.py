"""Lesson 5 in real JupyterLab, the way a learner uses it: headless Chromium, real clicks, what is on screen.

The README's lab command serves a copy of the shipped lesson with its own store; a fresh
browser profile opens it and runs every cell; then the test sets the panel's controls as a
person does (typing into the value boxes, choosing from dropdowns) and presses the buttons.
It asserts on the page: a new plot picture and one more leaderboard row after every click,
one run for a double click, no cut-off labels, and the check results' coloured blocks.
Screenshots are kept in ``.ci-artifacts/lab-journey/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_session import PanelDriver, digest, lab_session

from coursekit.exercises.lesson05 import EXPERIMENT
from coursekit.tuning import SOURCE, SOURCE_TAG

pytestmark = pytest.mark.notebook
ATTEMPTS = f"tags.{SOURCE_TAG} = '{SOURCE}'"

# Three different settings, the second deliberately poor: its point must appear on the plot too.
SETTINGS = [
    {"numTrees": 30, "maxDepth": 4},
    {"numTrees": 2, "maxDepth": 1},
    {"numTrees": 40, "maxDepth": 3, "featureSubsetStrategy": "sqrt"},
]


def test_lesson5_panel_in_jupyterlab(tmp_path: Path) -> None:
    with lab_session(tmp_path, "05_tune_interactively.ipynb", "lab-journey") as lab:
        lab.open_and_run_all("05_tune_interactively.ipynb")
        panel = PanelDriver(lab)
        lab.wait_idle()  # Run All also ran the lesson's own demo click from code
        lab.shot("05-panel-after-run-all.png")

        # Nothing a learner reads is cut off (the old "Log model for t…").
        assert panel.truncated_labels() == []
        # The fresh lesson's checks show as grey "not attempted" blocks with their words.
        blocks = lab.page.locator(".coursekit-check")
        assert blocks.count() >= 3
        assert blocks.first.get_attribute("data-outcome") == "not attempted"
        assert "Not attempted" in blocks.first.inner_text()
        lab.shot("05-check-not-attempted.png", blocks.first)

        runs_before = len(lab.runs(EXPERIMENT, ATTEMPTS))
        rows_before = panel.board_rows()
        assert rows_before == runs_before >= 1, "the leaderboard shows every attempt logged so far"
        pictures = [panel.picture()]
        for i, settings in enumerate(SETTINGS, start=1):
            for name, value in settings.items():
                if isinstance(value, str):
                    panel.choose(name, value)
                else:
                    panel.set_slider(name, value)
            panel.click_and_time(runs_before + i)
            pictures.append(panel.picture())
            assert pictures[-1] != pictures[-2], f"click {i}: the plot on screen did not change"
            assert panel.board_rows() == rows_before + i, f"click {i}: the leaderboard did not gain a row"
            assert len(lab.runs(EXPERIMENT, ATTEMPTS)) == runs_before + i, f"click {i}: not exactly one new run"
            lab.shot(f"05-after-click-{i}.png", panel.root)
        assert len({digest(p) for p in pictures}) == len(pictures), "every click shows a picture of its own"
        # The poor attempt is in the store and on the leaderboard (the plot now shows it: the picture changed).
        stump = [r for r in lab.runs(EXPERIMENT, ATTEMPTS) if r.data.params["numTrees"] == "2"]
        assert len(stump) == 1 and stump[0].data.metrics["AUC"] < max(
            r.data.metrics["AUC"] for r in lab.runs(EXPERIMENT, ATTEMPTS))
        assert "Parallel coordinates appear" not in lab.page.content()

        # A double click logs one run, not two.
        count = len(lab.runs(EXPERIMENT, ATTEMPTS))
        panel.set_slider("numTrees", 12)
        panel.train_button.dblclick()
        panel.wait_attempt(count + 1)
        lab.page.wait_for_timeout(2_000)  # a second attempt, if one had started, would be logging now
        assert len(lab.runs(EXPERIMENT, ATTEMPTS)) == count + 1
        assert panel.board_rows() == rows_before + len(SETTINGS) + 1

        # Log the best attempt's model: the status says where and how long it took.
        panel.model_button.click()
        lab.page.get_by_text("Model of the best attempt logged in").first.wait_for(timeout=120_000)
        assert "runs:/" in panel.root.inner_text()
        assert panel.truncated_labels() == []
        lab.shot("05-panel-final.png", panel.root)

        # The check results stay readable in the dark theme: the words, and text that contrasts with the page.
        for theme, shot in (("JupyterLab Light", "05-check-light.png"), ("JupyterLab Dark", "05-check-dark.png")):
            lab.use_theme(theme)
            block = lab.page.locator(".coursekit-check").first
            block.scroll_into_view_if_needed()
            assert lab.contrast(block) >= 4.5, f"{theme}: the check's message is hard to read"
            assert "Not attempted" in block.inner_text()
            lab.shot(shot, block)
