"""coursekit.class_archive: a class-data archive the local driver JVM really maps, built only when complete."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coursekit import class_archive
from coursekit.errors import CourseSetupError

# A driver started the course's way reports what it mapped and that it works.
_PROBE = """
import json
from coursekit.spark import get_spark
spark = get_spark()
pid = spark._jvm.java.lang.ProcessHandle.current().pid()
maps = open(f"/proc/{pid}/maps").read()
print(json.dumps({"options": spark.sparkContext.getConf().get("spark.driver.extraJavaOptions"),
                  "mapped": [line.split()[-1] for line in maps.splitlines() if line.endswith(".jsa")],
                  "rows": spark.range(5).count()}))
"""


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive ``scripts/test.sh`` names (built by ``python -m coursekit.class_archive``, tests/conftest.py);
    when pytest runs without it, one built here the same way."""
    given = os.environ.get("COURSE_SPARK_CLASS_ARCHIVE")
    if given and _wait_for(Path(given)):
        return Path(given)
    path = tmp_path_factory.mktemp("archive") / "classes.jsa"
    result = subprocess.run([sys.executable, "-m", "coursekit.class_archive", str(path)], capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, result.stderr
    assert not path.with_name(path.name + ".partial").exists()
    return path


def _wait_for(archive: Path, timeout: float = 900) -> bool:
    """Whether ``archive`` is there, once whoever holds its build lock (tests/conftest.py) has finished."""
    lock = archive.with_name(archive.name + ".lock")
    deadline = time.monotonic() + timeout
    while not archive.is_file() and lock.exists() and time.monotonic() < deadline:
        with lock.open() as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break  # nobody is building it
            except BlockingIOError:
                time.sleep(2)
    return archive.is_file()


def _probe(tmp_path: Path, archive: Path | None, quick: bool = True) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "MLFLOW_", "SPARK_REMOTE"))}
    env |= {"COURSE_DATA_DIR": str(tmp_path), "COURSE_SPARK_QUICK_JIT": "1" if quick else ""}
    if archive is not None:
        env["COURSE_SPARK_CLASS_ARCHIVE"] = str(archive)
    result = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.notebook
def test_a_driver_started_with_the_setting_maps_the_archive(archive, tmp_path):
    seen = _probe(tmp_path, archive)
    assert seen["rows"] == 5
    assert str(archive) in seen["mapped"]  # on top of the JDK's own base archive
    assert f"-XX:SharedArchiveFile={archive}" in seen["options"].split()
    assert "-XX:+UseSerialGC" in seen["options"].split()


@pytest.mark.notebook
def test_without_the_setting_the_driver_maps_no_course_archive(archive, tmp_path):
    seen = _probe(tmp_path, None, quick=False)
    assert seen["rows"] == 5
    assert str(archive) not in seen["mapped"]
    assert "SharedArchiveFile" not in seen["options"] and "UseSerialGC" not in seen["options"]


def test_a_workload_that_fails_leaves_no_file_and_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")  # no java: the child stops before any JVM starts
    monkeypatch.delenv("JAVA_HOME", raising=False)
    target = tmp_path / "classes.jsa"
    with pytest.raises(CourseSetupError, match=r"^Could not build the Spark class archive \(.*Java.*\); run without "
                                               r"COURSE_SPARK_CLASS_ARCHIVE\.$"):
        class_archive.build(target)
    assert not target.exists() and not list(tmp_path.iterdir())
    assert class_archive.main([str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: Could not build the Spark class archive") and err.count("\n") == 1
