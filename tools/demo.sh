#!/usr/bin/env bash
# The whole pipeline on one machine: local Kafka broker, topics, one Faust worker
# with the dashboard on http://127.0.0.1:6066/, and the view-event generator.
# Ctrl-C stops the generator, the worker, and the broker if this script started it.
#
#   bash tools/demo.sh            (or: make demo)
#   DEMO_RATE=1000 DEMO_PORT=6070 bash tools/demo.sh
set -euo pipefail
set -m  # children get their own process groups: Ctrl-C reaches only this script
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="${DEMO_PORT:-6066}"
RATE="${DEMO_RATE:-200}"
WORKER_LOG="$LOG_DIR/worker-$PORT.log"
GENERATOR_LOG="$LOG_DIR/generator.log"
WORKER_PID=""
GENERATOR_PID=""

cleanup() {
  trap - EXIT INT TERM
  stop_pid "$GENERATOR_PID" generator
  stop_pid "$WORKER_PID" worker
  stop_kafka_if_started
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail_if_port_busy "$PORT"
ensure_venv
ensure_kafka
create_topics
mkdir -p "$LOG_DIR"

say "starting worker on port $PORT (log: $WORKER_LOG)"
WORKER_WEB_PORT=$PORT WORKER_DATA_DIR="./data/worker-$PORT" \
  "$VENV_BIN/faust" -A app.main worker -l info >"$WORKER_LOG" 2>&1 </dev/null &
WORKER_PID=$!

say "starting generator at $RATE events/s (log: $GENERATOR_LOG)"
"$VENV_BIN/python" -m app.generator --rate "$RATE" >"$GENERATOR_LOG" 2>&1 </dev/null &
GENERATOR_PID=$!

wait_http "http://127.0.0.1:$PORT/health" "$WORKER_PID" "$WORKER_LOG"

cat <<EOF

  Dashboard:  http://127.0.0.1:$PORT/
  Health:     http://127.0.0.1:$PORT/health
  Logs:       $WORKER_LOG
              $GENERATOR_LOG
              $REPO_ROOT/.local/kafka/logs/server.log (broker)

  Press Ctrl-C to stop.

EOF

# Run until Ctrl-C, or until the worker or the generator dies.
status=0
wait -n "$WORKER_PID" "$GENERATOR_PID" || status=$?
if kill -0 "$WORKER_PID" 2>/dev/null; then
  say "the generator exited (status $status); last lines of $GENERATOR_LOG:"
  tail -n 20 "$GENERATOR_LOG" >&2
else
  say "the worker exited (status $status); last lines of $WORKER_LOG:"
  tail -n 20 "$WORKER_LOG" >&2
fi
exit 1
