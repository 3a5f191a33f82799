"""Execute every notebook as a learner would, and read the MLflow store it wrote: through MLflow's client, and in the
MLflow UI in headless Chromium (the click paths lessons 4 and 6 teach)."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from xml.etree import ElementTree

import mlflow
import nbformat
import pyspark
import pytest
from answer_key import AnswerKey, grade_answer_key
from mlflow.tracking import MlflowClient
from nbrun import EXERCISES, LESSONS, REPO, SOLUTIONS, check_outcomes, error_outputs

from coursekit.authoring.ui_tour import take_tour, take_tree_tour
from coursekit.exercises import lesson01, lesson03, lesson04, lesson06, lesson07, lesson08
from coursekit.instructor.recheck import recheck, recheckable
from coursekit.settings import KERNEL_NAME
from coursekit.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, configure_tracking
from coursekit.ui import MlflowUI

pytestmark = pytest.mark.notebook


def test_every_solution_has_a_lesson_and_exercise_list() -> None:
    assert [p.name for p in SOLUTIONS] == [p.name for p in LESSONS]
    assert {p.stem for p in SOLUTIONS} == set(EXERCISES)


@dataclass
class SolutionRuns:
    """Every solution run twice in a row in one store: first by nbval, then by the grader (the answer key)."""

    nbval: dict[str, list[str]]  # solution stem -> the outcome of each of its nbval items (one per code cell)
    nbval_log: str
    store: Path  # nbval's course data folder: its mlflow.db as the first run left it, and every run's artifacts
    key: AnswerKey  # the grader's run of every solution, each from a copy of that database
    second: dict[str, nbformat.NotebookNode]  # the executed notebooks of the grader's run

    def first_uri(self) -> str:
        """Tracking URI of the store as it was after the first run of every solution."""
        return f"sqlite:///{self.store / 'mlflow.db'}"


def _nbval_outcomes(junit: Path) -> dict[str, list[str]]:
    outcomes: dict[str, list[str]] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        stem = Path(case.get("file") or case.get("classname", "").replace(".", "/")).stem
        verdicts = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes.setdefault(stem, []).append(verdicts[0] if verdicts else "passed")
    return outcomes


@pytest.fixture(scope="module")
def solution_runs(tmp_path_factory: pytest.TempPathFactory) -> SolutionRuns:
    """Run 1: nbval over solutions/, in a pytest session of its own, comparing the stored outputs (as CI's nbval
    pass did). Run 2: the answer key, ``python -m coursekit.instructor.grade --solutions``, each solution in a
    sandbox that starts from a copy of run 1's database (``--start-store``), as a learner's rerun.
    nbval's run is the first so that it compares the outputs a learner sees on a first run, exactly."""
    root = tmp_path_factory.mktemp("solutions")
    store = root / "store"
    store.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SPARK_REMOTE", "PYTEST_"))}
    env["COURSE_DATA_DIR"] = str(store)
    junit = root / "nbval.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *map(str, SOLUTIONS), "--nbval-lax", "--nbval-kernel-name", KERNEL_NAME,
         "--nbval-sanitize-with", str(REPO / "tests" / "nbval_sanitize.cfg"), "-p", "no:cacheprovider", "-q",
         f"--junitxml={junit}", "-o", "junit_family=xunit1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3600, check=False,
    )
    first = root / "first-run.db"
    shutil.copyfile(store / "mlflow.db", first)  # the grader's sandboxes copy this one; the store's own stays as run 1 left it
    key = grade_answer_key(root / "key", "--solutions", "--start-store", str(first))
    second = {s.stem: nbformat.read(key.executed("solutions", s.stem), as_version=4)
              for s in SOLUTIONS if key.executed("solutions", s.stem).is_file()}
    return SolutionRuns(_nbval_outcomes(junit) if junit.exists() else {}, done.stdout[-5000:] + done.stderr[-3000:],
                        store, key, second)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_nbval_first_run_matches_the_stored_outputs(solution: Path, solution_runs: SolutionRuns) -> None:
    """Standalone from a fresh kernel and a fresh store: every tagged output (checks included) as stored."""
    code_cells = [c for c in nbformat.read(solution, as_version=4).cells if c.cell_type == "code"]
    outcomes = solution_runs.nbval.get(solution.stem, [])
    assert outcomes == ["passed"] * len(code_cells), solution_runs.nbval_log


