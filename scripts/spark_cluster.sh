#!/usr/bin/env bash
# A one-host Spark standalone cluster (one master, one worker) from the course's pinned pyspark,
# bound to 127.0.0.1 only. Point the course at it with the printed COURSE_SPARK_MASTER.
#
#   bash scripts/spark_cluster.sh start    # prints: export COURSE_SPARK_MASTER=spark://127.0.0.1:7077
#   bash scripts/spark_cluster.sh status
#   bash scripts/spark_cluster.sh stop     # stops the worker, its executors and the master
#
# Environment (defaults in brackets):
#   COURSE_SPARK_MASTER_PORT [7077]   COURSE_SPARK_MASTER_WEBUI_PORT [8080]   COURSE_SPARK_WORKER_WEBUI_PORT [8081]
#   COURSE_SPARK_WORKER_PORT [0: any free port]   COURSE_SPARK_WORKER_CORES [1]   COURSE_SPARK_WORKER_MEMORY [2g]
#   COURSE_SPARK_CLUSTER_DIR [${COURSE_DATA_DIR:-.course-data}/spark-cluster]: pid files, logs, the worker's work dir
#   COURSE_SPARK_CLUSTER_TIMEOUT [60]: seconds `start` waits for the master and the worker's registration
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COURSE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
HOST=127.0.0.1
MASTER_PORT="${COURSE_SPARK_MASTER_PORT:-7077}"
MASTER_WEBUI_PORT="${COURSE_SPARK_MASTER_WEBUI_PORT:-8080}"
WORKER_WEBUI_PORT="${COURSE_SPARK_WORKER_WEBUI_PORT:-8081}"
WORKER_PORT="${COURSE_SPARK_WORKER_PORT:-0}"
WORKER_CORES="${COURSE_SPARK_WORKER_CORES:-1}"
WORKER_MEMORY="${COURSE_SPARK_WORKER_MEMORY:-2g}"
CLUSTER_DIR="${COURSE_SPARK_CLUSTER_DIR:-${COURSE_DATA_DIR:-$ROOT/.course-data}/spark-cluster}"
TIMEOUT="${COURSE_SPARK_CLUSTER_TIMEOUT:-60}"
MASTER_CLASS=org.apache.spark.deploy.master.Master
WORKER_CLASS=org.apache.spark.deploy.worker.Worker
MASTER_URL="spark://$HOST:$MASTER_PORT"
STATUS_URL="http://$HOST:$MASTER_WEBUI_PORT/json/"

fail() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

[ -x "$PY" ] || fail "no course virtual environment at $VENV: run bash scripts/setup.sh first (or set COURSE_VENV)."
mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"

# spark-daemon.sh names its pid files after SPARK_IDENT_STRING, the command and the instance number.
export SPARK_IDENT_STRING=course SPARK_PID_DIR="$CLUSTER_DIR" SPARK_LOG_DIR="$CLUSTER_DIR/logs"
pid_file() { printf '%s/spark-course-%s-1.pid' "$CLUSTER_DIR" "$1"; }

# The pid of a running daemon (master or worker), or nothing.
running_pid() {
  local file pid
  file="$(pid_file "$1")"
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  if [[ "$(ps -p "$pid" -o comm= 2>/dev/null)" =~ java ]]; then printf '%s' "$pid"; fi
}

# Number of ALIVE workers on the master's status page; nothing when the page does not answer.
alive_workers() {
  "$PY" - "$STATUS_URL" <<'PYTHON' 2>/dev/null || true
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as reply:
    status = json.load(reply)
print(sum(1 for w in status.get("workers", []) if w.get("state") == "ALIVE"))
PYTHON
}

# Every descendant of a process (the worker's executors), deepest last.
descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    printf '%s\n' "$child"
    descendants "$child"
  done
}

log_tail() { tail -n 5 "$SPARK_LOG_DIR"/spark-course-"$1"-1-*.out 2>/dev/null | sed 's/^/  /' >&2 || true; }

stop_cluster() {
  local pids=() alive=() pid name worker master
  worker="$(running_pid "$WORKER_CLASS")"
  master="$(running_pid "$MASTER_CLASS")"
  if [ -z "$worker$master" ]; then
    rm -f "$(pid_file "$WORKER_CLASS")" "$(pid_file "$MASTER_CLASS")"
    echo "No Spark cluster is running from $CLUSTER_DIR: nothing to stop."
    return 0
  fi
  # Executors are the worker's children; they go with it, and are killed below if they do not.
  [ -n "$worker" ] && mapfile -t pids < <(descendants "$worker")
  for name in "$WORKER_CLASS" "$MASTER_CLASS"; do
    pid="$(running_pid "$name")"
    [ -n "$pid" ] && pids+=("$pid") && kill "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 50); do
    alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    [ "${#alive[@]}" -eq 0 ] && break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -f "$(pid_file "$WORKER_CLASS")" "$(pid_file "$MASTER_CLASS")"
  echo "Spark cluster stopped (master $MASTER_URL)."
}

