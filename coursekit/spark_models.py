"""The one gateway for logging and loading Spark ML models: ``mlflow.spark`` itself, or a stand-in over Spark Connect.

On classic Spark (a local session with its own driver JVM) the lessons' *Spark flavour* is the real
``mlflow.spark`` module. Over open-source Spark Connect it cannot be: MLflow (verified with 3.17.2 and
3.18.0) copies a pyspark.ml model's files through the driver's py4j JVM (``SparkContext._gateway.jvm``),
which a Connect client does not have, so ``mlflow.spark.log_model``, ``save_model``, ``load_model`` and
``mlflow.pyfunc.load_model`` of a Connect-fitted model all fail with
``AttributeError: 'NoneType' object has no attribute 'jvm'``.

What does work when the client and the Connect server share a disk (a server on the same machine): the
model saves itself (``model.write().overwrite().save(path)``, executed by the server), MLflow logs that
folder as ``<artifact_path>/sparkml`` like the real flavour does, next to an ``MLmodel`` file written with
MLflow's public :class:`mlflow.models.Model` that declares the ``spark`` flavour only; and
``PipelineModel.load`` reads a downloaded copy back. :class:`ConnectSparkFlavor` does exactly that behind
the same call shapes as ``mlflow.spark.log_model`` / ``save_model`` / ``load_model``, so
``mlflow.register_model`` and ``models:/`` URIs work as usual, and a classic Spark session can later load
the model with ``mlflow.spark.load_model``. What it cannot give is what only MLflow's flavour writes: the
``python_function`` flavour (so no ``mlflow.pyfunc`` loading), the environment files
(``requirements.txt``, ``python_env.yaml``, ``conda.yaml``), the signature and the input example.
Databricks' own Connect sessions are left to ``mlflow.spark``, which handles them through a Unity Catalog volume.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import mlflow

from coursekit.settings import load_settings

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: The first words of every line the stand-in shows; checks and tests recognise it.
CONNECT_PREFIX = "Spark Connect:"
SPARKML = "sparkml"
WHY = "mlflow.spark needs the driver's JVM, which a Spark Connect client does not have"


def is_connect(spark: SparkSession | None = None) -> bool:
    """True when ``spark`` (default: the active session) is an open-source Spark Connect session.

    Databricks' Connect sessions count as classic here: MLflow logs their models itself.
    """
    if "DATABRICKS_RUNTIME_VERSION" in os.environ:
        return False
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None:
            from pyspark.sql.utils import is_remote

            return is_remote()
    return is_connect_session(spark)


def is_connect_session(spark: SparkSession) -> bool:
    """True when ``spark`` is a Spark Connect session: open-source Connect, or Databricks serverless and standard access."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def activate(spark: SparkSession) -> None:
    """Make ``spark`` the active session of the calling thread, if it is a Connect session.

    A Connect session is active only in the thread that created it, and pyspark.ml over Connect
    needs an active session (a fit in a worker thread, such as the tuning panel's, otherwise fails
    with a bare ``AssertionError``). PySpark 4.3 has no public call for this; classic sessions need nothing.
    Databricks' serverless sessions are Connect sessions too, so this holds there as well.
    """
    cls = type(spark)
    if is_connect_session(spark) and cls.getActiveSession() is None:
        setter = getattr(cls, "_set_default_and_active_session", None)
        if setter is not None:
            setter(spark)


