"""The setup cell of every lesson: one call that readies Spark and the MLflow store."""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlflow

from coursekit.data import verify_dataset
from coursekit.errors import CourseSetupError
from coursekit.java import require_java
from coursekit.settings import DATABRICKS_VERSION_VAR, Settings, load_settings
from coursekit.spark import get_spark
from coursekit import spark_models
from coursekit.tracking import configure_tracking, ensure_experiment, ui_hint, use_dfs_tmp

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Classroom:
    """What a lesson needs after setup: Spark, the store, and the lesson's experiment."""

    spark: SparkSession
    experiment_name: str
    tracking_uri: str
    settings: Settings

    @property
    def connect(self) -> bool:
        """True over open-source Spark Connect (``SPARK_REMOTE``), where MLflow cannot log Spark models itself."""
        return spark_models.is_connect(self.spark)

    @property
    def spark_flavor(self) -> Any:
        """``mlflow.spark`` itself; over Spark Connect the kit's stand-in with the same calls (:mod:`coursekit.spark_models`)."""
        return spark_models.spark_flavor(self.spark)

    def skip_over_connect(self, what: str) -> bool:
        """Over Spark Connect, print one line saying ``what`` is not possible and return True; else False."""
        if self.connect:
            print(spark_models.unsupported_line(what))  # noqa: T201 - the lesson cell reports to the learner
        return self.connect


def _show_setup_error(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    # One line a learner can act on, instead of a Java or Python traceback.
    print(f"⚠️  {value}")  # noqa: T201


def install_friendly_errors() -> None:
    """In Jupyter, show :class:`CourseSetupError` as one line instead of a traceback."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((CourseSetupError,), _show_setup_error)


def _engine(settings: Settings) -> str:
    """How the setup cell names the Spark it uses."""
    if settings.databricks:
        kind = "serverless" if settings.serverless else "classic compute"
        return f"Databricks {kind}, runtime {os.environ.get(DATABRICKS_VERSION_VAR, '?')}, the notebook's own session"
    return settings.spark_remote or settings.spark_master


def start(experiment_name: str) -> Classroom:
    """Start Spark, point MLflow at the course store, create the lesson's experiment.

    Missing Java or a missing dataset stops here with one line saying how to fix it.
    Prints the versions, the tracking URI and where to see the runs in the MLflow UI. MLflow's usage
    telemetry is off from here on (see :func:`coursekit.tracking.disable_telemetry`).
    Inside Databricks the notebook's Spark session is used as it is (no Java check, no local settings),
    runs go to the workspace's experiments, models to Unity Catalog, and Spark models pass through a
    Unity Catalog volume (:func:`coursekit.tracking.use_dfs_tmp`).
    """
    install_friendly_errors()
    settings = load_settings()
    # Check what the learner can fix before anything slow starts.
    verify_dataset(settings)
    if not settings.spark_remote and not settings.databricks:
        require_java()
    tracking_uri = configure_tracking(settings)
    experiment_id = ensure_experiment(experiment_name, settings)
    spark = get_spark(settings)
    if spark_models.is_connect_session(spark):
        spark_models.allow_autolog_over_connect()
    lines = [
        f"Spark {spark.version} ({_engine(settings)}) · MLflow {mlflow.__version__} · Python {platform.python_version()}",
        f"Tracking URI: {tracking_uri}",
    ]
    if settings.registry_uri:
        lines.append(f"Registry URI: {settings.registry_uri}")
    lines.append(f"Experiment:   {experiment_name}")
    if settings.databricks:
        lines.append(use_dfs_tmp(settings, spark))
    lines.append(ui_hint(settings, experiment_name, experiment_id))
    print("\n".join(lines))  # noqa: T201 - the setup cell reports to the learner
    return Classroom(spark=spark, experiment_name=experiment_name, tracking_uri=tracking_uri, settings=settings)
