# Helpers shared by tools/demo.sh and tools/workers.sh (sourced, not run).
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

VENV_BIN="${VENV_BIN:-$REPO_ROOT/.venv/bin}"  # overridable for testing these scripts
LOG_DIR="$REPO_ROOT/.local/logs"
KAFKA_SH="$REPO_ROOT/tools/kafka/kafka.sh"
KAFKA_PORT="${KAFKA_PORT:-9092}"
export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
STARTED_KAFKA=0

say() { echo "$(basename "$0"): $*" >&2; }

ensure_venv() {
  make --no-print-directory -C "$REPO_ROOT" venv
}

# Start the local broker unless KAFKA_BOOTSTRAP_SERVERS points elsewhere.
# STARTED_KAFKA=1 means we started it, so we are the ones to stop it.
ensure_kafka() {
  case "$KAFKA_BOOTSTRAP_SERVERS" in
    "127.0.0.1:$KAFKA_PORT" | "localhost:$KAFKA_PORT") ;;
    *) say "using Kafka at $KAFKA_BOOTSTRAP_SERVERS"; return 0 ;;
  esac
  if ! bash "$KAFKA_SH" status >/dev/null 2>&1; then
    STARTED_KAFKA=1
    bash "$KAFKA_SH" up
  else
    say "using the local broker that is already running (it will be left running)"
  fi
}

stop_kafka_if_started() {
  if [[ "$STARTED_KAFKA" == 1 ]]; then
    bash "$KAFKA_SH" down || true
    STARTED_KAFKA=0
  fi
}

create_topics() {
  say "creating topics"
  "$VENV_BIN/faust" -A app.main create-topics
}

# fail_if_port_busy PORT: a worker must not share its web port (and /health) with another process.
fail_if_port_busy() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    say "port $1 is already in use: $(ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p')"
    exit 1
  fi
}

# stop_pid PID NAME: SIGTERM its process group, wait up to 20 s for a clean shutdown, then SIGKILL.
stop_pid() {
  local pid="$1" name="$2" i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  say "stopping $name (pid $pid)"
  # The scripts use `set -m`, so each child leads its own process group.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  say "$name did not stop in 20 s, killing it"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

# wait_http URL PID LOGFILE: wait until URL answers 2xx, while PID is alive.
wait_http() {
  local url="$1" pid="$2" logfile="$3" deadline=$((SECONDS + ${HEALTH_TIMEOUT:-90}))
  until python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$url" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "process $pid exited before $url answered; last lines of $logfile:"
      tail -n 30 "$logfile" >&2
      return 1
    fi
    if (( SECONDS >= deadline )); then
      say "$url did not answer in time; last lines of $logfile:"
      tail -n 30 "$logfile" >&2
      return 1
    fi
    sleep 0.5
  done
}
