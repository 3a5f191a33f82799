"""coursekit.settings: embedded defaults and the environment variables that override them."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursekit import settings
from coursekit.settings import REPO_ROOT, load_settings

VARIABLES = ("COURSE_DATA_DIR", "MLFLOW_TRACKING_URI", "COURSE_SPARK_MASTER", "SPARK_REMOTE",
             "COURSE_DRIVER_MEMORY", "COURSE_DATASETS_DIR", "COURSE_SPARK_QUICK_JIT", "COURSE_LEARNER",
             "DATABRICKS_RUNTIME_VERSION", "DATABRICKS_ENV_VERSION", "MLFLOW_REGISTRY_URI", "COURSE_CATALOG",
             "COURSE_SCHEMA", "COURSE_UI_PORT", "COURSE_SPARK_CLASS_ARCHIVE")


@pytest.fixture
def clean_env(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_repo_root_is_the_checkout():
    assert (REPO_ROOT / "coursekit" / "settings.py").is_file()


def test_defaults(clean_env, tmp_path):
    clean_env.setattr(settings, "REPO_ROOT", tmp_path)  # keep the default data dir out of the repo
    s = load_settings()
    assert s.data_dir == tmp_path / ".course-data"
    assert s.data_dir.is_dir()
    assert s.tracking_uri == f"sqlite:///{tmp_path}/.course-data/mlflow.db"
    assert s.artifact_root == tmp_path / ".course-data" / "artifacts"
    assert s.datasets_dir == tmp_path / "datasets"
    assert s.spark_master == "local[2]"
    assert s.spark_remote is None
    assert s.driver_memory == "2g"
    assert s.quick_jit is False
    assert s.class_archive is None
    assert s.ui_port == 5000


def test_environment_overrides(clean_env, tmp_path):
    clean_env.setenv("COURSE_DATA_DIR", str(tmp_path / "nested" / "data"))
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    clean_env.setenv("COURSE_SPARK_MASTER", "local[4]")
    clean_env.setenv("SPARK_REMOTE", "sc://localhost:15002")
    clean_env.setenv("COURSE_DRIVER_MEMORY", "4g")
    clean_env.setenv("COURSE_DATASETS_DIR", str(tmp_path / "ds"))
    s = load_settings()
    assert s.data_dir == tmp_path / "nested" / "data" and s.data_dir.is_dir()
    assert s.artifact_root == s.data_dir / "artifacts"
    assert s.tracking_uri == "http://127.0.0.1:5000"
    assert (s.spark_master, s.spark_remote, s.driver_memory) == ("local[4]", "sc://localhost:15002", "4g")
    assert s.datasets_dir == tmp_path / "ds"


def test_data_dir_drives_the_default_tracking_uri(clean_env, tmp_path):
    clean_env.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert load_settings().tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"


def test_empty_variables_fall_back(clean_env, tmp_path):
    clean_env.setenv("COURSE_DATA_DIR", str(tmp_path))
    clean_env.setenv("MLFLOW_TRACKING_URI", "")
    clean_env.setenv("SPARK_REMOTE", "")
    s = load_settings()
    assert s.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert s.spark_remote is None


def test_relative_paths_are_resolved(clean_env, tmp_path):
    clean_env.chdir(tmp_path)
    clean_env.setenv("COURSE_DATA_DIR", "data")
    clean_env.setenv("COURSE_DATASETS_DIR", "ds")
    s = load_settings()
    assert s.data_dir == tmp_path.resolve() / "data" and s.data_dir.is_absolute()
    assert s.datasets_dir == tmp_path.resolve() / "ds"


def test_settings_are_frozen(clean_env, tmp_path):
    clean_env.setenv("COURSE_DATA_DIR", str(tmp_path))
    s = load_settings()
    with pytest.raises(AttributeError):
        s.spark_master = "yarn"  # type: ignore[misc]
    assert isinstance(s.data_dir, Path)


@pytest.mark.parametrize(("value", "quick"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_jit_is_chosen_by_the_environment(clean_env, value, quick):
    from coursekit.spark import java_options, local_conf

    clean_env.setenv("COURSE_SPARK_QUICK_JIT", value)
    s = load_settings()
    assert s.quick_jit is quick
    assert ("-XX:TieredStopAtLevel=1" in java_options(s)) is quick
    assert local_conf(s)["spark.driver.extraJavaOptions"] == " ".join(java_options(s))
    assert java_options(s)[0].startswith("-Dlog4j.configurationFile=file:")


def test_a_private_store_keeps_plain_names(clean_env, tmp_path):
    clean_env.setenv("COURSE_DATA_DIR", str(tmp_path))
    s = load_settings()
    assert s.learner is None and not s.remote_store
    assert settings.course_name("lesson-01-first-run", s) == "lesson-01-first-run"


def test_a_tracking_server_names_everything_after_the_login_name(clean_env, tmp_path):
    clean_env.setenv("COURSE_DATA_DIR", str(tmp_path))
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://10.0.0.5:5055")
    clean_env.setattr(settings.getpass, "getuser", lambda: "Ada.L")
    s = load_settings()
    assert s.remote_store and s.learner == "ada.l"
    assert settings.course_name("pima-diabetes-rf", s) == "ada.l-pima-diabetes-rf"


@pytest.mark.parametrize(("uri", "remote"), [
    ("http://127.0.0.1:5055", True), ("HTTPS://mlflow.school.edu", True), ("sqlite:////tmp/x.db", False),
    ("file:///tmp/mlruns", False), ("databricks", False),
])
def test_which_uris_are_tracking_servers(uri, remote):
    assert settings.is_server_uri(uri) is remote


def test_course_learner_wins_and_is_made_safe_for_names(clean_env, tmp_path):
    clean_env.setenv("COURSE_DATA_DIR", str(tmp_path))
    clean_env.setenv("COURSE_LEARNER", "  Grace Hopper/@navy ")
    s = load_settings()
    assert s.learner == "grace_hopper_navy"
    assert settings.course_name("lesson-05-tune", s) == "grace_hopper_navy-lesson-05-tune"


def test_a_learner_name_without_letters_is_a_clear_error():
    with pytest.raises(ValueError, match="COURSE_LEARNER='@@' has no letters or digits"):
        settings.learner_name("@@")


# --- Databricks: what changes when DATABRICKS_RUNTIME_VERSION is set ------------------------------------------


class FakeWidgets:
    """dbutils.widgets as a Databricks notebook has it: get raises for a widget that does not exist."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(values or {})
        self.created: list[tuple[str, str, str]] = []

    def get(self, name: str) -> str:
        if name not in self.values:
            raise ValueError(f"InputWidgetNotDefined: No input widget named {name} is defined")
        return self.values[name]

    def text(self, name: str, default: str, label: str) -> None:
        self.created.append((name, default, label))
        self.values[name] = default


