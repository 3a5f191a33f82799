"""Run notebooks with the course's engine and read what they produced (used by the notebook tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat

from coursekit.engine import execute_notebook
from coursekit.exercises.checks import CHECK_MIMETYPE

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))
LESSONS = sorted((REPO / "lessons").glob("[0-9][0-9]_*.ipynb"))

#: The exercises each lesson checks (its q1.check() … calls).
EXERCISES = {
    "01_first_run": {"q1", "q2", "q3", "q4", "q5"},
    "02_log_metrics": {"q1", "q2", "q3", "q4", "q5"},
    "03_log_model": {"q1", "q2", "q3", "q4", "q5"},
    "04_compare_runs": {"q1", "q2", "q3", "q4"},
    "05_tune_interactively": {"q1", "q2", "q3"},
    "06_autolog_nested_runs": {"q1", "q2", "q3", "q4", "q5"},
    "07_model_registry": {"q1", "q2", "q3", "q4", "q5"},
    "08_capstone": {"q1", "q2", "q3"},
}

# CI shrinks the work through each notebook's `parameters` cell.
FAST_PARAMETERS: dict[str, dict[str, Any]] = {
    "01_first_run": {"NUM_TREES": 10, "MAX_DEPTH": 4, "LEARNER": "ci"},
    "02_log_metrics": {"NUM_TREES": 10, "MAX_DEPTH": 4, "TREE_COUNTS": [1, 4, 10]},
    "03_log_model": {"NUM_TREES": 10, "MAX_DEPTH": 4},
    # Keeps 20 trees and depth 5, which the exercises ask about; the UI has its own browser test.
    "04_compare_runs": {"NUM_TREES_GRID": [5, 20], "MAX_DEPTH_GRID": [2, 5], "START_UI": False},
    # A small baseline, then a challenger that beats it on the same split, so the promotion path runs.
    "07_model_registry": {"CANDIDATES": [{"numTrees": 3, "maxDepth": 2},
                                         {"numTrees": 10, "maxDepth": 3, "featureSubsetStrategy": "sqrt"}]},
    "08_capstone": {"MAX_TREES": 20},
}


def run_notebook(
    source: Path, output: Path, data_dir: Path, parameters: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> nbformat.NotebookNode:
    """Execute ``source`` with the course's engine (:mod:`coursekit.engine`) in a fresh course kernel against
    the store in ``data_dir``.

    ``env`` adds variables the kernel inherits for this run only (``MLFLOW_TRACKING_URI`` of a class server,
    ``SPARK_REMOTE``, ``COURSE_SPARK_MASTER`` …). Errors do not raise: the executed notebook (with any error
    outputs, and papermill's error banner when a cell stopped execution) is returned for inspection.
    """
    # The kernel must find its store through COURSE_DATA_DIR alone, never an inherited URI.
    kernel_env: dict[str, str | None] = {"COURSE_DATA_DIR": str(data_dir), "MLFLOW_TRACKING_URI": None, **(env or {})}
    return execute_notebook(source, output, parameters=parameters, env=kernel_env, raise_errors=False)


def error_outputs(nb: nbformat.NotebookNode) -> list[str]:
    """``ename: evalue`` of every error output in an executed notebook."""
    return [
        f"{out.get('ename')}: {out.get('evalue')}"
        for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.output_type == "error"
    ]


def check_outcomes(nb: nbformat.NotebookNode) -> dict[str, str]:
    """Exercise key -> outcome, read from the machine-readable output every check emits."""
    found: dict[str, str] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            payload = out.get("data", {}).get(CHECK_MIMETYPE)
            if payload:
                record = json.loads(payload)
                found[record["exercise"]] = record["outcome"]
    return found




def text_outputs(nb: nbformat.NotebookNode) -> list[str]:
    """Every text output of the executed notebook (streams, plain-text results, tracebacks)."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            found.append(out.get("text", "") or out.get("data", {}).get("text/plain", "") or "\n".join(out.get("traceback", [])))
    return found