def allow_autolog_over_connect() -> None:
    """Let ``mlflow.pyspark.ml.autolog()`` start over Spark Connect, where MLflow 3.17.2 cannot.

    Each ``autolog()`` call reads the optional allowlist file of models it may log from
    ``spark.sparkContext._conf`` (``spark.mlflow.pysparkml.autolog.logModelAllowlistFile``). A Connect session has
    no ``sparkContext``, so the call itself fails with ``JVM_ATTRIBUTE_NOT_SUPPORTED`` before any fit. Only that
    failure is caught: MLflow's built-in allowlist is used instead, exactly what it uses when the setting is unset.
    Everything else autolog does over Connect is MLflow's own. Idempotent; a no-op if MLflow no longer has the reader.
    """
    import importlib.resources

    import mlflow.pyspark.ml as autolog_module

    reader = getattr(autolog_module, "_read_log_model_allowlist", None)
    from_file = getattr(autolog_module, "_read_log_model_allowlist_from_file", None)
    if reader is None or from_file is None or getattr(reader, "course_fallback", False):
        return

    def read_allowlist() -> set[str]:
        from pyspark.errors import PySparkAttributeError

        try:
            return reader()
        except PySparkAttributeError:
            log.info("%s autolog reads MLflow's built-in model allowlist (no sparkContext to read a custom one from)", CONNECT_PREFIX)
            builtin = importlib.resources.files(autolog_module.__name__).joinpath("log_model_allowlist.txt")
            with importlib.resources.as_file(builtin) as path:
                return from_file(path.as_posix())

    read_allowlist.course_fallback = True  # type: ignore[attr-defined]
    autolog_module._read_log_model_allowlist = read_allowlist  # type: ignore[attr-defined]


def unsupported_line(what: str) -> str:
    """The one line shown where MLflow cannot do ``what`` over Spark Connect."""
    return f"{CONNECT_PREFIX} {what} is not possible with MLflow {mlflow.__version__} ({WHY}); skipped."


@dataclass(frozen=True)
class ConnectModelInfo:
    """What :meth:`ConnectSparkFlavor.log_model` returns: the fields of MLflow's ``ModelInfo`` the lessons read.

    ``flavors`` names the spark flavour only and ``model_id`` is None (no MLflow 3 LoggedModel).
    """

    run_id: str
    artifact_path: str
    model_uri: str
    registered_model_version: int | None = None
    flavors: dict[str, Any] = field(default_factory=dict)
    model_id: str | None = None