@pytest.fixture
def databricks(clean_env, monkeypatch):
    """A Databricks notebook's environment: the runtime variable, no dbutils unless a test adds one."""
    clean_env.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    monkeypatch.setattr(settings, "_notebook_dbutils", lambda: None)
    return clean_env


@pytest.mark.parametrize(("env", "inside", "serverless"), [
    ({}, False, False),
    ({"DATABRICKS_RUNTIME_VERSION": ""}, False, False),
    ({"DATABRICKS_RUNTIME_VERSION": "17.3"}, True, False),
    ({"DATABRICKS_RUNTIME_VERSION": "client.4.9"}, True, True),
    ({"DATABRICKS_RUNTIME_VERSION": "16.4", "DATABRICKS_ENV_VERSION": "4"}, True, True),
    ({"DATABRICKS_ENV_VERSION": "4"}, False, False),
])
def test_databricks_is_detected_by_its_runtime_variable(env, inside, serverless):
    assert settings.on_databricks(env) is inside
    assert settings.on_serverless(env) is serverless


def test_databricks_defaults(databricks, tmp_path, monkeypatch):
    monkeypatch.setattr(settings.tempfile, "gettempdir", lambda: str(tmp_path))
    s = load_settings()
    assert s.databricks and not s.serverless
    assert s.tracking_uri == "databricks"
    assert s.registry_uri == "databricks-uc"
    assert s.remote_store, "the workspace decides where artifacts go"
    assert s.learner is None
    assert s.data_dir == tmp_path / "mlflow-course", "scratch space on the driver's disk, not in the Git folder"
    assert (s.catalog, s.schema) == ("workspace", "default")


