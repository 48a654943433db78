#!/usr/bin/env bash
# Run a single-node Apache Kafka broker (KRaft, broker+controller in one JVM)
# on this machine, without Docker.
#
#   tools/kafka/kafka.sh up       start it (downloads the jars with Maven on first use)
#   tools/kafka/kafka.sh start    start it without waiting until it answers (a node of a
#                                 cluster answers only once a quorum of controllers runs)
#   tools/kafka/kafka.sh libs     download the jars only
#   tools/kafka/kafka.sh down     stop it
#   tools/kafka/kafka.sh status   "running" / "not running", exit code 0 / 1
#   tools/kafka/kafka.sh wait     wait until the broker answers requests
#   tools/kafka/kafka.sh reset    stop it and wipe its data (all topics are lost)
#
# Environment:
#   KAFKA_HOME_DIR        default <repo>/.local/kafka (libs/, data/, logs/, kafka.pid)
#   KAFKA_PORT            default 9092; the controller listens on KAFKA_PORT+1
#   KAFKA_START_TIMEOUT   seconds to wait for the broker, default 90
#   KAFKA_HEAP_OPTS       default "-Xms256m -Xmx1g"
# A node of a cluster (tools/kafka/cluster.sh sets these):
#   KAFKA_NODE_ID         default 1
#   KAFKA_QUORUM_VOTERS   controller.quorum.voters, default "<node id>@127.0.0.1:<KAFKA_PORT+1>"
#   KAFKA_CLUSTER_ID      cluster id to format a new data dir with (default: a random one)
#   KAFKA_EXTRA_PROPS     a properties file appended to config/kafka/server.properties (its
#                         values win), e.g. config/kafka/cluster.properties
#   KAFKA_LIBS_DIR        where the jars are, default $KAFKA_HOME_DIR/libs
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KAFKA_HOME_DIR="${KAFKA_HOME_DIR:-$REPO_ROOT/.local/kafka}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT=$((KAFKA_PORT + 1))
HOST=127.0.0.1
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
NODE_ID="${KAFKA_NODE_ID:-1}"
QUORUM_VOTERS="${KAFKA_QUORUM_VOTERS:-$NODE_ID@$HOST:$CONTROLLER_PORT}"
EXTRA_PROPS="${KAFKA_EXTRA_PROPS:-}"

LIBS="${KAFKA_LIBS_DIR:-$KAFKA_HOME_DIR/libs}"
DATA="$KAFKA_HOME_DIR/data"
LOGS="$KAFKA_HOME_DIR/logs"
PID_FILE="$KAFKA_HOME_DIR/kafka.pid"
RUNTIME_PROPS="$KAFKA_HOME_DIR/server.properties"
POM="$REPO_ROOT/tools/kafka/pom.xml"
BASE_PROPS="$REPO_ROOT/config/kafka/server.properties"
LOG4J_CONF="$REPO_ROOT/config/kafka/log4j2.properties"
DOWNLOADED=0

log() { echo "kafka: $*" >&2; }
die() { echo "kafka: ERROR: $*" >&2; exit 1; }
# shellcheck source=tools/kafka/process.sh
source "$REPO_ROOT/tools/kafka/process.sh"
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- jars --------------------------------------------------------------------

# The jars are resolved once and re-resolved whenever pom.xml changes.
ensure_libs() {
  local stamp="$LIBS/.pom.sha256" want
  want="$(sha256sum "$POM" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to download Kafka into $LIBS"
  log "downloading Apache Kafka jars with Maven into $LIBS (first start only) ..."
  local t0; t0="$(now)"
  rm -rf "$LIBS"
  mkdir -p "$LIBS"
  mkdir -p "$LOGS"
  if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$LIBS" >"$LOGS/maven.out" 2>&1; then
    tail -n 40 "$LOGS/maven.out" >&2
    die "Maven could not resolve the Kafka jars (full output: $LOGS/maven.out)"
  fi
  echo "$want" > "$stamp"
  DOWNLOADED=1
  log "jars ready in $(elapsed "$t0")s ($(ls "$LIBS"/*.jar | wc -l) files)"
}

java_cp() { java -cp "$LIBS/*" "$@"; }

# --- process and port checks --------------------------------------------------

# Prints the pid of our broker if the pid file points at a live kafka.Kafka JVM.
live_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid; pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# Who holds a TCP port (best effort, for error messages).
port_owner() { ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -1; }

