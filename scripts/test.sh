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

# Every Spark driver the suite starts (about 80) maps its classes from one archive instead of loading them
# (coursekit/class_archive.py): about 5 s less per setup cell. Built once per test run.
if [ -z "${COURSE_SPARK_CLASS_ARCHIVE:-}" ]; then
  export COURSE_SPARK_CLASS_ARCHIVE="$COURSE_DATA_DIR/spark-classes.jsa"
  "$VENV/bin/python" -m coursekit.class_archive "$COURSE_SPARK_CLASS_ARCHIVE"
fi

# Compile the package once, before two test workers start importing it: the grader (tests/test_answer_key.py)
# reports any file written under coursekit/ while a submission runs, and a bytecode file written meanwhile by
# the other worker's first import would be blamed on that submission.
"$VENV/bin/python" -m compileall -q "$ROOT/coursekit"

# One pytest session. nbval runs inside it (tests/test_notebooks.py), in a pytest session of its own with a
# clean environment: it executes every solution once against one fresh store and compares the stored outputs;
# the course engine then runs each solution again against that store. Every step of a second or more is
# listed at the end (--durations), so the suite's time per test file can be followed from any CI log.
# Two pytest-xdist workers (COURSE_TEST_WORKERS; 0 runs in this process): a notebook keeps about one core
# busy, so two at once finish nearly twice as many per minute on 2 cores, and four would be slower.
# --dist loadscope keeps each test file on one worker, so a file's shared executions run once.
"$VENV/bin/python" -m pytest tests -p no:cacheprovider -n "${COURSE_TEST_WORKERS:-2}" --dist loadscope \
  --durations=0 --durations-min=1.0 "$@"