def test_the_answer_key_scores_full_marks_on_the_rerun(solution_runs: SolutionRuns) -> None:
    """The documented grading command on every solution, each starting from the store its first run left."""
    key = solution_runs.key
    assert key.done.returncode == 0, key.done.stdout[-2000:] + key.done.stderr[-2000:]
    assert sorted((r["learner"], r["lesson"]) for r in key.rows) == [("solutions", p.stem) for p in SOLUTIONS]
    for r in key.rows:
        keys = [k for k in ("q1", "q2", "q3", "q4", "q5") if r[f"{k} outcome"]]
        # "ok": no re-check disagreed with what the notebook showed, and none failed.
        assert r["status"] == "ok", (r["lesson"], r["reason"])
        assert keys == sorted(EXERCISES[r["lesson"]]) and {r[f"{k} outcome"] for k in keys} == {"correct"}, r["lesson"]
        assert float(r["total"]) == float(r["max"]) == len(keys), r["lesson"]
    assert (key.out / "solutions.html").is_file()
    # Each sandbox started from run 1's database, whose experiments keep their artifact folders: run 2's model files
    # sit there beside run 1's, in folders of runs that run 1's database does not have.
    client = MlflowClient(tracking_uri=solution_runs.first_uri())
    for name in (lesson01.EXPERIMENT, lesson03.EXPERIMENT):
        experiment = client.get_experiment_by_name(name)
        first = {r.info.run_id for r in client.search_runs([experiment.experiment_id], max_results=1000)}
        folder = Path(urlparse(experiment.artifact_location).path)
        assert {p.name for p in folder.iterdir()} - first, name


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_passes_every_check_again_in_the_same_store(solution: Path, solution_runs: SolutionRuns) -> None:
    """The second run, against the store the first one filled (no 'already exists'), passes every check."""
    nb = solution_runs.second[solution.stem]
    assert error_outputs(nb) == []
    assert check_outcomes(nb) == {key: "correct" for key in EXERCISES[solution.stem]}
    # The grader re-asks the store-only checks once a notebook has run; here they are asked of run 1's store.
    again = recheck(solution.stem, solution_runs.store)
    assert {key: answer["outcome"] for key, answer in again.items()} == dict.fromkeys(recheckable(solution.stem), "correct")


