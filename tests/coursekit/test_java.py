"""coursekit.java: reading `java -version` and refusing a missing or too-old Java."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from coursekit import java
from coursekit.errors import CourseSetupError, JavaMissingError

OPENJDK_17 = """openjdk version "17.0.12" 2024-07-16
OpenJDK Runtime Environment (build 17.0.12+7-Debian-2deb12u1)
OpenJDK 64-Bit Server VM (build 17.0.12+7-Debian-2deb12u1, mixed mode, sharing)
"""
TEMURIN_21 = """openjdk version "21.0.4" 2024-07-16 LTS
OpenJDK Runtime Environment Temurin-21.0.4+7 (build 21.0.4+7-LTS)
OpenJDK 64-Bit Server VM Temurin-21.0.4+7 (build 21.0.4+7-LTS, mixed mode, sharing)
"""
ORACLE_8 = """java version "1.8.0_392"
Java(TM) SE Runtime Environment (build 1.8.0_392-b08)
Java HotSpot(TM) 64-Bit Server VM (build 25.392-b08, mixed mode)
"""


@pytest.mark.parametrize(
    ("output", "major"),
    [
        (OPENJDK_17, 17),
        (TEMURIN_21, 21),
        (ORACLE_8, 8),
        ('openjdk version "11.0.2" 2019-01-15', 11),
        ('openjdk version "22" 2024-03-19', 22),
        ('Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version "17.0.2" 2022-01-18', 17),
        ("", None),
        ("bash: java: command not found", None),
        ("Error: could not open `/usr/lib/jvm/lib/jvm.cfg'", None),
    ],
)
def test_parse_java_major(output, major):
    assert java.parse_java_major(output) == major


def fake_java_home(root: Path, version: str) -> Path:
    """A JAVA_HOME whose bin/java prints ``version`` the way Java does: on stderr."""
    binary = root / "bin" / "java"
    binary.parent.mkdir(parents=True)
    binary.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2019-01-15' >&2\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return root


def assert_one_line_fix(error: JavaMissingError):
    message = str(error)
    assert "\n" not in message
    assert "Java 17" in message and "JAVA_HOME" in message
    assert isinstance(error, CourseSetupError)


def test_java_home_without_java(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert java.java_executable() is None
    with pytest.raises(JavaMissingError) as caught:
        java.require_java()
    assert_one_line_fix(caught.value)
    assert "JAVA_HOME points at no java binary" in str(caught.value)


def test_no_java_on_path(tmp_path, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaMissingError) as caught:
        java.require_java()
    assert_one_line_fix(caught.value)
    assert "no java on PATH" in str(caught.value)


def test_java_too_old(tmp_path, monkeypatch):
    home = fake_java_home(tmp_path, "11.0.2")
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert java.java_executable() == str(home / "bin" / "java")
    with pytest.raises(JavaMissingError) as caught:
        java.require_java()
    assert_one_line_fix(caught.value)
    assert "is Java 11" in str(caught.value)


def test_java_new_enough(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(fake_java_home(tmp_path, "21.0.4")))
    assert java.require_java() == 21
    assert java.require_java(minimum=21) == 21


def test_java_that_does_not_run(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "java").write_text("not executable")  # no x bit: OSError on launch
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(JavaMissingError) as caught:
        java.require_java()
    assert_one_line_fix(caught.value)
    assert "did not run" in str(caught.value)


def test_main_reports_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JAVA_HOME", str(fake_java_home(tmp_path, "11.0.2")))
    assert java.main() == 1
    captured = capsys.readouterr()  # stdout or stderr: the setup script shows both
    lines = (captured.out + captured.err).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ERROR: PySpark 4 needs Java 17+")


def test_main_succeeds_with_java_17(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JAVA_HOME", str(fake_java_home(tmp_path, "17.0.12")))
    assert java.main() == 0
    assert capsys.readouterr().out == "Java 17 found.\n"
