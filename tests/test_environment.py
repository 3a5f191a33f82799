"""The pip pins, the conda file and the installed packages all describe the same versions."""

from __future__ import annotations

import importlib.util
import re
import sysconfig
from importlib.metadata import version
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)$")
REQUIRED = {"jupyterlab", "mlflow", "pyspark", "ipywidgets", "papermill", "nbval", "matplotlib", "pandas"}


def _pins(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"not an exact pin: {raw!r}"
        pins[match.group(1).lower()] = match.group(2)
    return pins


def requirements_pins() -> dict[str, str]:
    return _pins((REPO / "requirements.txt").read_text().splitlines())


def conda_pip_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1
    return _pins(pip_sections[0])


def test_environment_yml_matches_requirements_exactly() -> None:
    assert conda_pip_pins() == requirements_pins()


def test_course_packages_are_pinned_at_the_taught_majors() -> None:
    pins = requirements_pins()
    assert REQUIRED <= set(pins)
    assert pins["mlflow"].startswith("3.")
    assert pins["pyspark"].startswith("4.")
    assert pins["jupyterlab"].startswith("4.")
    assert pins["ipywidgets"].startswith("8.")
    # PySpark 4.3 warns that pandas 3 is not fully supported yet.
    assert pins["pandas"].startswith("2.")


def test_conda_environment_brings_java_17_and_python_311() -> None:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    plain = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "openjdk=17" in plain
    assert "python=3.11" in plain


def test_installed_versions_are_the_pinned_ones() -> None:
    installed = {name: version(name) for name in requirements_pins()}
    assert installed == requirements_pins()


def test_nbgrader_stays_out_of_the_learners_jupyterlab() -> None:
    """nbgrader only generates the lessons: scripts/setup.sh switches off its server extensions and its lab
    extension, as Jupyter itself reads the venv's configuration."""
    import sys

    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.extension.config import ExtensionConfigManager
    from jupyterlab_server.config import get_page_config

    assert sys.prefix != sys.base_prefix  # the course's venv
    enabled = ExtensionConfigManager(read_config_path=jupyter_config_path()).get_jpserver_extensions()
    nbgrader = {name: on for name, on in enabled.items() if name.startswith("nbgrader")}
    assert nbgrader and not any(nbgrader.values()), nbgrader
    assert "jupyterlab" in enabled and enabled["jupyterlab"]
    page = get_page_config([str(Path(sys.prefix) / "share" / "jupyter" / "labextensions")])
    assert "@jupyter/nbgrader" in page["disabledExtensions"]


def test_the_big_packages_were_compiled_at_install() -> None:
    """scripts/setup.sh writes the bytecode at install: where PYTHONDONTWRITEBYTECODE is set (as on this development
    machine), every kernel would otherwise compile MLflow, PySpark and pandas again as it imports them."""
    site = Path(sysconfig.get_paths()["purelib"])
    for package in ("mlflow", "pyspark", "pandas", "sqlalchemy", "nbformat", "ipykernel"):
        sources = list((site / package).rglob("*.py"))
        assert sources, package
        missing = [s for s in sources if not Path(importlib.util.cache_from_source(str(s))).is_file()]
        assert len(missing) <= len(sources) // 100, (package, len(missing), len(sources), missing[:5],
                                                     "rm .venv/.course-installed && bash scripts/setup.sh")
