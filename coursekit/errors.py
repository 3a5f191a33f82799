"""Errors a learner's machine can cause, each carrying one line on how to fix it."""

from __future__ import annotations


class CourseSetupError(RuntimeError):
    """The machine is not ready for the course (Java, dataset, port, store).

    The message is a single sentence a learner can act on; notebooks show it
    instead of a traceback (see :func:`coursekit.classroom.install_friendly_errors`).
    """


class JavaMissingError(CourseSetupError):
    """No usable Java runtime was found, or it is too old for PySpark 4."""


class DatasetMissingError(CourseSetupError):
    """A dataset file the course ships is missing or altered."""


class TrackingServerError(CourseSetupError):
    """The tracking server in MLFLOW_TRACKING_URI does not answer."""
