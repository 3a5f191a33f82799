"""The grader's re-check: which exercises it re-asks, and what it answers from a real store."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import pytest

from coursekit.authoring.generate import pairs
from coursekit.instructor import recheck

REPO = Path(__file__).resolve().parents[3]
LESSONS = [solution.stem for solution, _ in pairs()]


def test_every_lesson_has_its_exercises() -> None:
    for lesson in LESSONS:
        keys = list(recheck.exercises(lesson))
        assert keys and keys == [f"q{i}" for i in range(1, len(keys) + 1)], lesson


def test_store_only_exercises_are_those_whose_check_takes_no_value() -> None:
    assert recheck.recheckable("01_first_run") == ["q1", "q2", "q3", "q5"]
    assert recheck.recheckable("04_compare_runs") == []
    assert recheck.recheckable("05_tune_interactively") == ["q3"]
    assert recheck.recheckable("not_a_lesson") == [] and recheck.recheckable("99_unknown") == []


def test_the_readme_lists_exactly_the_exercises_that_need_notebook_values() -> None:
    """The instructor section names, per lesson, the exercises whose displayed result counts as shown."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("Exercises the grader cannot re-check"):]
    section = section[: section.index("\n\n", section.index("\n- "))]
    listed = {m.group(1): m.group(2).replace(" ", "").split(",") for m in re.finditer(r"`(\d\d)_\w+`: ([q\d, ]+)", section)}
    expected = {}
    for lesson in LESSONS:
        needs = [k for k, ex in recheck.exercises(lesson).items() if k not in recheck.recheckable(lesson)]
        if needs:
            expected[lesson[:2]] = needs
    assert listed == expected


def test_an_empty_store_answers_not_attempted_and_no_file_is_created(tmp_path: Path) -> None:
    found = recheck.recheck("01_first_run", tmp_path)
    assert {k: v["outcome"] for k, v in found.items()} == dict.fromkeys(["q1", "q2", "q3", "q5"], "not attempted")
    assert found["q1"]["message"].startswith("⏳ Not attempted — q1: Log parameters.")
    assert list(tmp_path.iterdir()) == []


def test_it_reads_the_sandbox_store_and_restores_the_tracking_uri(lesson_store: str, mlflow_store: Path) -> None:
    """Nothing of the re-check's store is left behind: not in MLflow, not in the environment a kernel inherits."""
    import os

    before = mlflow.get_tracking_uri()
    environment = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    with mlflow.start_run(run_name="ex1-params"):
        mlflow.log_params({"model_type": "RandomForest", "numTrees": 10, "maxDepth": 4})
    with mlflow.start_run(run_name="ex2-tags"):
        mlflow.set_tags({"env": "prod", "user": "ann"})  # wrong env: the check says not yet
    found = recheck.recheck("01_first_run", mlflow_store)
    assert {k: v["outcome"] for k, v in found.items()} == {
        "q1": "correct", "q2": "incorrect", "q3": "not attempted", "q5": "not attempted"}
    assert mlflow.get_tracking_uri() == before
    assert {name: os.environ.get(name) for name in environment} == environment
    assert environment["MLFLOW_REGISTRY_URI"] is None  # so the registry follows the tracking store again:
    mlflow.set_tracking_uri(f"sqlite:///{mlflow_store / 'other.db'}")
    assert mlflow.get_registry_uri() == mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(before)


def test_an_exercise_can_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from coursekit.exercises import lesson01

    monkeypatch.setattr(lesson01.q5, "recheckable", False)
    assert recheck.recheckable("01_first_run") == ["q1", "q2", "q3"]


def test_the_worker_answers_and_reports_failures(tmp_path: Path) -> None:
    with recheck.Rechecker(tmp_path / "scratch") as rechecker:
        assert rechecker("04_compare_runs", tmp_path) == {}
        answer = rechecker("01_first_run", tmp_path / "no-store-here")
        assert set(answer["exercises"]) == {"q1", "q2", "q3", "q5"}
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "mlflow.db").write_text("not a database")
        outcomes = {k: v["outcome"] for k, v in rechecker("01_first_run", broken)["exercises"].items()}
        # Each check turns an unreadable store into a plain "incorrect", never a traceback.
        assert set(outcomes.values()) == {"incorrect"}


def test_a_hanging_recheck_is_an_error_and_the_worker_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with recheck.Rechecker(tmp_path / "scratch", timeout=0.001) as rechecker:
        answer = rechecker("01_first_run", tmp_path)
        assert answer == {"error": "the re-check took over 0 s"}
        rechecker.timeout = 120
        assert "exercises" in rechecker("01_first_run", tmp_path)


def test_checks_run_in_the_notebook_folder_and_the_working_directory_comes_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lesson 3 asks git for the commit of the folder the notebook ran in: the re-check must ask there too."""
    import os

    from coursekit.exercises import lesson03
    from coursekit.exercises.checks import correct

    seen: list[str] = []
    monkeypatch.setattr(lesson03.q3, "evaluate", lambda: seen.append(os.getcwd()) or correct())
    work = tmp_path / "work"
    work.mkdir()
    before = os.getcwd()
    found = recheck.recheck("03_log_model", tmp_path / "data", work)
    assert seen == [str(work)] and os.getcwd() == before
    assert found["q3"]["outcome"] == "correct"
