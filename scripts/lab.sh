#!/usr/bin/env bash
# Set everything up, then start JupyterLab on the lessons with the course kernel.
# Local Spark and a local MLflow store (.course-data/) are the defaults; see README "Configuration".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COURSE_VENV:-$ROOT/.venv}"
PORT="${COURSE_LAB_PORT:-8888}"
LAB_ROOT="${COURSE_LAB_ROOT:-$ROOT/lessons}"

bash "$ROOT/scripts/setup.sh"

if ! "$VENV/bin/python" -m coursekit.ports "$PORT" >/dev/null 2>&1; then
  echo "Port $PORT is busy (another Jupyter?): JupyterLab will take the next free port; set COURSE_LAB_PORT to choose one."
fi

args=(
  --ServerApp.root_dir="$LAB_ROOT"
  --ServerApp.ip=127.0.0.1
  --ServerApp.port="$PORT"
  --MappingKernelManager.default_kernel_name=mlflow-spark-course
  # Offline: never ask the internet for news or updates.
  --LabApp.news_url=None
  --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate
)
# JupyterLab's terminals inherit this PATH: `mlflow`, `python` and `jupyter` there are the course's own.
export PATH="$VENV/bin:$PATH"
# MLflow usage telemetry stays off for anything started from JupyterLab (kernels set it themselves).
export MLFLOW_DISABLE_TELEMETRY="${MLFLOW_DISABLE_TELEMETRY:-true}"

if [ "$(id -u)" = 0 ]; then
  args+=(--allow-root)  # containers and CI run as root
fi
if [ -n "${COURSE_LAB_NO_BROWSER:-}" ]; then
  args+=(--no-browser)
fi
exec "$VENV/bin/jupyter" lab "${args[@]}" "$@"
