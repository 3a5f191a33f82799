"""Generate learner lessons from the solution notebooks (solutions are the single source).

Solution cells mark the answer with nbgrader's delimiters::

    with mlflow.start_run(run_name="ex1-params"):
        ### BEGIN SOLUTION
        #> mlflow.log_param("model_type", ____)
        mlflow.log_param("model_type", "RandomForest")
        ### END SOLUTION

nbgrader's ``ClearSolutions`` preprocessor replaces each region with a stub.
The one thing added here: lines starting with ``#>`` inside a region become
that region's stub (the starter code with ``____`` blanks); a region without
them gets a generic "your code here" stub. nbconvert's own preprocessors then
drop cells tagged ``remove-from-lesson`` and strip outputs.

Run ``python -m coursekit.authoring.generate`` to rewrite ``lessons/`` (or name solution files to rewrite only theirs);
``python -m coursekit.authoring.generate --check`` exits 1 when a lesson is stale.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor, ClearOutputPreprocessor, TagRemovePreprocessor
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearSolutions

from coursekit.settings import KERNEL_DISPLAY_NAME, KERNEL_NAME, REPO_ROOT

log = logging.getLogger(__name__)

STARTER_PREFIX = "#>"
DEFAULT_STUB = "# YOUR CODE HERE\npass"
LESSON_ONLY_REMOVE_TAG = "remove-from-lesson"
_STARTER_LINE = re.compile(r"^\s*#> ?(.*)$")


class StarterSolutions(ClearSolutions):  # type: ignore[misc]
    """nbgrader's ClearSolutions with a per-region stub taken from ``#>`` lines."""

    def _replace_solution_region(self, cell: NotebookNode, language: str) -> bool:
        starter = [m.group(1) for line in cell.source.split("\n") if (m := _STARTER_LINE.match(line))]
        saved = self.code_stub
        if cell.cell_type == "code":
            self.code_stub = {**saved, language: "\n".join(starter) if starter else DEFAULT_STUB}
        try:
            replaced: bool = super()._replace_solution_region(cell, language)
        finally:
            self.code_stub = saved
        return replaced


def lesson_from_solution(solution: NotebookNode) -> NotebookNode:
    """Return the learner version of a solution notebook (the input is not modified)."""
    nb = nbformat.from_dict(solution)
    resources: dict[str, Any] = {}
    nb, resources = TagRemovePreprocessor(remove_cell_tags={LESSON_ONLY_REMOVE_TAG}, enabled=True).preprocess(nb, resources)
    nb, resources = StarterSolutions(enforce_metadata=False).preprocess(nb, resources)
    nb, resources = ClearOutputPreprocessor().preprocess(nb, resources)
    # Keep tags (papermill needs "parameters"); drop execution timings and the like.
    nb, resources = ClearMetadataPreprocessor(
        enabled=True, preserve_cell_metadata_mask={"tags"}, preserve_nb_metadata_mask={("kernelspec",), ("language_info", "name")}
    ).preprocess(nb, resources)
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY_NAME, "language": "python"}
    nbformat.validate(nb)
    return nb


def render(nb: NotebookNode) -> str:
    """Serialize a notebook the way the repository stores it."""
    return nbformat.writes(nb) + "\n"


def pairs(root: Path = REPO_ROOT) -> list[tuple[Path, Path]]:
    """(solution, lesson) paths for every solution notebook."""
    return [(s, root / "lessons" / s.name) for s in sorted((root / "solutions").glob("[0-9][0-9]_*.ipynb"))]


def generated_text(solution_path: Path) -> str:
    """The exact text the lesson file for ``solution_path`` should contain."""
    return render(lesson_from_solution(nbformat.read(solution_path, as_version=4)))


def main(argv: list[str] | None = None) -> int:
    """Write every lesson, or with ``--check`` report the stale ones and exit 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report lessons that differ from their solution")
    parser.add_argument("solutions", nargs="*", type=Path, help="only these solution notebooks (default: all)")
    args = parser.parse_args(argv)
    wanted = {p.resolve() for p in args.solutions}
    stale = []
    for solution, lesson in pairs():
        if wanted and solution.resolve() not in wanted:
            continue
        text = generated_text(solution)
        current = lesson.read_text(encoding="utf-8") if lesson.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(lesson)
        else:
            lesson.write_text(text, encoding="utf-8")
            print(f"wrote {lesson.relative_to(REPO_ROOT)}")  # noqa: T201 - CLI output
    if stale:
        names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in stale)
        print(f"Out of sync with solutions/: {names}. Run: python -m coursekit.authoring.generate")  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
