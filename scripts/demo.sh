#!/usr/bin/env bash
# `make demo`: local broker + generator + processor, the summary table in a local PostgreSQL
# with its sink and the dashboard, and the live view in the foreground. Ctrl-C stops everything
# this script started (a broker or database that was already running stays up).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT=${KAFKA_PORT:-9092}
LOGS=.kafka/demo
mkdir -p "$LOGS"
export KAFKA_BOOTSTRAP_SERVERS=localhost:$PORT

# The processor's local state belongs to the broker it was built against: a broker started
# here is a new, empty one, so the demo's state starts empty with it.
export STATE_DIR=$LOGS/state
started_broker=no
if ! $PY -m devtools.local_broker status --port "$PORT" >/dev/null 2>&1; then
  rm -rf "$STATE_DIR"
  $PY -m devtools.local_broker up --port "$PORT" || exit 1
  started_broker=yes
fi

# The summary table: a PostgreSQL server of the demo's own, from the machine's binaries.
PG_PORT=${POSTGRES_DEMO_PORT:-55432}
DASHBOARD_PORT=${DASHBOARD_PORT:-8501}
started_postgres=no
if [ ! -e ".postgres/$PG_PORT.datadir" ]; then
  if $PY -m devtools.local_postgres up --port "$PG_PORT"; then
    started_postgres=yes
  else
    echo "no summary table and dashboard: PostgreSQL did not start (see above)"
  fi
fi
export POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=$PG_PORT POSTGRES_PASSWORD=login-stream

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "stopping demo..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  if [ "$started_broker" = yes ]; then $PY -m devtools.local_broker down --port "$PORT"; fi
  if [ "$started_postgres" = yes ]; then $PY -m devtools.local_postgres down --port "$PG_PORT"; fi
}
trap cleanup INT TERM EXIT

$PY -m login_stream.generator >"$LOGS/generator.log" 2>&1 &
pids+=($!)
$PY app.py >"$LOGS/processor.log" 2>&1 &
pids+=($!)
$PY -m login_stream.sink >"$LOGS/sink.log" 2>&1 &
pids+=($!)
$PY -m login_stream.dashboard --port "$DASHBOARD_PORT" >"$LOGS/dashboard.log" 2>&1 &
pids+=($!)
echo "generator, processor and sink started (logs in $LOGS/)"
echo "dashboard: http://localhost:$DASHBOARD_PORT   (SQL: psql -h 127.0.0.1 -p $PG_PORT -U login_stream login_stream)"
$PY -m login_stream.live_view
