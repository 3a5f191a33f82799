"""Re-execute the solution notebooks in place so their stored outputs are current.

Maintainers run ``python -m coursekit.authoring.refresh`` after editing a solution, then
``python -m coursekit.authoring.generate``. Each notebook runs in a fresh kernel against a
fresh, temporary MLflow store, so the stored outputs are the ones a learner
gets on a first run; nbval later compares CI's outputs with them.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import nbformat

from coursekit.authoring.generate import pairs
from coursekit.engine import CELL_TIMEOUT, execute_notebook, without_run_metadata

log = logging.getLogger(__name__)


def execute_in_place(path: Path, timeout: int = CELL_TIMEOUT) -> None:
    """Run ``path`` top to bottom in a fresh course kernel and save it with its outputs.

    The run goes to a temporary copy first: a failing cell raises and leaves ``path`` as it was.
    """
    with tempfile.TemporaryDirectory(prefix="course-refresh-") as data_dir:
        executed = execute_notebook(
            path, Path(data_dir) / path.name, env={"COURSE_DATA_DIR": data_dir, "MLFLOW_TRACKING_URI": None},
            cell_timeout=timeout,
        )
    nbformat.write(without_run_metadata(executed), path)


def main(argv: list[str] | None = None) -> int:
    """Execute the named solutions (default: all) in place."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="solution notebooks (default: all)")
    args = parser.parse_args(argv)
    targets = args.notebooks or [solution for solution, _ in pairs()]
    for path in targets:
        execute_in_place(path)
        print(f"executed {path}")  # noqa: T201 - CLI output
    return 0


if __name__ == "__main__":
    sys.exit(main())