def test_databricks_keeps_explicit_uris_and_ignores_course_learner(databricks):
    databricks.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    databricks.setenv("MLFLOW_REGISTRY_URI", "http://127.0.0.1:5998")
    databricks.setenv("COURSE_LEARNER", "ada")
    s = load_settings()
    assert (s.tracking_uri, s.registry_uri, s.learner) == ("http://127.0.0.1:5999", "http://127.0.0.1:5998", None)


def test_local_settings_have_no_registry_uri(clean_env, tmp_path):
    clean_env.setenv("COURSE_DATA_DIR", str(tmp_path))
    s = load_settings()
    assert not s.databricks and s.registry_uri is None and s.tracking_uri.startswith("sqlite:///")


def test_databricks_names_experiments_by_workspace_path(databricks, monkeypatch):
    import coursekit.spark

    monkeypatch.setattr(coursekit.spark, "workspace_user", lambda: "ada@example.com")
    assert settings.experiment_name("lesson-01-first-run") == "/Users/ada@example.com/mlflow-course/lesson-01-first-run"


def test_databricks_model_names_have_three_parts(databricks):
    assert settings.model_name("pima-diabetes-rf") == "workspace.default.pima_diabetes_rf"
    databricks.setenv("COURSE_CATALOG", "main")
    databricks.setenv("COURSE_SCHEMA", "ml_course")
    assert settings.model_name("pima-diabetes-rf") == "main.ml_course.pima_diabetes_rf"


def test_local_names_are_unchanged(clean_env, tmp_path):
    clean_env.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert settings.experiment_name("lesson-01-first-run") == "lesson-01-first-run"
    assert settings.model_name("pima-diabetes-rf") == "pima-diabetes-rf"


def test_the_setup_cell_widgets_are_created_with_the_environment_as_default(databricks, monkeypatch):
    widgets = FakeWidgets()
    monkeypatch.setattr(settings, "_notebook_dbutils", lambda: type("DbUtils", (), {"widgets": widgets})())
    databricks.setenv("COURSE_CATALOG", "main")
    s = load_settings()
    assert (s.catalog, s.schema) == ("main", "default")
    assert [(name, default) for name, default, _ in widgets.created] == [("catalog", "main"), ("schema", "default")]


def test_a_widget_the_learner_changed_wins_over_the_environment(databricks, monkeypatch):
    widgets = FakeWidgets({"catalog": "sandbox", "schema": "ada"})
    monkeypatch.setattr(settings, "_notebook_dbutils", lambda: type("DbUtils", (), {"widgets": widgets})())
    databricks.setenv("COURSE_CATALOG", "main")
    assert settings.model_name("pima-diabetes-rf") == "sandbox.ada.pima_diabetes_rf"
    assert widgets.created == []


@pytest.mark.parametrize("bad", ["my-catalog", "main.default", "", "a b", "`x`"])
def test_a_catalog_that_is_not_a_plain_name_is_one_line_with_the_fix(databricks, bad):
    from coursekit.errors import CourseSetupError

    databricks.setenv("COURSE_CATALOG", bad or " ")
    with pytest.raises(CourseSetupError, match="not a plain Unity Catalog name: use letters, digits and _ only") as info:
        load_settings()
    assert "\n" not in str(info.value)


def test_widgets_are_read_from_the_notebook_namespace(notebook_namespace, monkeypatch):
    marker = object()
    monkeypatch.setitem(notebook_namespace, "dbutils", marker)
    assert settings._notebook_dbutils() is marker


def test_the_ui_port_and_the_class_archive_come_from_the_environment(clean_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clean_env.setenv("COURSE_UI_PORT", " 6123 ")
    clean_env.setenv("COURSE_SPARK_CLASS_ARCHIVE", "classes.jsa")
    s = load_settings()
    assert s.ui_port == 6123
    assert s.class_archive == tmp_path / "classes.jsa"  # made absolute: kernels start in other folders


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1", "5000.5"])
def test_a_ui_port_that_is_not_a_port_number_is_one_line(clean_env, value):
    from coursekit.errors import CourseSetupError

    clean_env.setenv("COURSE_UI_PORT", value)
    with pytest.raises(CourseSetupError) as raised:
        load_settings()
    assert str(raised.value) == f"COURSE_UI_PORT={value!r} is not a port number: set it to one between 1024 and 65535, or unset it."
