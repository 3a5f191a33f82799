#!/usr/bin/env bash
# Set up everything the course needs, idempotently: checks Java, creates .venv,
# installs the pinned packages and the course helper, registers the Jupyter kernel.
# Re-running is fast: packages are reinstalled only when requirements.txt changes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COURSE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
KERNEL_NAME="mlflow-spark-course"
KERNEL_DISPLAY="MLflow + Spark course"
# The installer (not a course package, so not in requirements.txt).
UV_VERSION="0.13.9"

say() { printf '%s\n' "$*"; }
fail() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || fail "Python 3.11+ is needed but '$PYTHON' is not on PATH: install Python 3.11 (or set PYTHON=/path/to/python3.11)."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "Python 3.11+ is needed, found $("$PYTHON" -V 2>&1): install Python 3.11 (or set PYTHON=/path/to/python3.11)."

# Java first: without it nothing else matters. The check prints one line on failure.
PYTHONPATH="$ROOT" "$PYTHON" -m coursekit.java >/dev/null || exit 1

if [ ! -x "$VENV/bin/python" ]; then
  say "Creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.course-installed"
# "bytecode": venvs installed before the step below existed go through it once.
want="$({ cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml"; echo bytecode; } | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  say "Installing pinned packages (the first run takes a minute or more)"
  # uv installs the same pins about three times faster than pip (README, maintainer section). It does not read
  # pip's configuration: where it cannot install (a private index, say), pip installs everything instead.
  if ! { "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" \
         && "$VENV/bin/python" -m uv pip install --quiet --python "$VENV/bin/python" -r "$ROOT/requirements.txt"; }; then
    say "uv could not install the packages: installing them with pip instead"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements.txt"
  fi
  # The course helper is used in place (like an editable install, without a build step).
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  # Write the bytecode of every installed package now (uv writes none unless asked, and skips packages already
  # installed): where PYTHONDONTWRITEBYTECODE is set (this development machine sets it, as many containers do),
  # Python would otherwise compile MLflow, PySpark and pandas again in every kernel and tool it starts (import
  # mlflow, mlflow.spark, pyspark.ml, pandas: 10-12 CPU-s instead of 3.4-3.8). About 10-25 s, at install only.
  "$VENV/bin/python" -m compileall -qq -j 0 "$site" >/dev/null || true
  echo "$ROOT" > "$site/coursekit-course.pth"
  # nbgrader is only our lesson generator: keep its grading UI out of the learners' JupyterLab. These are the
  # files `jupyter server extension disable --sys-prefix` and `jupyter labextension disable --level=sys_prefix`
  # write; writing them here takes no time, the five commands took 30-50 s.
  conf="$VENV/etc/jupyter"
  mkdir -p "$conf/jupyter_server_config.d" "$conf/labconfig"
  for ext in formgrader validate_assignment assignment_list course_list; do
    printf '{"ServerApp": {"jpserver_extensions": {"nbgrader.server_extensions.%s": false}}}\n' "$ext" \
      > "$conf/jupyter_server_config.d/nbgrader.server_extensions.$ext.json"
  done
  printf '{"disabledExtensions": {"@jupyter/nbgrader": true}, "lockedExtensions": {"@jupyter/nbgrader": true}}\n' \
    > "$conf/labconfig/page_config.json"
  echo "$want" > "$stamp"
fi

# Offline: JupyterLab must not offer to fetch news or look for updates.
mkdir -p "$VENV/share/jupyter/lab/settings"
cat > "$VENV/share/jupyter/lab/settings/overrides.json" <<'JSON'
{
  "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}
}
JSON

# MLflow sends usage telemetry unless told not to; the course kernel tells it not to.
# MLFLOW_DISABLE_TELEMETRY=false bash scripts/setup.sh installs a kernel that keeps it on (README "Configuration").
"$VENV/bin/python" -m ipykernel install --sys-prefix --name "$KERNEL_NAME" --display-name "$KERNEL_DISPLAY" \
  --env MLFLOW_DISABLE_TELEMETRY "${MLFLOW_DISABLE_TELEMETRY:-true}" >/dev/null
mkdir -p "${COURSE_DATA_DIR:-$ROOT/.course-data}"
say "Setup complete: kernel '$KERNEL_DISPLAY' in $VENV"
