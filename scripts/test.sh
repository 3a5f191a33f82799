#!/usr/bin/env bash
# Set everything up, then run the whole test suite: unit tests, notebook execution
# (coursekit.engine, papermill underneath), stored-output validation (nbval) and the lessons-in-sync check.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k lesson01` or `bash scripts/test.sh tests/test_docs.py`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COURSE_VENV:-$ROOT/.venv}"

# The MLflow UI browser test drives Debian's Chromium; Playwright never downloads one. apt-get installs it while
# scripts/setup.sh installs the Python packages.
chromium_install=""
if [ -z "${COURSE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Chromium for the browser tests (apt-get)"
    (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) &
    chromium_install=$!
  else
    echo "ERROR: the browser tests need Chromium: sudo apt-get install chromium (or set COURSE_CHROMIUM=/path/to/chrome)." >&2
    exit 1
  fi
fi

setup_status=0
bash "$ROOT/scripts/setup.sh" || setup_status=$?
if [ -n "$chromium_install" ] && ! wait "$chromium_install"; then
  echo "ERROR: apt-get could not install Chromium: run sudo apt-get install chromium (or set COURSE_CHROMIUM=/path/to/chrome)." >&2
  exit 1
fi
[ "$setup_status" = 0 ] || exit "$setup_status"

cd "$ROOT"
# Every test run gets its own MLflow store and Spark scratch space.
COURSE_DATA_DIR="$(mktemp -d -t course-test-XXXXXX)"
export COURSE_DATA_DIR
trap 'rm -rf "$COURSE_DATA_DIR"' EXIT
unset MLFLOW_TRACKING_URI SPARK_REMOTE
# The log ends with the CPU time per test file (tests/cpu_usage.py), what a 2-core machine really runs short of.
export COURSE_TEST_CPU="${COURSE_TEST_CPU:-1}"
# The suite runs many short-lived kernels, often two at once: the quick JIT suits them (coursekit/spark.py).
export COURSE_SPARK_QUICK_JIT="${COURSE_SPARK_QUICK_JIT:-1}"

# Every Spark driver the suite starts (about 80) maps its classes from one archive instead of loading them
# (coursekit/class_archive.py): about 5 s less per setup cell. tests/conftest.py builds it in the background when
# it is missing; it is kept in the venv (about 190 MB), named after what it depends on: Java, the pins and the
# archive's workload.
if [ -z "${COURSE_SPARK_CLASS_ARCHIVE:-}" ]; then
  archive_key="$( { "${JAVA_HOME:+$JAVA_HOME/bin/}java" -version 2>&1;
                    cat "$ROOT/requirements.txt" "$ROOT/coursekit/class_archive.py"; } | sha256sum | cut -c1-16)"
  export COURSE_SPARK_CLASS_ARCHIVE="$VENV/share/coursekit/spark-classes-$archive_key.jsa"
fi

# Compile the package once, before the test workers start importing it: the grader (tests/test_answer_key.py)
# reports any file written under coursekit/ while a submission runs, and a bytecode file written meanwhile by
# the other worker's first import would be blamed on that submission.
"$VENV/bin/python" -m compileall -q "$ROOT/coursekit"

# One pytest session. nbval runs inside it (tests/test_notebooks.py), in a pytest session of its own with a
# clean environment: it executes every solution once against one fresh store and compares the stored outputs;
# the grader then runs each solution again, from a copy of that store. Every step of a second or more is
# listed at the end (--durations), so the suite's time per test file can be followed from any CI log.
# Two pytest-xdist workers (COURSE_TEST_WORKERS; 0 runs in this process). A notebook alone keeps about 1.1 of
# 2 cores busy. Three workers were faster on 2 cores (2167 s instead of 2417 s) but not reliable: in one of two runs
# the CPU was so busy that the class tracking server and lesson 4's MLflow UI did not answer within 90 s.
# --dist loadscope keeps each test file on one worker, so a file's shared executions run once.
# --no-loadscope-reorder keeps the files in the order tests/conftest.py gives them, longest first: by default
# xdist starts with the files that hold the most tests, and the few-test notebook files then ran last, one
# worker alone at the end.
# Test files or folders among the arguments replace "tests": `bash scripts/test.sh tests/test_grading.py`.
where=(tests)
for arg in "$@"; do
  if [ "${arg#-}" = "$arg" ] && [ -e "${arg%%::*}" ]; then where=(); break; fi
done
"$VENV/bin/python" -m pytest "${where[@]}" -p no:cacheprovider -n "${COURSE_TEST_WORKERS:-2}" --dist loadscope --no-loadscope-reorder \
  --durations=0 --durations-min=1.0 "$@"
