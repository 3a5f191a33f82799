#!/usr/bin/env bash
# Set everything up, then run the whole test suite: unit tests, notebook execution
# (coursekit.engine, papermill underneath), stored-output validation (nbval) and the lessons-in-sync check.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k lesson01`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COURSE_VENV:-$ROOT/.venv}"

bash "$ROOT/scripts/setup.sh"

# The MLflow UI browser test drives Debian's Chromium; Playwright never downloads one.
if [ -z "${COURSE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Chromium for the browser tests (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "ERROR: the browser tests need Chromium: sudo apt-get install chromium (or set COURSE_CHROMIUM=/path/to/chrome)." >&2
    exit 1
  fi
fi

cd "$ROOT"
# Every test run gets its own MLflow store and Spark scratch space.
COURSE_DATA_DIR="$(mktemp -d -t course-test-XXXXXX)"
export COURSE_DATA_DIR
trap 'rm -rf "$COURSE_DATA_DIR"' EXIT
unset MLFLOW_TRACKING_URI SPARK_REMOTE
# The suite runs many short-lived kernels, often two at once: the quick JIT suits them (coursekit/spark.py).
export COURSE_SPARK_QUICK_JIT="${COURSE_SPARK_QUICK_JIT:-1}"

# One pytest session. nbval runs inside it (tests/test_notebooks.py), in a pytest session of its own with a
# clean environment: it executes every solution once against one fresh store and compares the stored outputs;
# the course engine then runs each solution again against that store. Every step of a second or more is
# listed at the end (--durations), so the suite's time per test file can be followed from any CI log.
"$VENV/bin/python" -m pytest tests -p no:cacheprovider --durations=0 --durations-min=1.0 "$@"