# Poll the master's status page until it reports `want` ALIVE workers ("": until it answers at all).
# Stops what was started and fails with one line when a daemon died or `TIMEOUT` passed.
wait_for() {
  local want="$1" message="$2" started="$3" workers name
  while true; do
    workers="$(alive_workers)"
    if [ -n "$workers" ] && { [ -z "$want" ] || [ "$workers" = "$want" ]; }; then return 0; fi
    for name in "$MASTER_CLASS" ${want:+"$WORKER_CLASS"}; do
      # Any process counts while it starts (spark-class is bash until it execs java).
      if [ -f "$(pid_file "$name")" ] && ! kill -0 "$(cat "$(pid_file "$name")")" 2>/dev/null; then
        wait
        log_tail "$name"
        stop_cluster >/dev/null
        fail "the Spark ${name##*.} did not start (port taken or Java failed); its log is in $SPARK_LOG_DIR."
      fi
    done
    if [ $((SECONDS - started)) -ge "$TIMEOUT" ]; then
      wait
      stop_cluster >/dev/null
      fail "$message; logs are in $SPARK_LOG_DIR."
    fi
    sleep 0.2
  done
}

start_cluster() {
  if [ -n "$(running_pid "$MASTER_CLASS")" ] && [ -n "$(running_pid "$WORKER_CLASS")" ]; then
    echo "Spark cluster already running: export COURSE_SPARK_MASTER=$MASTER_URL"
    return 0
  fi
  [ -z "$(running_pid "$MASTER_CLASS")$(running_pid "$WORKER_CLASS")" ] \
    || fail "half a Spark cluster is running from $CLUSTER_DIR: run bash scripts/spark_cluster.sh stop first."
  rm -f "$(pid_file "$MASTER_CLASS")" "$(pid_file "$WORKER_CLASS")"  # stale ones, from a crash
  # Java: one line on failure (the same check as setup.sh).
  "$PY" -m coursekit.java >/dev/null || exit 1
  local port variable
  for variable in MASTER_PORT MASTER_WEBUI_PORT WORKER_WEBUI_PORT WORKER_PORT; do
    port="${!variable}"
    [ "$port" = 0 ] && continue
    "$PY" -m coursekit.ports "$port" \
      || fail "port $port on $HOST is busy: stop what listens there or set COURSE_SPARK_$variable to a free port."
  done

  SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
  export SPARK_HOME
  # Daemons, their web UIs and the executors bind 127.0.0.1 only; executors run the course's Python.
  export SPARK_LOCAL_IP="$HOST" PYSPARK_PYTHON="$PY" SPARK_LOCAL_DIRS="$CLUSTER_DIR/tmp"
  mkdir -p "$SPARK_LOCAL_DIRS" "$CLUSTER_DIR/work"
  # No REST submission server: it would take port 6066 and accept jobs from anyone on this host.
  export SPARK_MASTER_OPTS="${SPARK_MASTER_OPTS:-} -Dspark.master.rest.enabled=false"
  local daemon="$SPARK_HOME/sbin/spark-daemon.sh" started=$SECONDS
  # spark-daemon.sh sleeps ~2.5 s after each launch; it runs in the background while we poll the master.
  "$daemon" start "$MASTER_CLASS" 1 --host "$HOST" --port "$MASTER_PORT" --webui-port "$MASTER_WEBUI_PORT" >/dev/null &
  wait_for "" "the Spark master did not answer on $STATUS_URL within ${TIMEOUT}s" "$started"
  "$daemon" start "$WORKER_CLASS" 1 --host "$HOST" --port "$WORKER_PORT" --webui-port "$WORKER_WEBUI_PORT" \
    --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" --work-dir "$CLUSTER_DIR/work" "$MASTER_URL" >/dev/null &
  # Up means: the master lists the worker as ALIVE.
  wait_for 1 "the Spark worker did not register with $MASTER_URL within ${TIMEOUT}s" "$started"
  wait
  echo "Spark cluster up in $((SECONDS - started))s (master UI http://$HOST:$MASTER_WEBUI_PORT, logs in $SPARK_LOG_DIR)."
  echo "export COURSE_SPARK_MASTER=$MASTER_URL"
}

describe() { if [ -n "$1" ]; then printf 'running (pid %s)' "$1"; else printf 'not running'; fi; }

status_cluster() {
  local master worker workers
  master="$(running_pid "$MASTER_CLASS")"
  worker="$(running_pid "$WORKER_CLASS")"
  if [ -z "$master$worker" ]; then
    echo "Spark cluster not running (no master or worker from $CLUSTER_DIR): bash scripts/spark_cluster.sh start"
    return 3
  fi
  workers="$(alive_workers)"
  echo "Spark master $(describe "$master") at $MASTER_URL; worker $(describe "$worker");" \
       "${workers:-no} ALIVE worker(s) registered (master UI http://$HOST:$MASTER_WEBUI_PORT)."
  [ -n "$master" ] && [ -n "$worker" ] && [ "$workers" = 1 ]
}

case "${1:-}" in
  start) start_cluster ;;
  stop) stop_cluster ;;
  status) status_cluster ;;
  *) echo "usage: bash scripts/spark_cluster.sh start|stop|status" >&2; exit 2 ;;
esac
