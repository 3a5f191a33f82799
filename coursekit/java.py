"""Find the Java runtime PySpark will use and make sure it is new enough."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from coursekit.errors import JavaMissingError

MINIMUM_JAVA = 17
FIX = (
    "install Java 17 or 21 (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; "
    "macOS: brew install openjdk@17) or point JAVA_HOME at one"
)

_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def java_executable() -> str | None:
    """Return the ``java`` binary Spark will launch: ``$JAVA_HOME/bin/java`` first, then PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.exists() else None
    return shutil.which("java")


def parse_java_major(version_output: str) -> int | None:
    """Extract the major version from ``java -version`` output (``1.8`` counts as 8)."""
    match = _VERSION.search(version_output)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        return int(match.group(2))
    return major


def require_java(minimum: int = MINIMUM_JAVA) -> int:
    """Return the Java major version, or raise :class:`JavaMissingError` with a one-line fix."""
    executable = java_executable()
    if executable is None:
        where = "JAVA_HOME points at no java binary" if os.environ.get("JAVA_HOME") else "no java on PATH"
        raise JavaMissingError(f"PySpark 4 needs Java {minimum}+, but {where}: {FIX}.")
    try:
        done = subprocess.run([executable, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaMissingError(f"PySpark 4 needs Java {minimum}+, but {executable} did not run ({exc}): {FIX}.") from exc
    major = parse_java_major(done.stderr + done.stdout)
    if major is None or major < minimum:
        found = f"Java {major}" if major else "an unreadable Java version"
        raise JavaMissingError(f"PySpark 4 needs Java {minimum}+, but {executable} is {found}: {FIX}.")
    return major


def main() -> int:
    """Command-line check used by the setup script: prints one line, exits 1 on failure."""
    try:
        major = require_java()
    except JavaMissingError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)  # noqa: T201 - CLI output
        return 1
    print(f"Java {major} found.")  # noqa: T201 - CLI output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
