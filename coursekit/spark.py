"""The one gateway to Spark: a local session sized for a 2-core laptop, a standalone cluster, Spark Connect,
or the session Databricks already started."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coursekit.java import require_java
from coursekit.settings import Settings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
APP_NAME = "mlflow-spark-course"

_LOCAL_MASTER = re.compile(r"local(\[[^\]]*\])?")
_LOOPBACK_MASTER = re.compile(r"spark://(127\.0\.0\.1|localhost)(:\d+)?/?")


def is_local_master(master: str) -> bool:
    """True for Spark's in-process masters (``local``, ``local[2]``, ``local[*]``, ``local[2,3]``).

    ``local-cluster[...]``, ``spark://``, ``yarn`` and ``k8s://`` start executors in other JVMs,
    possibly on other hosts: they get :func:`cluster_conf`.
    """
    return _LOCAL_MASTER.fullmatch(master.strip()) is not None


def is_loopback_master(master: str) -> bool:
    """True for a standalone master on this host's loopback (``spark://127.0.0.1:7077``), as
    ``scripts/spark_cluster.sh`` starts it: its workers can only reach a driver on 127.0.0.1 too."""
    return _LOOPBACK_MASTER.fullmatch(master.strip()) is not None


def cluster_conf(settings: Settings) -> dict[str, str]:
    """Spark settings every master gets: the driver's memory, JVM options and time zone, no UI.

    Nothing here names a host, a port or a local folder, so a driver on a laptop can join a real cluster.
    """
    return {
        # Driver memory only takes effect before the JVM starts, hence the builder.
        "spark.driver.memory": settings.driver_memory,
        # The UI would take port 4040 (or the next free one); the course does not need it.
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": " ".join(java_options(settings)),
        "spark.sql.session.timeZone": "UTC",
    }


def local_conf(settings: Settings) -> dict[str, str]:
    """Spark settings for local mode. Each one trades cluster features for laptop speed."""
    scratch = settings.data_dir / "spark"
    conf = {
        **cluster_conf(settings),
        # 500-row data needs few partitions; the default 200 costs seconds per shuffle.
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "2",
        "spark.driver.host": "localhost",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.local.dir": str(scratch / "tmp"),
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
    }
    if settings.quick_jit:
        # Short-lived kernels (the suite, the grader) compile less: whole-stage code generation compiles Java for
        # every query, and adaptive execution re-plans each stage as it runs. A lesson then used 2-3 CPU-s less of
        # 42-50 (lesson 1, three runs each way, same results); a learner's long session keeps both.
        conf |= {"spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"}
    return conf


def spark_conf(settings: Settings) -> dict[str, str]:
    """The settings for ``settings.spark_master``: :func:`local_conf` for ``local[...]``, else :func:`cluster_conf`.

    A standalone master on 127.0.0.1 also keeps the driver on 127.0.0.1 (its workers are on this host).
    """
    if is_local_master(settings.spark_master):
        return local_conf(settings)
    conf = cluster_conf(settings)
    if is_loopback_master(settings.spark_master):
        conf |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    return conf


def java_options(settings: Settings) -> list[str]:
    """Options of the driver JVM: the quiet log4j configuration and, in local mode only, what the settings ask for.

    The full JIT makes repeated fits faster once warm, which is what a learner clicking the tuning
    panel waits for (median fit + score 1.22 s instead of 1.62 s over 12 attempts on 2 cores). The
    quick (C1) JIT and the serial garbage collector only spend less CPU compiling and collecting, so
    several short-lived kernels at once (the grader, the test suite) finish sooner. Java's floating point
    is strict since Java 17, so both JITs give the same results to the last bit. A class-data archive
    (:mod:`coursekit.class_archive`) lets the JVM map the classes Spark needs instead of loading and
    verifying them one by one; a JVM that finds it stale says so in the driver log and loads them itself.
    A cluster's executors are other JVMs: none of this would reach them.
    """
    options = [f"-Dlog4j.configurationFile=file:{LOG4J_CONFIG}"]
    if not is_local_master(settings.spark_master):
        return options
    if settings.quick_jit:
        options += ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    if settings.class_archive is not None and settings.class_archive.is_file():
        options.append(f"-XX:SharedArchiveFile={settings.class_archive}")
    return options


@contextlib.contextmanager
def _jvm_stderr_to(log_file: Path) -> Iterator[None]:
    """Send the stderr of a JVM started inside the block to ``log_file``.

    The JVM inherits file descriptor 2, which Jupyter shows in the notebook:
    Java's start-up warnings would clutter the setup cell's output forever.
    Python's own ``sys.stderr`` is restored when the block ends.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with log_file.open("ab") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def driver_log(settings: Settings) -> Path:
    """Where the Spark driver started by the course writes its own log (Java warnings, log4j errors)."""
    return settings.data_dir / "spark" / "driver.log"


