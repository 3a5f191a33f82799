"""The package's folders are its three products, and imports only point down.

- ``coursekit/`` and ``coursekit/exercises/``: the learner runtime (what a lesson imports);
- ``coursekit/engine.py``: the one notebook-execution engine (never imported by the learner runtime);
- ``coursekit/instructor/`` and ``coursekit/authoring/``: what instructors and maintainers run; neither
  imports the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "coursekit"

LEARNER = "learner runtime"
ENGINE = "engine"
INSTRUCTOR = "instructor"
AUTHORING = "authoring"
#: What each layer must never import.
FORBIDDEN = {
    LEARNER: ("coursekit.engine", "coursekit.instructor", "coursekit.authoring"),
    ENGINE: ("coursekit.instructor", "coursekit.authoring"),
    INSTRUCTOR: ("coursekit.authoring",),
    AUTHORING: ("coursekit.instructor",),
}


def layer_of(module: str) -> str:
    """The layer a module of the package belongs to, by its folder."""
    if module == "coursekit.engine":
        return ENGINE
    if module.startswith("coursekit.instructor"):
        return INSTRUCTOR
    if module.startswith("coursekit.authoring"):
        return AUTHORING
    return LEARNER


def imported_modules(source: str, module: str) -> set[str]:
    """Every module ``source`` imports anywhere (top level or inside functions), as absolute names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                package = module.split(".")[: -node.level] if not module.endswith("__init__") else module.split(".")
                base = ".".join([*package, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def violations(module: str, source: str) -> list[str]:
    """The imports of ``module`` that point up or sideways in the layering."""
    banned = FORBIDDEN[layer_of(module)]
    return sorted(name for name in imported_modules(source, module) if name.startswith(banned))


def package_modules() -> dict[str, Path]:
    """Dotted name -> file of every module in the package."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


@pytest.mark.parametrize("module", sorted(package_modules()))
def test_imports_point_down(module: str) -> None:
    source = package_modules()[module].read_text(encoding="utf-8")
    assert violations(module, source) == [], f"{module} ({layer_of(module)}) imports what it must not"


def test_every_folder_is_a_known_layer() -> None:
    folders = {p.parent.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
    assert folders == {".", "exercises", "instructor", "authoring"}


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("coursekit.classroom", "from coursekit.instructor.grade import main", ["coursekit.instructor.grade", "coursekit.instructor.grade.main"]),
        ("coursekit.exercises.lesson01", "def f():\n    import coursekit.engine", ["coursekit.engine"]),
        ("coursekit.ui", "from coursekit.authoring import ui_tour", ["coursekit.authoring", "coursekit.authoring.ui_tour"]),
        ("coursekit.engine", "from coursekit.instructor import runner", ["coursekit.instructor", "coursekit.instructor.runner"]),
        ("coursekit.instructor.grade", "from ..authoring.generate import pairs", ["coursekit.authoring.generate", "coursekit.authoring.generate.pairs"]),
        ("coursekit.authoring.refresh", "from coursekit.instructor.sandbox import execute", ["coursekit.instructor.sandbox", "coursekit.instructor.sandbox.execute"]),
    ],
)
def test_an_import_pointing_up_or_sideways_is_caught(module: str, source: str, expected: list[str]) -> None:
    assert violations(module, source) == expected


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("coursekit.instructor.grade", "from coursekit.exercises.checks import Exercise\nfrom coursekit.engine import execute_notebook"),
        ("coursekit.authoring.refresh", "from coursekit.engine import execute_notebook\nfrom coursekit.settings import KERNEL_NAME"),
        ("coursekit.engine", "from coursekit.exercises.checks import CHECK_MIMETYPE"),
        ("coursekit.exercises.lesson03", "from coursekit.spark_models import is_connect"),
    ],
)
def test_an_import_pointing_down_is_allowed(module: str, source: str) -> None:
    assert violations(module, source) == []
