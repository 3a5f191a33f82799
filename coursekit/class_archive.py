"""A class-data archive for the local Spark driver JVM (Java's application class-data sharing).

A Spark driver loads and verifies thousands of classes before it runs a job: about 5 s of a lesson's setup
cell on 2 cores. Java can instead map them from an archive written by an earlier JVM that ran the same
kind of work (``-XX:ArchiveClassesAtExit``, then ``-XX:SharedArchiveFile``). Build one per machine and
Spark install, then point ``COURSE_SPARK_CLASS_ARCHIVE`` at it::

    python -m coursekit.class_archive /tmp/spark-classes.jsa
    export COURSE_SPARK_CLASS_ARCHIVE=/tmp/spark-classes.jsa

``scripts/test.sh`` does this before its many kernels start, and the grader passes the variable on to
its sandboxes. Nothing depends on it: without the file, or with a stale one (another Java or Spark),
the JVM notes it in the driver log and loads its classes itself.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from coursekit.errors import CourseSetupError

log = logging.getLogger(__name__)

#: Variables of the parent that would send the workload elsewhere than a fresh local driver.
_NOT_INHERITED = ("COURSE_SPARK_CLASS_ARCHIVE", "COURSE_SPARK_MASTER", "SPARK_REMOTE", "MLFLOW_TRACKING_URI",
                  "DATABRICKS_RUNTIME_VERSION")


def build(path: Path, timeout: float = 600) -> Path:
    """Write a class-data archive for the local driver to ``path`` and return it (resolved).

    A child Python starts a local driver with the course's settings and the quick JIT, fits and scores
    a forest on the course's dataset, saves and reloads the model, then stops; its JVM writes the
    classes it used as it exits. The file appears at ``path`` only when complete, so JVMs starting
    meanwhile never map half an archive. Raises :class:`CourseSetupError` when the workload fails.
    """
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coursekit-archive-") as scratch:
        written = Path(scratch) / "classes.jsa"
        env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        env |= {"COURSE_DATA_DIR": str(Path(scratch) / "data"), "COURSE_SPARK_QUICK_JIT": "1"}
        result = subprocess.run(
            [sys.executable, "-m", "coursekit.class_archive", "--workload", str(written)],
            env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )
        if result.returncode != 0 or not written.is_file():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise CourseSetupError(f"Could not build the Spark class archive ({last}); run without COURSE_SPARK_CLASS_ARCHIVE.")
        partial = path.with_name(path.name + ".partial")
        shutil.copyfile(written, partial)
        os.replace(partial, path)
    log.info("Spark class archive written to %s (%d MB)", path, path.stat().st_size // 2**20)
    return path


def _workload(archive: Path) -> None:
    """Run what a lesson's driver runs, in a driver JVM that writes ``archive`` as it exits; wait for it."""
    from pyspark import SparkContext
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import VectorAssembler

    from coursekit.data import FEATURES, LABEL, load_pima
    from coursekit.settings import load_settings
    from coursekit.spark import get_spark

    settings = load_settings()
    spark = get_spark(settings, extra_java_options=[f"-XX:ArchiveClassesAtExit={archive}"])
    train, test = load_pima(spark).randomSplit([0.7, 0.3], seed=42)
    forest = RandomForestClassifier(labelCol=LABEL, featuresCol="features", numTrees=10, maxDepth=4, seed=42)
    model = Pipeline(stages=[VectorAssembler(inputCols=FEATURES, outputCol="features"), forest]).fit(train)
    BinaryClassificationEvaluator(labelCol=LABEL).evaluate(model.transform(test))
    saved = str(settings.data_dir / "model")
    model.write().overwrite().save(saved)
    PipelineModel.load(saved).transform(test).toPandas()
    jvm = SparkContext._gateway.proc  # type: ignore[union-attr]  # spark-submit execs the driver JVM
    spark.stop()
    jvm.stdin.close()  # the driver exits on end of input, writing the archive first
    jvm.wait(timeout=300)


def main(argv: list[str] | None = None) -> int:
    """``python -m coursekit.class_archive PATH``: build the archive; one line and exit 1 when that fails."""
    parser = argparse.ArgumentParser(prog="python -m coursekit.class_archive", description=build.__doc__)
    parser.add_argument("path", type=Path, help="where to write the archive (e.g. /tmp/spark-classes.jsa)")
    parser.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workload:
        _workload(args.path)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        build(args.path)
    except CourseSetupError as error:
        print(f"ERROR: {error}", file=sys.stderr)  # noqa: T201 - a command's one-line report
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