@pytest.fixture
def first_run_store(solution_runs: SolutionRuns) -> Iterator[SolutionRuns]:
    """MLflow in the test process reads the store as the solutions' first run left it."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(solution_runs.first_uri())
    yield solution_runs
    mlflow.set_tracking_uri(previous)


def test_lesson01_solution_writes_the_runs_it_teaches(tmp_path: Path, first_run_store: SolutionRuns) -> None:
    """Read the store the notebook wrote: experiment tag, params, tags, metric range, model files."""
    params = _parameters(SOLUTIONS[0])
    client = MlflowClient()
    experiment = client.get_experiment_by_name(lesson01.EXPERIMENT)
    assert experiment is not None
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert experiment.artifact_location.startswith((first_run_store.store / "artifacts").as_uri())

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


def _parameters(solution: Path) -> dict[str, object]:
    """The values of a notebook's `parameters` cell."""
    cells = json.loads(solution.read_text(encoding="utf-8"))["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    values: dict[str, object] = {}
    exec(source, {}, values)  # noqa: S102 - our own notebook's constants
    return values


def test_lesson06_solution_writes_what_the_lesson_says_autolog_records(first_run_store: SolutionRuns) -> None:
    """Every claim lesson 6 makes about MLflow 3.17's pyspark.ml autolog, read from the store its first run wrote."""
    solution = next(p for p in SOLUTIONS if p.stem == "06_autolog_nested_runs")
    values = _parameters(solution)
    nb = first_run_store.second[solution.stem]  # the grader's run: its markdown and stderr are what every run shows
    # silent=True: none of MLflow's own autologging messages reach the notebook.
    stderr = "".join(out.get("text", "") for c in nb.cells if c.cell_type == "code" for out in c.get("outputs", [])
                     if out.get("name") == "stderr")
    assert "Created MLflow autologging run" not in stderr and "mlflow" not in stderr

    client = MlflowClient()
    experiment = client.get_experiment_by_name(lesson06.EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    named = {r.info.run_name: r for r in runs}
    artifacts = {r.info.run_id: {a.path for a in client.list_artifacts(r.info.run_id)} for r in runs}
    # Nothing anywhere holds a model: log_models=False for every fit.
    assert not any(paths & {"model", "best_model"} for paths in artifacts.values())

    # Section 1 (exercise 1, and the fit of section 2's demo): runs autolog created itself.
    created = [r for r in runs if r.data.tags.get("mlflow.autologging") == "pyspark.ml" and "mlflow.parentRunId" not in r.data.tags]
    assert len(created) == 2
    for run in created:
        params, tags = run.data.params, run.data.tags
        assert len(params) == 25
        assert params["stages"] == "['VectorAssembler', 'RandomForestClassifier']"
        assert params["VectorAssembler.outputCol"] == "features"
        assert params["RandomForestClassifier.numTrees"] == str(values["NUM_TREES"])
        assert params["RandomForestClassifier.maxDepth"] == str(values["MAX_DEPTH"])
        assert (tags["estimator_class"], tags["estimator_name"]) == ("pyspark.ml.pipeline.Pipeline", "Pipeline")
        assert set(run.data.metrics) == {"areaUnderROC_test"} and 0.5 < run.data.metrics["areaUnderROC_test"] <= 1
        assert artifacts[run.info.run_id] == {"estimator_info.json", "metric_info.json"}
        assert run.inputs.dataset_inputs == []  # log_datasets=False

    # Section 2: the mistake leaves a second run with only the metric; the fix fills the learner's own run,
    # which carries the estimator tags but not mlflow.autologging.
    second = named["demo-two-runs"]
    assert second.data.params == {} and set(second.data.metrics) == {"test_auc"}
    assert "mlflow.autologging" not in second.data.tags and "estimator_class" not in second.data.tags
    own = named[lesson06.OWN_METRIC_RUN]
    assert "mlflow.autologging" not in own.data.tags and own.data.tags["estimator_class"] == "pyspark.ml.pipeline.Pipeline"
    assert len(own.data.params) == 25 and {"test_auc", "areaUnderROC_test"} <= set(own.data.metrics)
    assert own.data.metrics["test_auc"] == pytest.approx(own.data.metrics["areaUnderROC_test"], abs=1e-9)

    # Section 3: the search is one parent (the learner's run) and one child per candidate, carrying the searched params.
    parent = named[lesson06.SEARCH_RUN]
    assert parent.data.tags["estimator_class"] == "pyspark.ml.tuning.CrossValidator"
    assert "mlflow.autologging" not in parent.data.tags
    assert parent.data.params["numFolds"] == str(values["NUM_FOLDS"])
    assert artifacts[parent.info.run_id] == {"best_parameters.json", "estimator_info.json", "search_results.csv"}
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    cells = set(itertools.product(values["NUM_TREES_GRID"], values["MAX_DEPTH_GRID"]))
    assert len(children) == len(cells)
    assert {(int(c.data.params["RandomForestClassifier.numTrees"]), int(c.data.params["RandomForestClassifier.maxDepth"]))
            for c in children} == cells
    for child in children:
        assert child.data.tags["mlflow.autologging"] == "pyspark.ml" and child.info.status == "FINISHED"
        assert child.data.tags["estimator_class"] == "pyspark.ml.pipeline.Pipeline"
        assert set(child.data.metrics) == {"avg_areaUnderROC", "std_areaUnderROC"}
        assert artifacts[child.info.run_id] == set()
    best = max(children, key=lambda c: c.data.metrics["avg_areaUnderROC"])
    for name in ("numTrees", "maxDepth"):
        assert parent.data.params[f"best_RandomForestClassifier.{name}"] == best.data.params[f"RandomForestClassifier.{name}"]
    # The numbers the lesson's text states about this search follow from the parameters cell.
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    folds = values["NUM_FOLDS"]
    assert f"{len(cells)} children; Spark fitted {len(cells)} candidates × {folds} folds = {len(cells) * folds} forests" in text

    # Section 4: forgetting nested=True fails the open parent; nested=True makes children of the parent, autolog off.
    assert named["demo-forgot-nested"].info.status == "FAILED" and "demo-child" not in named
    manual = named[lesson06.MANUAL_RUN]
    hand = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == manual.info.run_id]
    assert {(int(r.data.params["numTrees"]), int(r.data.params["maxDepth"])) for r in hand} == cells
    for child in hand:
        assert set(child.data.params) == {"numTrees", "maxDepth"} and set(child.data.metrics) == {"AUC"}
        assert not {"mlflow.autologging", "estimator_class"} & set(child.data.tags)


def test_registry_after_lesson07_then_capstone_in_one_store(first_run_store: SolutionRuns) -> None:
    """Read the registry lesson 7 then the capstone wrote (their first run): versions, tags, description, aliases."""

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


# The MLflow UI in headless Chromium over the store the solutions' first run wrote: the click paths lessons 4 and 6
# teach (and their screenshots show), on exactly the runs a learner's first run of those lessons creates.
# They used to execute lessons 4 and 6 once more into stores of their own (about two minutes of CPU, issue 14).

UI_SHOTS = REPO / ".ci-artifacts" / "lesson06-tree"  # git-ignored; look at them after a UI change
LESSON04_SHOTS = ["04-runs-table.png", "04-search-filter.png", "04-compare-parallel.png", "04-compare-diff.png"]
LESSON06_SHOTS = ["06-search-tree.png", "06-parent-run.png"]


@pytest.fixture
def first_run_ui(solution_runs: SolutionRuns, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowUI]:
    """The course's MLflow UI serving the first run's store, as the learner's own UI would; stopped afterwards."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(solution_runs.store))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the store is the one in COURSE_DATA_DIR
    previous = mlflow.get_tracking_uri()
    configure_tracking()
    ui = MlflowUI()
    ui.start()
    try:
        yield ui
    finally:
        ui.stop()
        mlflow.set_tracking_uri(previous)


def test_ui_lists_filters_and_compares_lesson04s_runs(first_run_ui: MlflowUI, tmp_path: Path) -> None:
    values = _parameters(next(p for p in SOLUTIONS if p.stem == "04_compare_runs"))
    runs = lesson04.grid_runs()
    names = {r.info.run_name for r in runs}
    assert len(names) == len(runs) == len(values["NUM_TREES_GRID"]) * len(values["MAX_DEPTH_GRID"])
    best = runs[0]
    threshold = best.data.metrics["AUC"] - 1e-9
    at_best = {r.info.run_name for r in runs if r.data.metrics["AUC"] >= threshold}  # ties, if the grid has any
    compare = [runs[0].info.run_name, runs[1].info.run_name, runs[-1].info.run_name]

    result = take_tour(
        first_run_ui.experiment_url(best.info.experiment_id), tmp_path, prefix="rf-", all_runs=names,
        filter_string=f"metrics.AUC >= {threshold}", filter_expected=at_best, compare=compare,
    )

    assert set(result.table_runs) == names, "the runs table lists every grid run by name"
    assert set(result.filtered_runs) == at_best and best.info.run_name in result.filtered_runs, "the search box finds the best run"
    assert len(at_best) < len(names), "the filter leaves runs out"
    assert result.compared_runs == compare, "the compare view names the selected runs"
    assert result.parallel_axes == ["maxDepth", "numTrees", "AUC"], "a parallel-coordinates plot of params → AUC"
    assert {"model_type", "seed"} <= set(result.diff_only_hides), "Show diff only hides identical params"
    assert "numTrees" not in result.diff_only_hides and "maxDepth" not in result.diff_only_hides
    assert [p.name for p in result.screenshots] == LESSON04_SHOTS
    for shot in result.screenshots:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_lesson04_shows_the_screenshots_the_tour_produces() -> None:
    lesson = (REPO / "lessons" / "04_compare_runs.ipynb").read_text(encoding="utf-8")
    for name in LESSON04_SHOTS:
        assert f"](img/{name})" in lesson
        assert (REPO / "lessons" / "img" / name).is_file()


def test_ui_unfolds_lesson06s_search_parent_into_its_child_runs(first_run_ui: MlflowUI) -> None:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(lesson06.EXPERIMENT)
    assert experiment is not None
    parents = client.search_runs([experiment.experiment_id], filter_string=f"attributes.run_name = '{lesson06.SEARCH_RUN}'")
    assert len(parents) == 1, "the solution logs one cross-validation parent"
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'"
    )
    names = {r.info.run_name for r in children}
    assert 2 <= len(names) == len(children), "one child run per candidate, each with its own name"
    columns = ["avg_areaUnderROC", "RandomForestClassifier.numTrees", "RandomForestClassifier.maxDepth"]

    UI_SHOTS.mkdir(parents=True, exist_ok=True)
    result = take_tree_tour(
        first_run_ui.experiment_url(experiment.experiment_id), UI_SHOTS, parent=lesson06.SEARCH_RUN, children=names,
        columns=columns, hide_columns=["Dataset", "Source", "Models"],
    )

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
    assert [p.name for p in result.screenshots] == LESSON06_SHOTS
    for shot in result.screenshots:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_lesson06_shows_the_screenshots_the_tour_produces() -> None:
    for notebook in (REPO / "solutions" / "06_autolog_nested_runs.ipynb", REPO / "lessons" / "06_autolog_nested_runs.ipynb"):
        text = notebook.read_text(encoding="utf-8")
        assert sorted(set(re.findall(r"\]\(img/(06-[^)]*)\)", text))) == sorted(LESSON06_SHOTS), notebook.name
    for name in LESSON06_SHOTS:
        assert (REPO / "lessons" / "img" / name).is_file()
