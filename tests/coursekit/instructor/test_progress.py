"""coursekit.instructor.progress: which exercises a tracking server can judge, the table it writes, and real checks per learner."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from coursekit.instructor import progress
from coursekit.instructor.progress import SERVER_BLIND, Progress, collect, lesson_stems, plan, render_csv, render_html
from coursekit.instructor.recheck import exercises, recheckable
from coursekit.tracking import COURSE_NAME, COURSE_TAG, LEARNER_TAG


def test_every_exercise_is_either_judged_or_explained() -> None:
    lessons = lesson_stems()
    assert lessons[0] == "01_first_run" and len(lessons) == 8
    judged, not_judged = plan(lessons)
    every = {(lesson, key) for lesson in lessons for key in exercises(lesson)}
    assert set(judged) | set(not_judged) == every and not set(judged) & set(not_judged)
    # Judged: exactly the grader's store-only re-checks, minus what needs the learner's checkout.
    assert set(judged) == {(lesson, key) for lesson in lessons for key in recheckable(lesson)} - set(SERVER_BLIND)
    assert not_judged[("03_log_model", "q3")] == SERVER_BLIND[("03_log_model", "q3")]
    assert not_judged[("01_first_run", "q4")] == "its check needs a value from the learner's notebook (q4.check(...))"


def _table() -> Progress:
    table = Progress("http://127.0.0.1:5055", [("01_first_run", "q1"), ("01_first_run", "q2")], {("01_first_run", "q4"): "why"})
    table.cells = {
        "zoe": {("01_first_run", "q1"): ("correct", "q1: fine"), ("01_first_run", "q2"): ("incorrect", "q2: <tag> missing")},
        "<b>ann</b>": {("01_first_run", "q1"): ("not attempted", "q1: no run")},
    }
    return table


def test_the_csv_has_one_row_per_learner_and_one_column_per_judged_exercise() -> None:
    rows = list(csv.reader(io.StringIO(render_csv(_table()))))
    assert rows[0] == ["learner", "01_first_run q1", "01_first_run q2", "correct", "judged"]
    assert rows[1] == ["<b>ann</b>", "not attempted", "", "0", "2"]
    assert rows[2] == ["zoe", "correct", "incorrect", "1", "2"]


def test_the_html_escapes_what_learners_wrote_and_lists_what_it_cannot_judge() -> None:
    page = render_html(_table())
    assert "<b>ann</b>" not in page and "&lt;b&gt;ann&lt;/b&gt;" in page
    assert 'title="q2: &lt;tag&gt; missing"' in page
    assert "Not judged from the server" in page and "01_first_run q4: why" in page
    assert "✓ correct" in page and "✗ incorrect" in page
    assert '<th title="01_first_run">01 q1</th>' in page


def test_learners_are_found_by_the_course_experiments_tag(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'class.db'}"
    client = MlflowClient(tracking_uri=uri)
    for name, tags in [
        ("bob-lesson-01-first-run", {COURSE_TAG: COURSE_NAME, LEARNER_TAG: "bob"}),
        ("ann-lesson-01-first-run", {COURSE_TAG: COURSE_NAME, LEARNER_TAG: "ann"}),
        ("ann-lesson-03-log-model", {COURSE_TAG: COURSE_NAME, LEARNER_TAG: "ann"}),
        ("somebody-elses", {LEARNER_TAG: "mallory"}),  # not a course experiment
        ("lesson-01-first-run", {COURSE_TAG: COURSE_NAME}),  # a private store's plain name: nobody's
    ]:
        client.create_experiment(name, tags=tags)
    assert progress.learners(uri) == ["ann", "bob"]


def test_collect_asks_the_real_checks_for_each_learner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong answer is incorrect, a missing one not attempted, and one learner never reads another's runs."""
    uri = f"sqlite:///{tmp_path / 'class.db'}"
    client = MlflowClient(tracking_uri=uri)
    for learner in ("ann", "bob"):
        client.create_experiment(f"{learner}-lesson-01-first-run", tags={COURSE_TAG: COURSE_NAME, LEARNER_TAG: learner},
                                 artifact_location=(tmp_path / learner).as_uri())
    experiment = client.get_experiment_by_name("ann-lesson-01-first-run")
    run = client.create_run(experiment.experiment_id, run_name="ex1-params")
    client.log_param(run.info.run_id, "numTrees", "3")  # model_type and maxDepth missing
    client.set_terminated(run.info.run_id)
    table = collect(uri, lessons=["01_first_run"], workers=1)
    assert table.columns == [("01_first_run", k) for k in ("q1", "q2", "q3", "q5")]
    assert table.cells["ann"][("01_first_run", "q1")][0] == "incorrect"
    assert table.cells["bob"][("01_first_run", "q1")][0] == "not attempted"
    assert {outcome for outcome, _ in table.cells["bob"].values()} == {"not attempted"}
    assert mlflow.get_tracking_uri() != uri  # the workers' stores never leak into this process


def test_main_needs_a_tracking_server(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert progress.main([]) == 2
    assert "give the class tracking server: --tracking-uri http://host:port" in capsys.readouterr().err
    assert progress.main(["--tracking-uri", "sqlite:///x.db"]) == 2


def test_main_says_in_one_line_when_the_server_does_not_answer(capsys) -> None:
    assert progress.main(["--tracking-uri", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ERROR: The tracking server http://127.0.0.1:9 does not answer") and "\n" not in err


def test_the_readme_counts_what_the_server_can_and_cannot_judge() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    judged, not_judged = plan(lesson_stems())
    from_values = [k for k, why in not_judged.items() if why.startswith("its check needs a value")]
    assert f"It judges the {len(judged)} exercises" in readme
    assert f"lists the other {len(not_judged)} with the reason: {len(from_values)} need a value" in readme
