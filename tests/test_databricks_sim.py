"""The Databricks simulation's own rules (tests/databricks_sim): each refusal with its message, and what passes.

The rule functions are tested directly; then the fake workspace runs in front of a real ``mlflow server`` and
the real clients (MLflow's REST stores, the Databricks SDK) meet the same rules over HTTP, as the simulated
notebook kernel does in ``test_mode_databricks.py``. No Spark, no notebook.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from databricks_sim import USER, Simulation
from databricks_sim.workspace import (
    INPUTS_ONLY,
    NO_SIGNATURE,
    Workspace,
    endpoint,
    experiment_create_refusal,
    search_model_versions_refusal,
    search_registered_models_refusal,
    signature_refusal,
    strip_search_response,
    three_part_refusal,
)

HOME = f"/Users/{USER}"
MODEL = "sim_catalog.default.toy"


# ---------------------------------------------------------------- the rules themselves


def test_mkdirs_only_in_the_users_home() -> None:
    workspace = Workspace(USER)
    assert workspace.mkdirs(f"{HOME}/mlflow-course/deeper") is None
    assert workspace.folders == {f"{HOME}/mlflow-course", f"{HOME}/mlflow-course/deeper"}
    protected = workspace.mkdirs("/Users")
    assert protected.status == 403 and protected.message == "Folder Users is protected"
    other = workspace.mkdirs("/Users/someone.else@example.com/x")
    assert other.status == 403 and other.error_code == "PERMISSION_DENIED"
    assert workspace.mkdirs("relative/folder").status == 400


def test_experiment_names_are_absolute_workspace_paths_in_an_existing_folder() -> None:
    workspace = Workspace(USER)
    plain = experiment_create_refusal({"name": "lesson-01-first-run"}, workspace)
    assert plain.status == 400 and plain.error_code == "INVALID_PARAMETER_VALUE"
    assert "must be an absolute path within the Databricks workspace" in plain.message
    prefixed = experiment_create_refusal({"name": f"/Workspace{HOME}/mlflow-course/x"}, workspace)
    assert prefixed.status == 400 and "/Workspace/" in prefixed.message
    missing = experiment_create_refusal({"name": f"{HOME}/mlflow-course/x"}, workspace)
    assert (missing.status, missing.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert missing.message == f"Parent directory {HOME}/mlflow-course does not exist."
    assert experiment_create_refusal({"name": f"{HOME}/x"}, workspace) is None  # the home folder exists
    workspace.mkdirs(f"{HOME}/mlflow-course")
    assert experiment_create_refusal({"name": f"{HOME}/mlflow-course/x"}, workspace) is None
    located = experiment_create_refusal({"name": f"{HOME}/mlflow-course/x", "artifact_location": "file:///tmp/a"}, workspace)
    assert located.status == 400 and "artifact_location" in located.message


@pytest.mark.parametrize("name", ["pima-diabetes-rf", "default.pima", "a.b.c.d", "a..c", ".b.c"])
def test_model_names_need_three_parts(name: str) -> None:
    refusal = three_part_refusal(name)
    assert refusal.status == 400 and "specify all three levels" in refusal.message  # what MLflow's UC store keys on


def test_three_part_names_pass() -> None:
    assert three_part_refusal("workspace.default.pima_diabetes_rf") is None


def test_model_version_search_takes_one_name_or_run_id_condition_and_no_order_by() -> None:
    assert search_model_versions_refusal({"filter": ["name = 'a.b.c'"]}) is None
    assert search_model_versions_refusal({"filter": ['run_id="abc"']}) is None
    assert search_model_versions_refusal({}) is None
    ordered = search_model_versions_refusal({"filter": ["name = 'a.b.c'"], "order_by": ["version_number DESC"]})
    assert ordered.message == "Argument 'order_by' is unsupported for models in the Unity Catalog."
    for unsupported in ("name = 'a.b.c' AND run_id = 'x'", "name LIKE 'a.%'", "tags.stage = 'prod'", "version_number > 1"):
        assert search_model_versions_refusal({"filter": [unsupported]}).status == 400, unsupported


def test_registered_model_search_takes_no_filter_or_order_by() -> None:
    assert search_registered_models_refusal({"max_results": ["100"]}) is None
    # What MLflow's open-source client adds by itself to leave prompts out stands for "no filter".
    assert search_registered_models_refusal({"filter": ["tag.`mlflow.prompt.is_prompt` != 'true'"]}) is None
    combined = "name = 'a.b.c' AND tag.`mlflow.prompt.is_prompt` != 'true'"
    assert search_registered_models_refusal({"filter": [combined]}).status == 400
    assert "'filter_string' is unsupported" in search_registered_models_refusal({"filter": ["name LIKE '%'"]}).message
    assert "'order_by' is unsupported" in search_registered_models_refusal({"order_by": ["name"]}).message


def test_registration_needs_a_signature_with_inputs_and_outputs() -> None:
    assert signature_refusal(None).message == NO_SIGNATURE
    assert signature_refusal({"flavors": {}}).message == NO_SIGNATURE
    assert signature_refusal({"signature": {"inputs": "[...]"}}).message == INPUTS_ONLY
    assert signature_refusal({"signature": {"inputs": "[...]", "outputs": "[...]"}}) is None
    assert NO_SIGNATURE.startswith("Model passed for registration did not contain any signature metadata.")


def test_listings_lose_tags_aliases_and_model_ids() -> None:
    versions = {"model_versions": [{"name": "a.b.c", "version": "1", "tags": [{"key": "k"}], "aliases": ["champion"],
                                    "model_id": "m-1", "run_id": "r"}]}
    assert strip_search_response("model-versions", versions) == {"model_versions": [{"name": "a.b.c", "version": "1", "run_id": "r"}]}
    models = {"registered_models": [{"name": "a.b.c", "tags": [{"key": "k"}], "aliases": [{"alias": "champion"}]}]}
    assert strip_search_response("registered-models", models) == {"registered_models": [{"name": "a.b.c"}]}


def test_endpoints_are_read_from_both_api_prefixes() -> None:
    assert endpoint("/api/2.0/mlflow/model-versions/search") == "model-versions/search"
    assert endpoint("/ajax-api/2.0/mlflow/experiments/create") == "experiments/create"
    assert endpoint("/api/2.0/mlflow-artifacts/artifacts/1/x") == ""


# ---------------------------------------------------------------- over HTTP, with the real clients


@pytest.fixture(scope="module")
def simulation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulation]:
    with Simulation(tmp_path_factory.mktemp("databricks-sim-unit")) as simulated:
        yield simulated


@pytest.fixture
def through_workspace(simulation: Simulation, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    """MLflow's tracking and registry URIs on the fake workspace for one test, then as they were."""
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils

    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setattr(registry_utils, "_registry_uri", registry_utils._registry_uri)
    monkeypatch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)
    mlflow.set_tracking_uri(simulation.url)
    mlflow.set_registry_uri(simulation.url)
    try:
        yield MlflowClient(tracking_uri=simulation.url, registry_uri=simulation.url)
    finally:
        os.environ.pop("MLFLOW_REGISTRY_URI", None)


