"""Run notebooks with papermill and read what they produced (used by the notebook tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError

from coursekit.exercises.checks import CHECK_MIMETYPE
from coursekit.settings import KERNEL_NAME

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))
LESSONS = sorted((REPO / "lessons").glob("[0-9][0-9]_*.ipynb"))

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
    """Execute ``source`` with plain papermill (its default engine, as an instructor would) in a fresh
    course kernel against the store in ``data_dir``.

    ``env`` adds variables the kernel inherits for this run only (``MLFLOW_TRACKING_URI`` of a class server,
    ``SPARK_REMOTE``, ``COURSE_SPARK_MASTER`` …). Errors do not raise: the executed notebook (with any error
    outputs, and papermill's error banner when a cell stopped execution) is returned for inspection.
    """
    env_before = os.environ.get("COURSE_DATA_DIR")
    os.environ["COURSE_DATA_DIR"] = str(data_dir)
    # The kernel must find its store through COURSE_DATA_DIR alone, never an inherited URI.
    uri_before = os.environ.pop("MLFLOW_TRACKING_URI", None)
    added = {name: os.environ.get(name) for name in (env or {})}
    os.environ.update(env or {})
    try:
        papermill.execute_notebook(
            str(source), str(output), parameters=parameters or {}, kernel_name=KERNEL_NAME,
            cwd=str(source.parent), progress_bar=False, log_output=False, execution_timeout=600,
            raise_on_execution_error=False,
        )
    except PapermillExecutionError:
        pass  # the output notebook was written, with the failing cell marked
    finally:
        for name, value in added.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if uri_before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = uri_before
        if env_before is None:
            os.environ.pop("COURSE_DATA_DIR", None)
        else:
            os.environ["COURSE_DATA_DIR"] = env_before
    return nbformat.read(output, as_version=4)


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
