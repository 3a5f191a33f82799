"""coursekit.quick_imports: the notebook tools skip jsonschema's IRI grammars, and still validate notebooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_the_tools_import_nbformat_without_the_iri_grammars_and_still_validate() -> None:
    out = _python(
        "import coursekit.engine, coursekit.instructor.grade, coursekit.authoring.refresh\n"
        "import sys, glob, nbformat\n"
        "assert sys.modules['rfc3987_syntax'] is None, 'the grammars were imported'\n"
        "for path in sorted(glob.glob('solutions/*.ipynb')):\n"
        "    nbformat.validate(nbformat.read(path, as_version=4))\n"
        "nb = nbformat.read('solutions/01_first_run.ipynb', as_version=4)\n"
        "nb.cells[0]['cell_type'] = 'not-a-cell-type'\n"
        "try:\n"
        "    nbformat.validate(nb)\n"
        "except nbformat.ValidationError:\n"
        "    print('invalid notebook rejected')\n"
    )
    assert out == "invalid notebook rejected"


def test_nothing_changes_where_jsonschema_came_first() -> None:
    out = _python(
        "import sys, jsonschema, coursekit.quick_imports as q\n"
        "print(q.skip_iri_grammars(), type(sys.modules.get('rfc3987_syntax')).__name__)\n"
    )
    assert out == "False module"


def test_a_lessons_imports_leave_jsonschema_alone() -> None:
    out = _python(
        "import sys\n"
        "import coursekit, coursekit.classroom, coursekit.spark, coursekit.tracking, coursekit.tuning_panel\n"
        "import coursekit.exercises.lesson01, coursekit.exercises.lesson07\n"
        "print('coursekit.quick_imports' in sys.modules, 'rfc3987_syntax' in sys.modules)\n"
    )
    assert out == "False False"
