"""Plumbing for the MLflow-with-PySpark course notebooks.

The notebooks keep every MLflow and Spark call a learner is meant to learn in
plain sight. This package only hides what is not the lesson: where the course
data lives, how Spark is sized for a laptop, how the MLflow store is laid out,
and the exercise checks.
"""

from __future__ import annotations

from coursekit.exercises.checks import BLANK, CheckResult, Outcome

__all__ = ["BLANK", "CheckResult", "Outcome", "__version__"]
__version__ = "0.1.0"
