"""The README's Databricks install line: never PySpark, enough for every lesson, satisfied by the tested pins.

On Databricks a learner installs only what the compute lacks (README, "On Databricks"). Installing PySpark over
Databricks' own Spark breaks the session, and a line that misses a package breaks a lesson at its first import.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
# What every Databricks compute has because its Spark needs it (PySpark's pandas/Arrow support).
DATABRICKS_BRINGS = {"pyspark", "py4j", "pandas", "numpy", "pyarrow"}
NEVER = {"pyspark", "py4j", "pyspark-connect", "pyspark-client", "databricks-connect", "delta-spark"}


def _install_line() -> str:
    section = README.split("## On Databricks", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("%pip install")]
    assert len(lines) == 1, f"one %pip line expected in the README's Databricks section, found {lines}"
    return lines[0]


def _requirements() -> list[Requirement]:
    words = shlex.split(_install_line())[2:]
    return [Requirement(word) for word in words if not word.startswith("-")]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _closure(names: set[str]) -> set[str]:
    """``names`` and everything they require (without extras), as installed here."""
    seen, todo = set(), [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in requires:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen


def test_the_line_never_installs_pyspark_and_is_quiet():
    line = _install_line()
    assert line.startswith("%pip install -q ")
    assert "-r" not in shlex.split(line), "a requirements file would pin PySpark"
    names = {canonicalize_name(r.name) for r in _requirements()}
    assert not names & NEVER
    assert "mlflow" in names


def test_the_tested_pins_satisfy_every_range():
    pins = _pins()
    for requirement in _requirements():
        pinned = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pinned), f"{requirement} would not accept the tested {pinned}"
    mlflow = next(r for r in _requirements() if r.name == "mlflow")
    assert not mlflow.specifier.contains("3.16.0") and not mlflow.specifier.contains("4.0.0"), \
        "the lessons teach MLflow 3.17's API: older 3.x and a future 4 are out"


def test_pip_finds_nothing_to_install_where_the_pins_are_installed():
    """Where everything is present (as on a Databricks ML runtime with a recent MLflow), the line installs nothing."""
    specs = [str(r) for r in _requirements()]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--quiet", "--report", "-", *specs],
        capture_output=True, text=True, timeout=120, check=True,
    )
    report = json.loads(done.stdout)
    assert report["install"] == [], [item["metadata"]["name"] for item in report["install"]]


def _lesson_imports() -> set[str]:
    """Top-level modules the solutions import, with the kit modules they import (as ``coursekit.x``)."""
    found = set()
    for path in sorted((REPO / "solutions").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                for match in re.finditer(r"^\s*(?:from|import)\s+([\w.]+)", "".join(cell["source"]), re.M):
                    found.add(match.group(1))
    return found


def _loaded_modules(imports: list[str]) -> set[str]:
    """Top-level modules a fresh interpreter holds after ``imports`` (without those any interpreter starts with)."""
    probe = (
        "import importlib, json, sys\n"
        f"for name in {imports!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True, cwd=REPO)
    return set(json.loads(done.stdout))


def test_the_line_covers_everything_the_lessons_import():
    loaded = _loaded_modules(sorted(_lesson_imports())) - _loaded_modules([])
    owners = metadata.packages_distributions()
    installed = _closure({r.name for r in _requirements()}) | _closure(DATABRICKS_BRINGS)
    missing = []
    for module in sorted(loaded):
        dists = {canonicalize_name(d) for d in owners.get(module, [])}
        # A namespace package (``google``) has several owners: one of them brought what was imported.
        if dists and not dists & installed:
            missing.append(f"{module} ({', '.join(sorted(dists))})")
    assert missing == [], f"the lessons import these, and neither the %pip line nor Databricks' Spark brings them: {missing}"
    assert {"mlflow", "sklearn", "matplotlib", "ipywidgets", "tqdm", "pyspark"} <= loaded, "the probe imported the lessons"


def test_the_coverage_check_notices_a_package_the_line_lacks():
    """Without tqdm in the line, lesson 4's progress bar would be missing (a check that accepts everything proves nothing)."""
    owners = metadata.packages_distributions()
    without = _closure({r.name for r in _requirements() if r.name != "tqdm"}) | _closure(DATABRICKS_BRINGS)
    assert not {canonicalize_name(d) for d in owners["tqdm"]} & without
