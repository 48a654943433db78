#!/usr/bin/env bash
# Start N Faust workers of the same app (one consumer group) on ports 6066, 6067, ...
# each with its own state dir ./data/worker-<port> and log .local/logs/worker-<port>.log.
# Ctrl-C stops them all, and the local broker if this script started it.
#
#   bash tools/workers.sh 3       (or: make workers N=3)
set -euo pipefail
set -m  # children get their own process groups: Ctrl-C reaches only this script
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

N="${1:-3}"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 N   (number of workers, >= 1)" >&2; exit 2; }
FIRST_PORT="${WORKERS_FIRST_PORT:-6066}"
PIDS=()
PORTS=()

cleanup() {
  trap - EXIT INT TERM
  local i
  # Signal all first so they leave the group together, then wait for each.
  for i in "${!PIDS[@]}"; do kill -TERM -- "-${PIDS[$i]}" 2>/dev/null || true; done
  for i in "${!PIDS[@]}"; do stop_pid "${PIDS[$i]}" "worker ${PORTS[$i]}"; done
  stop_kafka_if_started
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for ((i = 0; i < N; i++)); do fail_if_port_busy $((FIRST_PORT + i)); done
ensure_venv
ensure_kafka
create_topics
mkdir -p "$LOG_DIR"

for ((i = 0; i < N; i++)); do
  port=$((FIRST_PORT + i))
  log="$LOG_DIR/worker-$port.log"
  say "starting worker on port $port (log: $log)"
  WORKER_WEB_PORT=$port WORKER_DATA_DIR="./data/worker-$port" \
    "$VENV_BIN/faust" -A app.main worker -l info >"$log" 2>&1 </dev/null &
  PIDS+=("$!")
  PORTS+=("$port")
done

for i in "${!PIDS[@]}"; do
  wait_http "http://127.0.0.1:${PORTS[$i]}/health" "${PIDS[$i]}" "$LOG_DIR/worker-${PORTS[$i]}.log"
done

echo
for port in "${PORTS[@]}"; do
  echo "  worker $port: http://127.0.0.1:$port/   log: $LOG_DIR/worker-$port.log"
done
echo
echo "  Press Ctrl-C to stop all workers."
echo

status=0
wait -n "${PIDS[@]}" || status=$?
say "a worker exited (status $status); stopping the others"
for i in "${!PIDS[@]}"; do
  if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
    say "last lines of $LOG_DIR/worker-${PORTS[$i]}.log:"
    tail -n 20 "$LOG_DIR/worker-${PORTS[$i]}.log" >&2
  fi
done
exit 1
