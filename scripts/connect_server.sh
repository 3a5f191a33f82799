#!/usr/bin/env bash
# A local Spark Connect server for running the lessons in Spark Connect mode (README "Configuration").
#   bash scripts/connect_server.sh start    # prints the SPARK_REMOTE to export, once it listens
#   bash scripts/connect_server.sh status   # exit 0 when it listens
#   bash scripts/connect_server.sh stop
# Environment (defaults): COURSE_CONNECT_PORT (15002), COURSE_CONNECT_DIR (<repo>/.course-data/connect: log and pid
# files), COURSE_CONNECT_WAIT (60 s), COURSE_SPARK_MASTER (local[2]), COURSE_DRIVER_MEMORY (2g), COURSE_VENV (.venv).
# The server binds 127.0.0.1 only, and uses the PySpark of the course's virtual environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COURSE_VENV:-$ROOT/.venv}"
PORT="${COURSE_CONNECT_PORT:-15002}"
STATE_DIR="${COURSE_CONNECT_DIR:-$ROOT/.course-data/connect}"
WAIT="${COURSE_CONNECT_WAIT:-60}"
MASTER="${COURSE_SPARK_MASTER:-local[2]}"
MEMORY="${COURSE_DRIVER_MEMORY:-2g}"

fail() { echo "ERROR: $*" >&2; exit 1; }

[ -x "$VENV/bin/python" ] || fail "no virtual environment at $VENV: run bash scripts/setup.sh first"
SPARK_HOME="$("$VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null)" \
  || fail "PySpark is not installed in $VENV: run bash scripts/setup.sh first"
export SPARK_HOME SPARK_LOG_DIR="$STATE_DIR/log" SPARK_PID_DIR="$STATE_DIR/pid"
# The daemon's identity: two servers from one folder would share a pid file, so a port gets its own.
export SPARK_IDENT_STRING="course-$PORT"

listening() { ! "$VENV/bin/python" -m coursekit.ports "$PORT" >/dev/null 2>&1; }
pid_file() { ls "$SPARK_PID_DIR"/spark-course-"$PORT"-org.apache.spark.sql.connect.service.SparkConnectServer-*.pid 2>/dev/null | head -n 1; }
running() { local f; f="$(pid_file)"; [ -n "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then
      listening && { echo "Spark Connect already listens: SPARK_REMOTE=sc://127.0.0.1:$PORT"; exit 0; }
    elif listening; then
      fail "port $PORT on 127.0.0.1 is taken by another program: set COURSE_CONNECT_PORT to a free port"
    fi
    if ! running; then
      command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ] || fail "Spark Connect needs Java 17+: none on PATH and JAVA_HOME is unset"
      mkdir -p "$SPARK_LOG_DIR" "$SPARK_PID_DIR"
      bash "$SPARK_HOME/sbin/start-connect-server.sh" --master "$MASTER" --driver-memory "$MEMORY" \
        --conf spark.connect.grpc.binding.address=127.0.0.1 --conf "spark.connect.grpc.binding.port=$PORT" \
        --conf spark.ui.enabled=false --conf spark.sql.shuffle.partitions=4 --conf spark.default.parallelism=2 \
        --conf spark.sql.session.timeZone=UTC --conf "spark.driver.extraJavaOptions=-Dlog4j.configurationFile=file:$ROOT/coursekit/log4j2.properties ${COURSE_CONNECT_JAVA_OPTIONS:-}" \
        >/dev/null 2>&1 || fail "start-connect-server.sh failed: see $SPARK_LOG_DIR"
    fi
    for _ in $(seq $((WAIT * 4))); do
      if listening; then echo "Spark Connect listens: export SPARK_REMOTE=sc://127.0.0.1:$PORT"; exit 0; fi
      running || fail "the Spark Connect server stopped while starting: see $(ls -t "$SPARK_LOG_DIR"/*.out 2>/dev/null | head -n 1)"
      sleep 0.25
    done
    fail "Spark Connect did not listen on 127.0.0.1:$PORT within $WAIT s: see $SPARK_LOG_DIR"
    ;;
  stop)
    if ! running; then echo "Spark Connect is not running (port $PORT)"; exit 0; fi
    bash "$SPARK_HOME/sbin/stop-connect-server.sh" >/dev/null 2>&1 || fail "stop-connect-server.sh failed: see $SPARK_LOG_DIR"
    for _ in $(seq 80); do running || { echo "Spark Connect stopped (port $PORT)"; exit 0; }; sleep 0.25; done
    fail "the Spark Connect server on port $PORT did not stop within 20 s (pid file $(pid_file))"
    ;;
  status)
    if running && listening; then echo "Spark Connect listens: SPARK_REMOTE=sc://127.0.0.1:$PORT"; exit 0; fi
    if running; then echo "Spark Connect is starting or stuck (port $PORT not listening; log in $SPARK_LOG_DIR)"; exit 1; fi
    echo "Spark Connect is not running (port $PORT)"; exit 1
    ;;
  *)
    fail "usage: bash scripts/connect_server.sh start|stop|status"
    ;;
esac
