#!/usr/bin/env bash
# `make demo`: local broker + generator + processor, with the live view in the foreground.
# Ctrl-C stops everything this script started (a broker that was already running stays up).
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

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "stopping demo..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  if [ "$started_broker" = yes ]; then $PY -m devtools.local_broker down --port "$PORT"; fi
}
trap cleanup INT TERM EXIT

$PY -m login_stream.generator >"$LOGS/generator.log" 2>&1 &
pids+=($!)
$PY app.py >"$LOGS/processor.log" 2>&1 &
pids+=($!)
echo "generator and processor started (logs in $LOGS/)"
$PY -m login_stream.live_view