class ConnectSparkFlavor:
    """A stand-in for ``mlflow.spark`` over open-source Spark Connect, when client and server share a disk.

    Same call shapes as the real flavour for what the course uses. Each kind of call says once, in one
    line, what it did instead of MLflow's own.
    """

    def __init__(self, scratch: Path | None = None) -> None:
        self._scratch = scratch
        self._told: set[str] = set()

    @property
    def scratch(self) -> Path:
        """Folder for saved and downloaded models: under ``COURSE_DATA_DIR``, which the server must see too."""
        folder = self._scratch or load_settings().data_dir / "spark" / "connect-models"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _tell_once(self, kind: str, text: str) -> None:
        log.info("%s", text)
        if kind not in self._told:
            self._told.add(kind)
            # The learner must see what happened instead of MLflow's own call, in the cell that made it.
            print(text)  # noqa: T201

    def save_model(self, spark_model: Any, path: str | os.PathLike[str], **kwargs: Any) -> None:
        """Save ``spark_model`` into ``path`` as ``sparkml/`` plus an ``MLmodel`` with the spark flavour only."""
        target = Path(path)
        if target.exists() and any(target.iterdir()):
            raise FileExistsError(f"{target} already exists and is not empty")
        self._save(spark_model, target, None)
        self._tell_once(
            "save", f"{CONNECT_PREFIX} MLflow {mlflow.__version__} cannot save a Connect-fitted pyspark.ml model ({WHY}); "
            f"saved it with model.write().save() and an MLmodel of the spark flavour only{_ignored(kwargs)}.",
        )

    def log_model(self, spark_model: Any, artifact_path: str, registered_model_name: str | None = None,
                  **kwargs: Any) -> ConnectModelInfo:
        """Log ``spark_model`` into the active run as ``<artifact_path>/`` (``sparkml/`` and ``MLmodel``).

        Registers it under ``registered_model_name`` when given. Other keyword arguments of
        ``mlflow.spark.log_model`` (``pip_requirements``, ``signature``, ``input_example``, …) are accepted
        and not recorded: only MLflow's own flavour writes them.
        """
        run = mlflow.active_run() or mlflow.start_run()
        run_id = run.info.run_id
        folder = Path(tempfile.mkdtemp(prefix="log-", dir=self.scratch))
        try:
            self._save(spark_model, folder / artifact_path, (run_id, artifact_path))
            mlflow.log_artifacts(str(folder / artifact_path), artifact_path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        model_uri = f"runs:/{run_id}/{artifact_path}"
        self._tell_once(
            "log", f"{CONNECT_PREFIX} MLflow {mlflow.__version__} cannot log a Connect-fitted pyspark.ml model ({WHY}); "
            f"saved it with model.write().save() and logged the folder as {artifact_path}/sparkml, with an MLmodel of "
            f"the spark flavour only{_ignored(kwargs)}.",
        )
        version = None
        if registered_model_name:
            version = int(mlflow.register_model(model_uri, registered_model_name).version)
        return ConnectModelInfo(run_id=run_id, artifact_path=artifact_path, model_uri=model_uri,
                                registered_model_version=version, flavors={"spark": {}})

    def load_model(self, model_uri: str, dfs_tmpdir: str | None = None, dst_path: str | None = None) -> PipelineModel:
        """Download the model at ``model_uri`` and read its ``sparkml/`` with ``PipelineModel.load`` over Connect."""
        from pyspark.ml import PipelineModel

        folder = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="load-", dir=self.scratch))
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(folder)))
        sparkml = local / SPARKML if (local / SPARKML).is_dir() else local
        model = PipelineModel.load(str(sparkml))
        self._tell_once(
            "load", f"{CONNECT_PREFIX} MLflow {mlflow.__version__} cannot load a pyspark.ml model over Connect ({WHY}); "
            "read its sparkml folder with PipelineModel.load() instead.",
        )
        return model

    @staticmethod
    def _save(spark_model: Any, target: Path, logged: tuple[str, str] | None) -> None:
        """``target/sparkml`` written by the server, and ``target/MLmodel`` declaring the spark flavour only."""
        import pyspark
        from mlflow.models import Model
        from pyspark.ml import PipelineModel

        if not isinstance(spark_model, PipelineModel):
            spark_model = PipelineModel(stages=[spark_model])  # as mlflow.spark does
        # The server writes the files, so the path must be one it can see: the shared disk.
        spark_model.write().overwrite().save(str(target / SPARKML))
        if not (target / SPARKML).is_dir():
            raise FileNotFoundError(
                f"The Spark Connect server saved the model to {target / SPARKML}, but this machine does not see that "
                "folder: logging a Connect-fitted model needs a Connect server on the same machine (shared disk)."
            )
        run_id, artifact_path = logged or (None, None)
        description = Model(artifact_path=artifact_path, run_id=run_id)
        cls = type(spark_model)
        description.add_flavor("spark", pyspark_version=pyspark.__version__, model_data=SPARKML,
                               model_class=f"{cls.__module__}.{cls.__name__}")
        description.save(str(target / "MLmodel"))


def _ignored(kwargs: dict[str, Any]) -> str:
    """``"; not recorded: signature, …"`` for keyword arguments only MLflow's MLmodel would hold."""
    names = sorted(k for k, v in kwargs.items() if v is not None)
    return f"; not recorded: {', '.join(names)}" if names else ""


def spark_flavor(spark: SparkSession | None = None) -> ModuleType | ConnectSparkFlavor:
    """The Spark flavour for ``spark``: the ``mlflow.spark`` module itself on classic Spark, the stand-in over Connect."""
    if is_connect(spark):
        return _standin()
    import mlflow.spark

    return mlflow.spark


_STANDIN: ConnectSparkFlavor | None = None


def _standin() -> ConnectSparkFlavor:
    """One stand-in per process, so each of its notices shows once per kernel."""
    global _STANDIN  # noqa: PLW0603
    if _STANDIN is None:
        _STANDIN = ConnectSparkFlavor()
    return _STANDIN
