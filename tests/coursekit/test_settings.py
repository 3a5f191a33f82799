"""coursekit.settings: embedded defaults and the environment variables that override them."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursekit import settings
from coursekit.settings import REPO_ROOT, load_settings

VARIABLES = ("COURSE_DATA_DIR", "MLFLOW_TRACKING_URI", "COURSE_SPARK_MASTER", "SPARK_REMOTE",
             "COURSE_DRIVER_MEMORY", "COURSE_DATASETS_DIR", "COURSE_SPARK_QUICK_JIT", "COURSE_LEARNER")


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
