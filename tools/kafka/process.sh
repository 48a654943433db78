# Sourced by kafka.sh and mirror.sh: stopping a JVM they started in a session of its own.
# Needs a `log` function.

# stop_group PID: SIGTERM the process group of PID (or PID alone), SIGKILL after 30 s.
stop_group() {
  local pid="$1"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
      log "still running after 30s, sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
}