@pytest.mark.modes
def test_the_databricks_sdk_makes_folders_in_the_users_home_only(simulation: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import PermissionDenied

    monkeypatch.setenv("DATABRICKS_HOST", simulation.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-simulated-token")
    client = WorkspaceClient()
    client.workspace.mkdirs(f"{HOME}/sdk-made")
    with pytest.raises(PermissionDenied, match="Folder Users is protected"):
        client.workspace.mkdirs("/Users")
    journal = simulation.journal()
    assert f"{HOME}/sdk-made" in journal["folders"]
    made = [r for r in journal["requests"] if r["path"] == "/api/2.0/workspace/mkdirs"]
    assert made[0]["auth"] == "Bearer dapi-simulated-token"


@pytest.mark.modes
def test_experiments_through_the_workspace(simulation: Simulation, through_workspace: MlflowClient) -> None:
    client = through_workspace
    with pytest.raises(MlflowException, match="must be an absolute path"):
        client.create_experiment("lesson-01-first-run")
    with pytest.raises(MlflowException, match=f"Parent directory {HOME}/course-x does not exist"):
        client.create_experiment(f"{HOME}/course-x/lesson")
    _mkdirs(simulation, f"{HOME}/course-x")
    with pytest.raises(MlflowException, match="artifact_location"):
        client.create_experiment(f"{HOME}/course-x/lesson", artifact_location="file:///tmp/elsewhere")
    experiment_id = client.create_experiment(f"{HOME}/course-x/lesson")
    experiment = client.get_experiment_by_name(f"{HOME}/course-x/lesson")
    assert experiment.experiment_id == experiment_id
    assert experiment.artifact_location.startswith("mlflow-artifacts:/")


@pytest.mark.modes
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_unity_catalog_rules_through_the_workspace(simulation: Simulation, through_workspace: MlflowClient, tmp_path: Path) -> None:
    import mlflow.pyfunc  # its import warns about type hints: here, under this test's filter

    class _Identity(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # noqa: ARG002 - MLflow's signature
            return model_input

    client = through_workspace
    _mkdirs(simulation, f"{HOME}/uc")
    mlflow.set_experiment(f"{HOME}/uc/registry")
    with pytest.raises(MlflowException, match="specify all three levels"):
        client.create_registered_model("toy")
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(300_000))  # more than one 64 KB piece each way
    both = ModelSignature(inputs=Schema([ColSpec("double", "x")]), outputs=Schema([ColSpec("double")]))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(payload))
        bare = mlflow.pyfunc.log_model(name="bare", python_model=_Identity(), pip_requirements=[])
        inputs_only = mlflow.pyfunc.log_model(name="inputs_only", python_model=_Identity(), pip_requirements=[],
                                              signature=ModelSignature(inputs=both.inputs))
        signed = mlflow.pyfunc.log_model(name="signed", python_model=_Identity(), pip_requirements=[], signature=both)
    # Artifacts pass through unchanged, both ways.
    back = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="payload.bin", dst_path=str(tmp_path / "back"))
    assert Path(back).read_bytes() == payload.read_bytes()
    # Registration: by run path (a runs:/ source) and by logged model (models:/m-... with its model id).
    with pytest.raises(MlflowException, match="did not contain any signature metadata"):
        mlflow.register_model(f"runs:/{run.info.run_id}/bare", MODEL)
    with pytest.raises(MlflowException, match="did not contain any signature metadata"):
        mlflow.register_model(bare.model_uri, MODEL)
    with pytest.raises(MlflowException, match="signature that includes only inputs"):
        mlflow.register_model(inputs_only.model_uri, MODEL)
    first = mlflow.register_model(f"runs:/{run.info.run_id}/signed", MODEL)
    second = mlflow.register_model(signed.model_uri, MODEL)
    assert (first.version, second.version) == ("1", "2")
    client.set_model_version_tag(MODEL, "1", "validated", "yes")
    client.set_registered_model_alias(MODEL, "champion", "1")
    # Listings: one name (or run id) condition, no order_by, no tags or aliases in what comes back.
    with pytest.raises(MlflowException, match="'order_by' is unsupported"):
        client.search_model_versions(f"name = '{MODEL}'", order_by=["version_number DESC"])
    with pytest.raises(MlflowException, match="single filter condition"):
        client.search_model_versions(f"name = '{MODEL}' and run_id = '{run.info.run_id}'")
    listed = client.search_model_versions(f"name = '{MODEL}'")
    assert sorted(v.version for v in listed) == ["1", "2"]
    assert all(v.tags == {} and v.aliases == [] for v in listed)
    assert {v.version for v in client.search_model_versions(f"run_id = '{run.info.run_id}'")} == {"1", "2"}
    with pytest.raises(MlflowException, match="'filter_string' is unsupported"):
        client.search_registered_models(filter_string=f"name = '{MODEL}'")
    with pytest.raises(MlflowException, match="'order_by' is unsupported"):
        client.search_registered_models(order_by=["name"])
    assert [(m.name, m.tags, m.aliases) for m in client.search_registered_models()] == [(MODEL, {}, {})]
    # One version or one model at a time: tags and aliases are there.
    version = client.get_model_version(MODEL, "1")
    assert version.tags == {"validated": "yes"} and version.aliases == ["champion"]
    assert client.get_registered_model(MODEL).aliases == {"champion": "1"}
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"
    # No stages.
    with pytest.raises(MlflowException, match="'transition_model_version_stage' is unsupported"):
        client.transition_model_version_stage(MODEL, "1", "Production")
    with pytest.raises(MlflowException, match="'get_latest_versions' is unsupported"):
        client.get_latest_versions(MODEL)


def _mkdirs(simulation: Simulation, folder: str) -> None:
    import json
    import urllib.request

    request = urllib.request.Request(f"{simulation.url}/api/2.0/workspace/mkdirs", data=json.dumps({"path": folder}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
        assert answer.status == 200
