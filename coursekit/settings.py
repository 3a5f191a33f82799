"""Where things live, with environment variables that override the embedded defaults.

=========================  ==========================================  ===========================
variable                   meaning                                     default
=========================  ==========================================  ===========================
``COURSE_DATA_DIR``        folder for the MLflow database, artifacts   ``<repo>/.course-data``
                           and Spark scratch space
``MLFLOW_TRACKING_URI``    MLflow tracking server or database          ``sqlite:///<data>/mlflow.db``
``COURSE_SPARK_MASTER``    Spark master URL                            ``local[2]``
``SPARK_REMOTE``           Spark Connect URL (``sc://host:15002``);    unset
                           wins over the master when set
``COURSE_DRIVER_MEMORY``   Spark driver memory                         ``2g``
``COURSE_DATASETS_DIR``    folder holding the shipped CSV files        ``<repo>/datasets``
``COURSE_SPARK_QUICK_JIT`` ``1``: the local driver JVM compiles with   unset (full JIT)
                           the quick JIT only and the serial garbage
                           collector (for several kernels at once:
                           the grader, the test suite)
``COURSE_UI_PORT``         first port the MLflow UI tries (the next   ``5000``
                           free one is taken when it is busy)
``COURSE_SPARK_CLASS_``    a class-data archive the local driver JVM   unset
``ARCHIVE``                loads its classes from, made by
                           ``python -m coursekit.class_archive PATH``
                           (the test suite sets it)
``COURSE_LEARNER``         the learner's name, put in every course     the login name with a
                           experiment and registered model name, so    tracking server
                           learners sharing one tracking server each   (``http(s)://``), else
                           have their own                              unset (plain names)
``COURSE_CATALOG``         Databricks only: Unity Catalog catalog and  ``workspace`` /
``COURSE_SCHEMA``          schema of the registered model (the setup   ``default``
                           cell's widgets ``catalog`` / ``schema``
                           override them)
=========================  ==========================================  ===========================

Inside Databricks (``DATABRICKS_RUNTIME_VERSION`` is set) the defaults change: tracking ``databricks``, registry
``databricks-uc``, experiments under ``/Users/<you>/mlflow-course/``, the registered model
``<catalog>.<schema>.pima_diabetes_rf``, and scratch space on the driver's temporary disk, not in the Git folder.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The Jupyter kernel ``scripts/setup.sh`` installs, which every notebook of the course runs on.
KERNEL_NAME = "mlflow-spark-course"
KERNEL_DISPLAY_NAME = "MLflow + Spark course"

log = logging.getLogger(__name__)

#: Set by every Databricks Runtime and serverless environment (MLflow 3.17's ``databricks_utils`` reads it too).
DATABRICKS_VERSION_VAR = "DATABRICKS_RUNTIME_VERSION"
#: The workspace folder under ``/Users/<you>/`` that holds the course's experiments.
COURSE_FOLDER = "mlflow-course"
DEFAULT_CATALOG = "workspace"  # Free Edition's and new workspaces' default catalog
DEFAULT_SCHEMA = "default"


@dataclass(frozen=True)
class Settings:
    """Resolved locations and engine settings for one course session."""

    data_dir: Path
    datasets_dir: Path
    tracking_uri: str
    artifact_root: Path
    spark_master: str
    spark_remote: str | None
    driver_memory: str
    quick_jit: bool = False
    class_archive: Path | None = None
    ui_port: int = 5000
    learner: str | None = None
    databricks: bool = False
    serverless: bool = False
    registry_uri: str | None = None
    catalog: str = DEFAULT_CATALOG
    schema: str = DEFAULT_SCHEMA

    @property
    def remote_store(self) -> bool:
        """True when a server decides where artifacts go: a tracking server (``http(s)://``) or Databricks."""
        return self.databricks or is_server_uri(self.tracking_uri)


def on_databricks(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a Databricks notebook or job: classic compute or serverless (``DATABRICKS_RUNTIME_VERSION``)."""
    return bool((os.environ if environ is None else environ).get(DATABRICKS_VERSION_VAR, "").strip())


def on_serverless(environ: Mapping[str, str] | None = None) -> bool:
    """True on Databricks serverless compute: its runtime version reads ``client.<n>…``, or ``DATABRICKS_ENV_VERSION`` is set.

    The same two signs MLflow 3.17 uses (``mlflow.utils.databricks_utils.is_in_databricks_serverless_runtime``).
    """
    env = os.environ if environ is None else environ
    return on_databricks(env) and (
        env.get(DATABRICKS_VERSION_VAR, "").strip().startswith("client.") or bool(env.get("DATABRICKS_ENV_VERSION"))
    )


def is_server_uri(uri: str) -> bool:
    """True for a tracking server's address (``http://`` or ``https://``)."""
    return uri.strip().lower().startswith(("http://", "https://"))


def learner_name(raw: str) -> str:
    """``raw`` as it goes into experiment and model names: lower case, letters, digits, ``_`` and ``.`` only.

    Other characters (spaces, hyphens, ``@``, ``/``) become ``_``; a name with nothing left raises ValueError.
    """
    name = re.sub(r"[^a-z0-9_.]+", "_", raw.strip().lower()).strip("_.")
    if not name:
        raise ValueError(f"COURSE_LEARNER={raw!r} has no letters or digits: set it to your name, e.g. COURSE_LEARNER=ada")
    return name


def _learner(tracking_uri: str) -> str | None:
    if on_databricks():
        return None  # each learner's experiments are in their own /Users/<you>/ folder already
    raw = os.environ.get("COURSE_LEARNER", "").strip()
    if raw:
        return learner_name(raw)
    if is_server_uri(tracking_uri):
        return learner_name(getpass.getuser())
    return None


def course_name(base: str, settings: Settings | None = None) -> str:
    """The name of a course experiment or registered model for this learner.

    ``base`` itself on a private store; ``<learner>-<base>`` (``ada-lesson-01-first-run``) when a learner is
    set (``COURSE_LEARNER``, or the login name with a tracking server), so learners on one server never
    read or overwrite each other's runs and models.
    """
    learner = (settings or load_settings()).learner
    return f"{learner}-{base}" if learner else base


_UC_NAME = re.compile(r"[A-Za-z0-9_]+")


def uc_identifier(value: str, what: str) -> str:
    """``value`` checked as one part of a Unity Catalog name (letters, digits, ``_``); the error says how to fix it."""
    value = value.strip()
    if not _UC_NAME.fullmatch(value):
        from coursekit.errors import CourseSetupError

        raise CourseSetupError(
            f"{what} {value!r} is not a plain Unity Catalog name: use letters, digits and _ only "
            f"(set the {what} widget or COURSE_{what.upper()})."
        )
    return value


def _notebook_dbutils() -> Any | None:
    """Databricks' ``dbutils`` from the notebook's namespace, or None outside a Databricks notebook."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return None
    shell = get_ipython()
    return None if shell is None else shell.user_ns.get("dbutils")


def widget_value(name: str, default: str, label: str) -> str:
    """The notebook widget ``name`` (created with ``default`` if missing); ``default`` outside a Databricks notebook."""
    dbutils = _notebook_dbutils()
    if dbutils is None:
        return default
    try:
        return str(dbutils.widgets.get(name))
    except Exception:  # noqa: BLE001 - dbutils raises its own (py4j or Connect) error for a missing widget
        dbutils.widgets.text(name, default, label)
        return default


def _databricks_location() -> tuple[str, str]:
    """Catalog and schema of the registered model: the widgets, whose defaults come from the environment."""
    catalog = widget_value("catalog", os.environ.get("COURSE_CATALOG") or DEFAULT_CATALOG, "Unity Catalog catalog")
    schema = widget_value("schema", os.environ.get("COURSE_SCHEMA") or DEFAULT_SCHEMA, "Unity Catalog schema")
    return uc_identifier(catalog, "catalog"), uc_identifier(schema, "schema")


def experiment_name(base: str, settings: Settings | None = None) -> str:
    """The full name of the course experiment ``base`` (``lesson-01-first-run``) on this platform.

    Databricks wants absolute workspace paths: ``/Users/<you>/mlflow-course/<base>`` (no ``/Workspace`` prefix,
    which breaks a second ``set_experiment``: mlflow#11077). Elsewhere it is :func:`course_name`.
    """
    settings = settings or load_settings()
    if settings.databricks:
        from coursekit.spark import workspace_user

        return f"/Users/{workspace_user()}/{COURSE_FOLDER}/{base}"
    return course_name(base, settings)


def model_name(base: str, settings: Settings | None = None) -> str:
    """The name of the registered model ``base`` (``pima-diabetes-rf``) on this platform.

    Unity Catalog (Databricks' registry in MLflow 3) needs three parts and no hyphens:
    ``<catalog>.<schema>.pima_diabetes_rf``. Elsewhere it is :func:`course_name`.
    """
    settings = settings or load_settings()
    if settings.databricks:
        return f"{settings.catalog}.{settings.schema}.{base.replace('-', '_')}"
    return course_name(base, settings)


def _port(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        from coursekit.errors import CourseSetupError

        raise CourseSetupError(f"{variable}={raw!r} is not a port number: set it to one between 1024 and 65535, or unset it.")
    return int(raw)


def _default_data_dir(databricks: bool) -> Path:
    # On Databricks the repository is a Git folder in the workspace: scratch files belong on the driver's own disk.
    return Path(tempfile.gettempdir()) / COURSE_FOLDER if databricks else REPO_ROOT / ".course-data"


def load_settings() -> Settings:
    """Read the environment and return the settings, creating the data folder."""
    databricks = on_databricks()
    data_dir = Path(os.environ.get("COURSE_DATA_DIR") or _default_data_dir(databricks)).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    default_uri = "databricks" if databricks else f"sqlite:///{data_dir / 'mlflow.db'}"
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or default_uri
    registry_uri = os.environ.get("MLFLOW_REGISTRY_URI") or ("databricks-uc" if databricks else None)
    catalog, schema = _databricks_location() if databricks else (DEFAULT_CATALOG, DEFAULT_SCHEMA)
    return Settings(
        data_dir=data_dir,
        datasets_dir=Path(os.environ.get("COURSE_DATASETS_DIR", REPO_ROOT / "datasets")).resolve(),
        tracking_uri=tracking_uri,
        artifact_root=data_dir / "artifacts",
        spark_master=os.environ.get("COURSE_SPARK_MASTER", "local[2]"),
        spark_remote=os.environ.get("SPARK_REMOTE") or None,
        driver_memory=os.environ.get("COURSE_DRIVER_MEMORY", "2g"),
        quick_jit=os.environ.get("COURSE_SPARK_QUICK_JIT", "").strip().lower() in ("1", "true", "yes"),
        class_archive=Path(archive).resolve() if (archive := os.environ.get("COURSE_SPARK_CLASS_ARCHIVE", "").strip()) else None,
        ui_port=_port("COURSE_UI_PORT", 5000),
        learner=_learner(tracking_uri),
        databricks=databricks,
        serverless=on_serverless(),
        registry_uri=registry_uri,
        catalog=catalog,
        schema=schema,
    )
