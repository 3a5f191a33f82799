"""coursekit.spark: laptop settings for ``local[...]`` masters only; a cluster master gets nothing host-bound."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import pytest

from coursekit import spark
from coursekit.settings import load_settings

LAPTOP_ONLY = ("spark.driver.host", "spark.driver.bindAddress", "spark.local.dir", "spark.sql.warehouse.dir",
               "spark.sql.shuffle.partitions", "spark.default.parallelism", "spark.sql.codegen.wholeStage",
               "spark.sql.adaptive.enabled")


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Settings with a throw-away data folder and the quick JIT asked for."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_SPARK_QUICK_JIT", "1")
    monkeypatch.delenv("COURSE_SPARK_MASTER", raising=False)
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    return load_settings()


@pytest.mark.parametrize("master", ["local", "local[2]", "local[*]", "local[4,3]", " local[1] "])
def test_in_process_masters_are_local(master):
    assert spark.is_local_master(master)


@pytest.mark.parametrize("master", ["spark://127.0.0.1:7077", "spark://h1:7077,h2:7077", "yarn",
                                    "k8s://https://api:6443", "local-cluster[2,1,1024]", "mesos://h:5050", ""])
def test_other_masters_are_clusters(master):
    assert not spark.is_local_master(master)


@pytest.mark.parametrize(("master", "loopback"), [
    ("spark://127.0.0.1:7077", True), ("spark://localhost:17077", True), ("spark://localhost", True),
    ("spark://10.0.0.5:7077", False), ("spark://127.0.0.1.example.org:7077", False),
    ("spark://127.0.0.1:7077,10.0.0.5:7077", False), ("local[2]", False), ("yarn", False),
])
def test_loopback_master(master, loopback):
    assert spark.is_loopback_master(master) is loopback


def test_local_master_gets_the_laptop_settings(settings):
    conf = spark.spark_conf(settings)
    assert conf == spark.local_conf(settings)
    assert (conf["spark.driver.host"], conf["spark.driver.bindAddress"]) == ("localhost", "127.0.0.1")
    assert conf["spark.local.dir"] == str(settings.data_dir / "spark" / "tmp")
    assert (conf["spark.sql.shuffle.partitions"], conf["spark.default.parallelism"]) == ("4", "2")
    assert (conf["spark.sql.codegen.wholeStage"], conf["spark.sql.adaptive.enabled"]) == ("false", "false")  # quick mode
    assert "-XX:TieredStopAtLevel=1" in conf["spark.driver.extraJavaOptions"]


def test_a_learners_local_session_keeps_code_generation_and_adaptive_execution(settings):
    conf = spark.spark_conf(replace(settings, quick_jit=False))
    assert not {"spark.sql.codegen.wholeStage", "spark.sql.adaptive.enabled"} & set(conf)
    assert "-XX:TieredStopAtLevel=1" not in conf["spark.driver.extraJavaOptions"]


def test_cluster_master_keeps_only_what_suits_a_cluster(settings):
    cluster = replace(settings, spark_master="spark://spark-master.example.org:7077")
    conf = spark.spark_conf(cluster)
    assert conf == spark.cluster_conf(cluster)
    assert not set(LAPTOP_ONLY) & set(conf)
    assert not any(str(settings.data_dir) in value for value in conf.values())
    assert conf["spark.driver.memory"] == settings.driver_memory
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.ui.enabled"] == "false"
    # The quiet log4j configuration, but not the laptop's quick JIT.
    assert conf["spark.driver.extraJavaOptions"] == f"-Dlog4j.configurationFile=file:{spark.LOG4J_CONFIG}"


def test_loopback_cluster_keeps_the_driver_on_loopback(settings):
    conf = spark.spark_conf(replace(settings, spark_master="spark://127.0.0.1:17077"))
    assert (conf["spark.driver.host"], conf["spark.driver.bindAddress"]) == ("127.0.0.1", "127.0.0.1")
    assert not {"spark.local.dir", "spark.sql.shuffle.partitions", "spark.default.parallelism"} & set(conf)


def test_quick_mode_adds_the_serial_collector_and_a_class_archive_only_when_it_exists(settings, tmp_path):
    archive = tmp_path / "classes.jsa"
    quick = spark.java_options(replace(settings, class_archive=archive))
    assert quick[1:] == ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]  # no archive file yet: nothing to map
    archive.write_bytes(b"x")
    assert spark.java_options(replace(settings, class_archive=archive))[-1] == f"-XX:SharedArchiveFile={archive}"
    learner = spark.java_options(replace(settings, quick_jit=False, class_archive=archive))
    assert learner[1:] == [f"-XX:SharedArchiveFile={archive}"]  # the full JIT and Java's own collector
    cluster = spark.java_options(replace(settings, class_archive=archive, spark_master="spark://127.0.0.1:17077"))
    assert cluster == [f"-Dlog4j.configurationFile=file:{spark.LOG4J_CONFIG}"]


class _FakeSession:
    """Stands in for a started SparkSession: get_spark only reads its version and sets the log level."""

    version = "0.0"

    class sparkContext:  # noqa: N801 - mirrors SparkSession.sparkContext
        @staticmethod
        def setLogLevel(level: str) -> None:  # noqa: N802 - Spark's name
            pass


@pytest.mark.parametrize(("master", "local_ip"), [("local[2]", "localhost"), ("spark://10.0.0.5:7077", None)])
def test_get_spark_builds_the_session_for_the_master(settings, monkeypatch, master, local_ip):
    from pyspark.sql import SparkSession

    built: dict[str, str] = {}

    def get_or_create(builder: SparkSession.Builder) -> _FakeSession:
        built.update(builder._options)
        return _FakeSession()

    monkeypatch.setattr(SparkSession.Builder, "getOrCreate", get_or_create)
    monkeypatch.setattr(spark, "require_java", lambda: 17)
    for name in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"):
        monkeypatch.setenv(name, "")  # recorded, so what get_spark exports is undone after the test
        monkeypatch.delenv(name)
    session = spark.get_spark(replace(settings, spark_master=master))
    assert isinstance(session, _FakeSession)
    assert built["spark.master"] == master
    assert built["spark.app.name"] == spark.APP_NAME
    assert {key: built[key] for key in spark.spark_conf(replace(settings, spark_master=master))} == \
        spark.spark_conf(replace(settings, spark_master=master))
    assert ("spark.driver.host" in built) is (local_ip is not None)
    assert os.environ.get("SPARK_LOCAL_IP") == local_ip
    # Executors run the kernel's interpreter, on a cluster too.
    assert os.environ["PYSPARK_PYTHON"] == sys.executable


def test_extra_java_options_are_added_to_the_drivers(settings, monkeypatch):
    from pyspark.sql import SparkSession

    built: dict[str, str] = {}
    monkeypatch.setattr(SparkSession.Builder, "getOrCreate", lambda builder: built.update(builder._options) or _FakeSession())
    monkeypatch.setattr(spark, "require_java", lambda: 17)
    spark.get_spark(settings, extra_java_options=["-XX:ArchiveClassesAtExit=/tmp/x.jsa"])
    assert built["spark.driver.extraJavaOptions"] == " ".join([*spark.java_options(settings), "-XX:ArchiveClassesAtExit=/tmp/x.jsa"])


# --- Databricks: the notebook's own session, used as it is ------------------------------------------------------


class _NotebookSession:
    """A stand-in for the session Databricks puts into a notebook: it records every call made on it."""

    version = "4.0.0"

    def __init__(self, user: str = "ada@example.com") -> None:
        self.calls: list[str] = []
        self.user = user

    def sql(self, query: str) -> _NotebookSession:
        self.calls.append(query)
        return self

    def first(self) -> dict[str, str]:
        return {"user": self.user}

    @property
    def sparkContext(self):  # noqa: N802 - Spark's name
        raise AssertionError("serverless has no sparkContext: the course must not touch it on Databricks")


@pytest.fixture
def on_databricks(settings, monkeypatch):
    monkeypatch.setattr(spark, "require_java", lambda: pytest.fail("no Java check on Databricks"))
    spark.workspace_user.cache_clear()
    yield replace(settings, databricks=True)
    spark.workspace_user.cache_clear()


def _no_builder(monkeypatch):
    from pyspark.sql import SparkSession

    monkeypatch.setattr(SparkSession.Builder, "config", lambda *a, **k: pytest.fail("no Spark settings on Databricks"))
    monkeypatch.setattr(SparkSession.Builder, "master", lambda *a, **k: pytest.fail("no master on Databricks"))


def test_databricks_uses_the_notebooks_session_as_it_is(on_databricks, monkeypatch):
    notebook = _NotebookSession()
    monkeypatch.setattr(spark, "_notebook_spark", lambda: notebook)
    _no_builder(monkeypatch)
    assert spark.get_spark(on_databricks) is notebook
    assert notebook.calls == [], "nothing is configured, no log level set"


def test_databricks_without_a_notebook_session_asks_the_builder_for_the_existing_one(on_databricks, monkeypatch):
    from pyspark.sql import SparkSession

    existing = _NotebookSession()
    monkeypatch.setattr(spark, "_notebook_spark", lambda: None)
    monkeypatch.setattr(SparkSession.Builder, "getOrCreate", lambda builder: existing)
    _no_builder(monkeypatch)
    assert spark.get_spark(on_databricks) is existing


def test_the_notebook_session_is_found_in_the_notebook_namespace(notebook_namespace, monkeypatch):
    notebook = _NotebookSession()
    monkeypatch.setitem(notebook_namespace, "spark", notebook)
    assert spark._notebook_spark() is notebook


def test_workspace_user_is_current_user_asked_once(on_databricks, monkeypatch):
    notebook = _NotebookSession("ada@example.com")
    monkeypatch.setattr(spark, "_notebook_spark", lambda: notebook)
    assert spark.workspace_user() == "ada@example.com"
    assert spark.workspace_user() == "ada@example.com"
    assert notebook.calls == ["SELECT current_user() AS user"]


def test_an_empty_current_user_is_one_line(on_databricks, monkeypatch):
    from coursekit.errors import CourseSetupError

    monkeypatch.setattr(spark, "_notebook_spark", lambda: _NotebookSession(""))
    with pytest.raises(CourseSetupError, match="current_user\\(\\) is empty"):
        spark.workspace_user()
