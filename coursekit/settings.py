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
                           the quick JIT only (for several kernels
                           at once: the grader, the test suite)
``COURSE_LEARNER``         the learner's name, put in every course     the login name with a
                           experiment and registered model name, so    tracking server
                           learners sharing one tracking server each   (``http(s)://``), else
                           have their own                              unset (plain names)
=========================  ==========================================  ===========================
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


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
    learner: str | None = None

    @property
    def remote_store(self) -> bool:
        """True when the tracking URI is a tracking server (``http(s)://``), not a database or folder."""
        return is_server_uri(self.tracking_uri)


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


def load_settings() -> Settings:
    """Read the environment and return the settings, creating the data folder."""
    data_dir = Path(os.environ.get("COURSE_DATA_DIR", REPO_ROOT / ".course-data")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir / 'mlflow.db'}"
    return Settings(
        data_dir=data_dir,
        datasets_dir=Path(os.environ.get("COURSE_DATASETS_DIR", REPO_ROOT / "datasets")).resolve(),
        tracking_uri=tracking_uri,
        artifact_root=data_dir / "artifacts",
        spark_master=os.environ.get("COURSE_SPARK_MASTER", "local[2]"),
        spark_remote=os.environ.get("SPARK_REMOTE") or None,
        driver_memory=os.environ.get("COURSE_DRIVER_MEMORY", "2g"),
        quick_jit=os.environ.get("COURSE_SPARK_QUICK_JIT", "").strip().lower() in ("1", "true", "yes"),
        learner=_learner(tracking_uri),
    )
