"""Re-execute the solution notebooks in place so their stored outputs are current.

Maintainers run ``python -m coursekit.authoring.refresh`` after editing a solution, then
``python -m coursekit.authoring.generate``. Each notebook runs in a fresh kernel against a
fresh, temporary MLflow store, so the stored outputs are the ones a learner
gets on a first run; nbval later compares CI's outputs with them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from coursekit.authoring.generate import pairs
from coursekit.settings import KERNEL_NAME

log = logging.getLogger(__name__)


def execute_in_place(path: Path, timeout: int = 600) -> None:
    """Run ``path`` top to bottom in a fresh course kernel and save it with its outputs."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="course-refresh-") as data_dir:
        previous = os.environ.get("COURSE_DATA_DIR")
        os.environ["COURSE_DATA_DIR"] = data_dir
        try:
            NotebookClient(
                nb, timeout=timeout, kernel_name=KERNEL_NAME, record_timing=False,
                resources={"metadata": {"path": str(path.parent)}},
            ).execute()
        finally:
            if previous is None:
                os.environ.pop("COURSE_DATA_DIR", None)
            else:
                os.environ["COURSE_DATA_DIR"] = previous
    nbformat.write(nb, path)


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