# True once the broker answers an ApiVersions request. Kafka binds its ports
# early but only processes requests once the broker is registered and unfenced,
# so an open port alone does not mean "ready".
broker_answers() {
  port_open "$KAFKA_PORT" || return 1
  python3 - "$HOST" "$KAFKA_PORT" <<'PY' 2>/dev/null
import socket, struct, sys
client = b"kafka.sh"
# ApiVersions v0: api_key=18, api_version=0, correlation_id=7, client_id
req = struct.pack(">hhih", 18, 0, 7, len(client)) + client
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:
    s.sendall(struct.pack(">i", len(req)) + req)
    head = b""
    while len(head) < 10:
        chunk = s.recv(10 - len(head))
        if not chunk:
            sys.exit(1)
        head += chunk
    _size, corr, err = struct.unpack(">iih", head)
    sys.exit(0 if corr == 7 and err == 0 else 1)
PY
}

server_log() { echo "$LOGS/server.log"; }

show_log_tail() {
  local f
  for f in "$(server_log)" "$LOGS/kafka.out"; do
    [[ -s "$f" ]] || continue
    echo "----- last lines of $f (stack frames omitted) -----" >&2
    grep -vE '^[[:space:]]+(at |\.\.\. [0-9]+ more)' "$f" | tail -n 30 >&2
  done
  explain_data_dir_problem
}

# Startup failures caused by the data dir (formatted for another cluster or by a
# newer Kafka, half-written after a crash, ...) are fixed by wiping it.
explain_data_dir_problem() {
  if grep -hE 'ERROR|FATAL|Exception' "$(server_log)" "$LOGS/kafka.out" 2>/dev/null \
      | grep -qE "InconsistentClusterId|[Cc]luster ?[Ii][Dd]|meta\.properties|quorum-state|metadata\.version|forward-compatible|Corrupt|$DATA"; then
    echo "kafka: the data dir $DATA is from another (old) cluster or corrupt." >&2
    echo "kafka: wipe it with: tools/kafka/kafka.sh reset   (all topics are lost)" >&2
  fi
}

# --- subcommands ---------------------------------------------------------------

wait_ready() {
  local pid="${1:-}" deadline=$((SECONDS + START_TIMEOUT))
  until broker_answers; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "the broker process exited during startup"
      rm -f "$PID_FILE"
      show_log_tail
      exit 1
    fi
    if (( SECONDS >= deadline )); then
      log "broker not ready after ${START_TIMEOUT}s"
      show_log_tail
      return 1
    fi
    sleep 0.25
  done
}

write_runtime_props() {
  {
    echo "# Generated by tools/kafka/kafka.sh from config/kafka/server.properties; do not edit."
    grep -vE '^[[:space:]]*(node\.id|listeners|advertised\.listeners|controller\.quorum\.voters|log\.dirs)[[:space:]]*=' "$BASE_PROPS"
    if [[ -n "$EXTRA_PROPS" ]]; then
      echo
      echo "# From $EXTRA_PROPS (later values win)"
      cat "$EXTRA_PROPS"
    fi
    echo
    echo "# Overrides for this machine"
    echo "node.id=$NODE_ID"
    echo "listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT"
    echo "advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT"
    echo "controller.quorum.voters=$QUORUM_VOTERS"
    echo "log.dirs=$DATA"
  } > "$RUNTIME_PROPS"
}

format_if_needed() {
  if [[ -f "$DATA/meta.properties" ]]; then
    if ! grep -qx "node.id=$NODE_ID" "$DATA/meta.properties"; then
      die "$DATA/meta.properties is not for node.id=$NODE_ID (old or foreign data dir); run: tools/kafka/kafka.sh reset"
    fi
    return 1  # already formatted: warm start
  fi
  if [[ -d "$DATA" ]] && [[ -n "$(ls -A "$DATA" 2>/dev/null)" ]]; then
    die "$DATA has data but no meta.properties (corrupt); run: tools/kafka/kafka.sh reset"
  fi
  mkdir -p "$DATA"
  local cluster_id
  cluster_id="${KAFKA_CLUSTER_ID:-$(java_cp kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)}"
  [[ -n "$cluster_id" ]] || die "kafka.tools.StorageTool random-uuid failed"
  log "formatting new data dir $DATA (cluster id $cluster_id)"
  java_cp -Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$LOGS" \
      kafka.tools.StorageTool format --config "$RUNTIME_PROPS" --cluster-id "$cluster_id" \
      >"$LOGS/format.out" 2>&1 || { cat "$LOGS/format.out" >&2; die "formatting $DATA failed"; }
  return 0
}

