"""The one gateway to Spark: a local session sized for a 2-core laptop, or a remote one."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from coursekit.java import require_java
from coursekit.settings import Settings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
APP_NAME = "mlflow-spark-course"


def local_conf(settings: Settings) -> dict[str, str]:
    """Spark settings for local mode. Each one trades cluster features for laptop speed."""
    scratch = settings.data_dir / "spark"
    return {
        # Driver memory only takes effect before the JVM starts, hence the builder.
        "spark.driver.memory": settings.driver_memory,
        # 500-row data needs few partitions; the default 200 costs seconds per shuffle.
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "2",
        # The UI would take port 4040 (or the next free one); the course does not need it.
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": " ".join(java_options(settings)),
        "spark.driver.host": "localhost",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.local.dir": str(scratch / "tmp"),
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.sql.session.timeZone": "UTC",
    }


def java_options(settings: Settings) -> list[str]:
    """Options of the local driver JVM: the quiet log4j configuration, and the JIT the settings ask for.

    The full JIT makes repeated fits faster once warm, which is what a learner clicking the tuning
    panel waits for (median fit + score 1.22 s instead of 1.62 s over 12 attempts on 2 cores). The
    quick (C1) JIT only spends less CPU compiling, so several short-lived kernels at once (the grader,
    the test suite) finish ~35% sooner. Java's floating point is strict since Java 17, so both give the
    same results to the last bit.
    """
    options = [f"-Dlog4j.configurationFile=file:{LOG4J_CONFIG}"]
    if settings.quick_jit:
        options.append("-XX:TieredStopAtLevel=1")
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
    """Where the local Spark driver writes its own log (Java warnings, log4j errors)."""
    return settings.data_dir / "spark" / "driver.log"


def get_spark(settings: Settings | None = None) -> SparkSession:
    """Return the course's SparkSession, starting it on first use.

    Local mode by default; ``SPARK_REMOTE`` switches to Spark Connect and
    ``COURSE_SPARK_MASTER`` to another master. Raises
    :class:`coursekit.errors.JavaMissingError` before starting a local JVM
    that could not work.
    """
    from pyspark.sql import SparkSession

    settings = settings or load_settings()
    if settings.spark_remote:
        log.info("connecting to Spark Connect at %s", settings.spark_remote)
        return SparkSession.builder.remote(settings.spark_remote).appName(APP_NAME).getOrCreate()

    require_java()
    # Workers must run the kernel's own interpreter, or pickled functions break.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "localhost")
    builder = SparkSession.builder.master(settings.spark_master).appName(APP_NAME)
    for key, value in local_conf(settings).items():
        builder = builder.config(key, value)
    with _jvm_stderr_to(driver_log(settings)):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    log.info("Spark %s running on %s", spark.version, settings.spark_master)
    return spark
