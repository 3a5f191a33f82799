"""Execute every notebook as a learner would, and read the MLflow store it wrote."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pyspark
import pytest
from mlflow.tracking import MlflowClient

from nbrun import FAST_PARAMETERS, LESSONS, SOLUTIONS, check_outcomes, error_outputs, run_notebook
from coursekit import lesson01, lesson07, lesson08
from coursekit.recheck import recheck, recheckable
from coursekit.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

EXERCISES = {
    "01_first_run": {"q1", "q2", "q3", "q4", "q5"},
    "02_log_metrics": {"q1", "q2", "q3", "q4", "q5"},
    "03_log_model": {"q1", "q2", "q3", "q4", "q5"},
    "04_compare_runs": {"q1", "q2", "q3", "q4"},
    "05_tune_interactively": {"q1", "q2", "q3"},
    "07_model_registry": {"q1", "q2", "q3", "q4", "q5"},
    "08_capstone": {"q1", "q2", "q3"},
}

pytestmark = pytest.mark.notebook


def test_every_solution_has_a_lesson_and_exercise_list() -> None:
    assert [p.name for p in SOLUTIONS] == [p.name for p in LESSONS]
    assert {p.stem for p in SOLUTIONS} == set(EXERCISES)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_passes_every_check_twice_in_the_same_store(solution: Path, tmp_path: Path, course_store: Path) -> None:
    """Standalone from a fresh kernel, and again against the same store (no 'already exists')."""
    params = FAST_PARAMETERS.get(solution.stem, {})
    for attempt in (1, 2):
        nb = run_notebook(solution, tmp_path / f"run{attempt}.ipynb", course_store, params)
        assert error_outputs(nb) == [], f"attempt {attempt}"
        outcomes = check_outcomes(nb)
        assert outcomes == {key: "correct" for key in EXERCISES[solution.stem]}, f"attempt {attempt}"
    # The grader re-asks the store-only checks once the notebook has run: the answer key must still hold then.
    again = recheck(solution.stem, course_store)
    assert {key: answer["outcome"] for key, answer in again.items()} == dict.fromkeys(recheckable(solution.stem), "correct")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_shipped_lesson_runs_clean_and_reports_not_attempted(lesson: Path, tmp_path: Path, course_store: Path) -> None:
    nb = run_notebook(lesson, tmp_path / "lesson.ipynb", course_store, FAST_PARAMETERS.get(lesson.stem, {}))
    assert error_outputs(nb) == []
    assert check_outcomes(nb) == {key: "not attempted" for key in EXERCISES[lesson.stem]}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            assert "Traceback" not in str(out), cell.source


def test_lesson01_solution_writes_the_runs_it_teaches(tmp_path: Path, course_store: Path) -> None:
    """Read the store the notebook wrote: experiment tag, params, tags, metric range, model files."""
    params = FAST_PARAMETERS["01_first_run"]
    nb = run_notebook(SOLUTIONS[0], tmp_path / "out.ipynb", course_store, params)
    assert error_outputs(nb) == []

    client = MlflowClient()
    experiment = client.get_experiment_by_name(lesson01.EXPERIMENT)
    assert experiment is not None
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert experiment.artifact_location.startswith((course_store / "artifacts").as_uri())

    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert {"hello-run", "ex1-params", "ex2-tags", "ex3-auc", "small-forest", "seed-snippet", "ex5-model"} <= set(runs)
    assert all(r.info.status == "FINISHED" for r in runs.values())

    assert runs["ex1-params"].data.params == {
        "model_type": "RandomForest", "numTrees": str(params["NUM_TREES"]), "maxDepth": str(params["MAX_DEPTH"])
    }
    assert runs["ex2-tags"].data.tags["env"] == "dev"
    assert runs["ex2-tags"].data.tags["user"] == params["LEARNER"]

    auc = runs["ex3-auc"].data.metrics["AUC"]
    assert 0.6 < auc <= 1.0
    # The seed snippet and exercise 5 score the same seeded model on the same split.
    assert runs["seed-snippet"].data.metrics["AUC"] == pytest.approx(runs["ex5-model"].data.metrics["AUC"], abs=1e-9)
    assert runs["small-forest"].data.params["numTrees"] == "3"

    for name in ("seed-snippet", "ex5-model"):
        files = {a.path for a in client.list_artifacts(runs[name].info.run_id, "rf_model")}
        assert {"rf_model/MLmodel", "rf_model/requirements.txt", "rf_model/sparkml"} <= files
        requirements = client.download_artifacts(runs[name].info.run_id, "rf_model/requirements.txt", str(tmp_path))
        lines = Path(requirements).read_text().split()
        # Explicit pip_requirements were recorded verbatim (no inference subprocess).
        assert sorted(lines) == sorted([f"mlflow=={mlflow.__version__}", f"pyspark=={pyspark.__version__}"])


def test_registry_after_lesson07_then_capstone_in_one_store(tmp_path: Path, course_store: Path) -> None:
    """Read the registry the two notebooks wrote: versions, tags, description, and where the aliases point."""
    registry, capstone = (next(p for p in SOLUTIONS if p.stem == stem) for stem in ("07_model_registry", "08_capstone"))
    for notebook in (registry, capstone):
        nb = run_notebook(notebook, tmp_path / notebook.name, course_store, FAST_PARAMETERS[notebook.stem])
        assert error_outputs(nb) == [], notebook.stem
        assert set(check_outcomes(nb).values()) == {"correct"}, notebook.stem

    client = MlflowClient()
    model = client.get_registered_model(lesson07.MODEL_NAME)
    assert model.description
    assert model.tags[lesson07.TASK_TAG] == lesson07.TASK
    versions = client.search_model_versions(f"name = '{lesson07.MODEL_NAME}'")
    # Lesson 7 registers the baseline and its best run; the capstone registers its pick.
    assert len(versions) == 3
    auc = {int(v.version): client.get_run(v.run_id).data.metrics["AUC"] for v in versions}
    for v in versions:
        assert float(v.tags[lesson07.AUC_TAG]) == pytest.approx(auc[int(v.version)], abs=5e-4)

    capstone_version = max(versions, key=lambda v: int(v.version))
    capstone_run = client.get_run(capstone_version.run_id)
    assert client.get_experiment(capstone_run.info.experiment_id).name == lesson08.EXPERIMENT
    assert int(capstone_run.data.params["maxDepth"]) <= lesson08.MAX_DEPTH_LIMIT
    assert capstone_version.description

    aliases = model.aliases
    assert set(aliases) == {"champion", "challenger"}
    assert aliases["champion"] != aliases["challenger"]
    # Aliases only ever move to a strictly better model, so the champion holds the best AUC of the versions.
    champion_auc = auc[int(aliases["champion"])]
    assert champion_auc >= max(auc.values()) - lesson07.TIE
    assert champion_auc > auc[1]  # the small baseline of lesson 7 was replaced
    info = mlflow.models.get_model_info(f"models:/{lesson07.MODEL_NAME}@champion")
    assert info.run_id == client.get_model_version(lesson07.MODEL_NAME, aliases["champion"]).run_id