# start_node: start the JVM (if not running) and leave its pid in PID_FILE; sets STARTED
# (0: it was running already) and KIND (cold or warm start). Does not wait for it to answer.
start_node() {
  local pid
  STARTED=0
  mkdir -p "$KAFKA_HOME_DIR" "$LOGS"

  if pid="$(live_pid)"; then
    return 0
  fi
  if [[ -f "$PID_FILE" ]]; then
    log "removing stale pid file ($(cat "$PID_FILE" 2>/dev/null || echo '?'))"
    rm -f "$PID_FILE"
  fi
  local p
  for p in "$KAFKA_PORT" "$CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port $p on $HOST is already in use by another process ($(port_owner "$p" || true)).
Stop it, or pick other ports with KAFKA_PORT=<port> (controller uses KAFKA_PORT+1)."
    fi
  done

  # Keep one previous log for post-mortems; each start gets a fresh server.log.
  [[ -f "$(server_log)" ]] && mv -f "$(server_log)" "$(server_log).prev"

  ensure_libs
  write_runtime_props
  local formatted=0
  if format_if_needed; then formatted=1; fi
  if ((DOWNLOADED && formatted)); then KIND="cold start (jars downloaded, new data dir)"
  elif ((formatted)); then KIND="cold start (new data dir)"
  elif ((DOWNLOADED)); then KIND="start (jars downloaded)"
  else KIND="warm start"
  fi

  log "starting broker on $HOST:$KAFKA_PORT (controller $CONTROLLER_PORT), logs in $LOGS"
  # setsid: own session and process group, so `down` can signal the whole group
  # and a Ctrl-C in the starting terminal does not reach the broker.
  rm -f "$PID_FILE.new"
  # shellcheck disable=SC2086  # HEAP_OPTS is a list of JVM flags
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$PID_FILE.new" \
    java $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$LOGS" \
      -cp "$LIBS/*" kafka.Kafka "$RUNTIME_PROPS" \
    >"$LOGS/kafka.out" 2>&1 </dev/null 9>&- &
  local i
  for i in $(seq 50); do [[ -s "$PID_FILE.new" ]] && break; sleep 0.1; done
  [[ -s "$PID_FILE.new" ]] || die "could not start java (see $LOGS/kafka.out)"
  mv -f "$PID_FILE.new" "$PID_FILE"
  STARTED=1
}

cmd_start() {
  start_node
  if ((STARTED)); then
    log "started node $NODE_ID (pid $(cat "$PID_FILE"), $KIND); not waiting for it"
  else
    log "node $NODE_ID already running (pid $(live_pid))"
  fi
}

cmd_up() {
  local t0 pid
  t0="$(now)"
  if pid="$(live_pid)"; then
    if broker_answers; then
      log "already running (pid $pid, $HOST:$KAFKA_PORT)"
      return 0
    fi
    log "pid $pid is starting; waiting for it"
    wait_ready "$pid" || exit 1
    log "ready on $HOST:$KAFKA_PORT"
    return 0
  fi
  start_node
  pid="$(cat "$PID_FILE")"
  if ! wait_ready "$pid"; then
    cmd_down  # a broker that never became ready is of no use to anyone
    exit 1
  fi
  log "ready on $HOST:$KAFKA_PORT (pid $pid), $KIND took $(elapsed "$t0")s"
}

cmd_down() {
  local pid
  if ! pid="$(live_pid)"; then
    [[ -f "$PID_FILE" ]] && rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping broker (pid $pid)"
  stop_group "$pid"
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if pid="$(live_pid)"; then
    if broker_answers; then
      echo "running (pid $pid, $HOST:$KAFKA_PORT)"
    else
      echo "running (pid $pid, $HOST:$KAFKA_PORT, not answering yet)"
    fi
    return 0
  fi
  if port_open "$KAFKA_PORT"; then
    echo "not running (but port $KAFKA_PORT is used by: $(port_owner "$KAFKA_PORT" || echo unknown))"
  else
    echo "not running"
  fi
  return 1
}

cmd_wait() {
  local t0; t0="$(now)"
  wait_ready "$(live_pid || true)" || exit 1
  log "ready on $HOST:$KAFKA_PORT after $(elapsed "$t0")s"
}

cmd_reset() {
  cmd_down
  log "wiping $DATA"
  rm -rf "$DATA" "$RUNTIME_PROPS"
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    up|start|down|reset)
      # One up/start/down/reset at a time (e.g. two `make test` in parallel).
      mkdir -p "$KAFKA_HOME_DIR"
      exec 9>"$KAFKA_HOME_DIR/.lock"
      flock 9
      "cmd_$cmd" ;;
    status|wait) "cmd_$cmd" ;;
    libs) ensure_libs ;;
    *) echo "usage: $0 {up|start|down|status|wait|reset|libs}" >&2; exit 2 ;;
  esac
}

main "$@"
