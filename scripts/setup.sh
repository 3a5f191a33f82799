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
want="$(cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  say "Installing pinned packages (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements.txt"
  # The course helper is used in place (like an editable install, without a build step).
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$ROOT" > "$site/coursekit-course.pth"
  # nbgrader is only our lesson generator: keep its grading UI out of the learners' JupyterLab.
  for ext in formgrader validate_assignment assignment_list course_list; do
    "$VENV/bin/jupyter" server extension disable --sys-prefix "nbgrader.server_extensions.$ext" >/dev/null 2>&1
  done
  "$VENV/bin/jupyter" labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1
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