def _notebook_spark() -> SparkSession | None:
    """The session a Databricks notebook was given (``spark`` in its namespace, or the active one), else None."""
    from pyspark.sql import SparkSession

    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover
        shell = None
    given = shell.user_ns.get("spark") if shell is not None else None
    if given is not None and hasattr(given, "sql"):
        return given
    return SparkSession.getActiveSession()


def databricks_spark() -> SparkSession:
    """The SparkSession Databricks started for this notebook, classic or serverless (Spark Connect).

    Nothing is configured: the compute's settings are Databricks', and serverless has no ``sparkContext``
    (so no ``setLogLevel``). ``SparkSession.builder.getOrCreate()`` returns the same session when no
    notebook session is found (a job, a file run with ``%run``).
    """
    from pyspark.sql import SparkSession

    spark = _notebook_spark()
    if spark is None:
        spark = SparkSession.builder.getOrCreate()
    log.info("using the Databricks session (Spark %s)", spark.version)
    return spark


@functools.cache
def workspace_user() -> str:
    """The Databricks user running the notebook (``current_user()``: the e-mail address the workspace knows).

    Names the learner's experiment folder ``/Users/<user>/``. Asked once per kernel.
    """
    row = databricks_spark().sql("SELECT current_user() AS user").first()
    user = str(row["user"]) if row is not None else ""
    if not user:
        from coursekit.errors import CourseSetupError

        raise CourseSetupError("Spark's current_user() is empty: run the lesson in a Databricks notebook attached to compute.")
    return user


def get_spark(settings: Settings | None = None, *, extra_java_options: Sequence[str] = ()) -> SparkSession:
    """Return the course's SparkSession, starting it on first use.

    Local mode by default; ``SPARK_REMOTE`` switches to Spark Connect and
    ``COURSE_SPARK_MASTER`` to another master (see :func:`spark_conf`). Inside
    Databricks the notebook's own session is used as it is (:func:`databricks_spark`).
    Raises :class:`coursekit.errors.JavaMissingError` before starting a driver JVM
    that could not work. ``extra_java_options`` are added to a new local or cluster driver's
    (:mod:`coursekit.class_archive` uses them).
    """
    from pyspark.sql import SparkSession

    settings = settings or load_settings()
    if settings.databricks:
        return databricks_spark()
    if settings.spark_remote:
        log.info("connecting to Spark Connect at %s", settings.spark_remote)
        return SparkSession.builder.remote(settings.spark_remote).appName(APP_NAME).getOrCreate()

    require_java()
    # Executors must run the kernel's own interpreter, or pickled functions break
    # (on a cluster: the same path must exist on every worker host).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if is_local_master(settings.spark_master):
        os.environ.setdefault("SPARK_LOCAL_IP", "localhost")
    builder = SparkSession.builder.master(settings.spark_master).appName(APP_NAME)
    conf = spark_conf(settings)
    if extra_java_options:
        conf["spark.driver.extraJavaOptions"] = " ".join([conf["spark.driver.extraJavaOptions"], *extra_java_options])
    for key, value in conf.items():
        builder = builder.config(key, value)
    with _jvm_stderr_to(driver_log(settings)):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    log.info("Spark %s running on %s", spark.version, settings.spark_master)
    return spark
