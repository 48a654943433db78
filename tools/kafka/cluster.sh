#!/usr/bin/env bash
# A three-node Apache Kafka cluster on this machine (KRaft; each node is broker and
# controller, the three form the controller quorum), shaped like production:
# replication factor 3, min.insync.replicas=2, no unclean leader election
# (config/kafka/cluster.properties). Each node is one tools/kafka/kafka.sh broker with its
# own ports and data dir; the jars are the single broker's (.local/kafka/libs).
#
#   tools/kafka/cluster.sh up              start the nodes not running, wait for all three
#   tools/kafka/cluster.sh down            stop all nodes (in parallel)
#   tools/kafka/cluster.sh status          one line per node; exit code 0 when all run
#   tools/kafka/cluster.sh reset           stop and wipe every node's data
#   tools/kafka/cluster.sh bootstrap       print the bootstrap servers
#   tools/kafka/cluster.sh node-up N       start node N and wait until it answers
#   tools/kafka/cluster.sh node-down N     stop node N cleanly (SIGTERM)
#   tools/kafka/cluster.sh node-kill N     SIGKILL node N
#
# Ports: node N (1..3) listens on KAFKA_CLUSTER_PORT + 2(N-1) for clients and the next port
# for the controller; by default 19092/19093, 19094/19095, 19096/19097.
# Environment:
#   KAFKA_CLUSTER_HOME   default <repo>/.local/kafka-cluster (node1/, node2/, node3/, cluster.id)
#   KAFKA_CLUSTER_PORT   default 19092
#   KAFKA_CLUSTER_HEAP   default "-Xms128m -Xmx512m" per node
#   KAFKA_START_TIMEOUT  seconds to wait for the nodes, default 120
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KAFKA_SH="$REPO_ROOT/tools/kafka/kafka.sh"
CLUSTER_HOME="${KAFKA_CLUSTER_HOME:-$REPO_ROOT/.local/kafka-cluster}"
BASE_PORT="${KAFKA_CLUSTER_PORT:-19092}"
HEAP="${KAFKA_CLUSTER_HEAP:--Xms128m -Xmx512m}"
LIBS="$REPO_ROOT/.local/kafka/libs"
HOST=127.0.0.1
NODES=(1 2 3)
export KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"

log() { echo "kafka-cluster: $*" >&2; }
die() { echo "kafka-cluster: ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

port_of() { echo $((BASE_PORT + 2 * ($1 - 1))); }

voters() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$n@$HOST:$(($(port_of "$n") + 1))"); done
  local IFS=,; echo "${out[*]}"
}

bootstrap() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$HOST:$(port_of "$n")"); done
  local IFS=,; echo "${out[*]}"
}

# The cluster id every node is formatted with, made once.
cluster_id() {
  local file="$CLUSTER_HOME/cluster.id"
  if [[ ! -s "$file" ]]; then
    mkdir -p "$CLUSTER_HOME"
    KAFKA_HOME_DIR="$REPO_ROOT/.local/kafka" bash "$KAFKA_SH" libs
    java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1 > "$file"
    [[ -s "$file" ]] || die "kafka.tools.StorageTool random-uuid failed"
  fi
  cat "$file"
}

# node N SUBCOMMAND: kafka.sh for node N.
node() {
  local n="$1"; shift
  KAFKA_HOME_DIR="$CLUSTER_HOME/node$n" \
  KAFKA_PORT="$(port_of "$n")" \
  KAFKA_NODE_ID="$n" \
  KAFKA_QUORUM_VOTERS="$(voters)" \
  KAFKA_CLUSTER_ID="$(cluster_id)" \
  KAFKA_EXTRA_PROPS="$REPO_ROOT/config/kafka/cluster.properties" \
  KAFKA_LIBS_DIR="$LIBS" \
  KAFKA_HEAP_OPTS="$HEAP" \
    bash "$KAFKA_SH" "$@"
}

node_pid() { cat "$CLUSTER_HOME/node$1/kafka.pid" 2>/dev/null || true; }

check_node() {
  [[ "$1" =~ ^[123]$ ]] || die "node must be 1, 2 or 3 (got '${1:-}')"
}

cmd_up() {
  local t0 n cold=0
  t0="$(now)"
  [[ -f "$CLUSTER_HOME/node1/data/meta.properties" ]] || cold=1
  cluster_id >/dev/null
  # Every node first, then wait: a node answers only once a quorum of controllers is up.
  for n in "${NODES[@]}"; do node "$n" start; done
  for n in "${NODES[@]}"; do
    node "$n" wait || die "node $n did not become ready (log: $CLUSTER_HOME/node$n/logs/server.log)"
  done
  local kind=warm; ((cold)) && kind=cold
  log "ready: $(bootstrap), $kind start took $(elapsed "$t0")s"
}

cmd_down() {
  local n pids=()
  for n in "${NODES[@]}"; do node "$n" down & pids+=($!); done
  local rc=0 pid
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return $rc
}

cmd_status() {
  local n rc=0 line
  for n in "${NODES[@]}"; do
    line="$(node "$n" status)" || rc=1
    echo "node $n ($HOST:$(port_of "$n")): $line"
  done
  return $rc
}

cmd_reset() {
  cmd_down
  local n
  for n in "${NODES[@]}"; do node "$n" reset; done
  rm -f "$CLUSTER_HOME/cluster.id"
}

cmd_node_kill() {
  local pid; pid="$(node_pid "$1")"
  [[ "$pid" =~ ^[0-9]+$ ]] || { log "node $1 is not running"; return 0; }
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$CLUSTER_HOME/node$1/kafka.pid"
  log "node $1 (pid $pid) SIGKILLed"
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    bootstrap) bootstrap ;;
    node-up) check_node "${2:-}"; node "$2" up ;;
    node-down) check_node "${2:-}"; node "$2" down ;;
    node-kill) check_node "${2:-}"; cmd_node_kill "$2" ;;
    *) echo "usage: $0 {up|down|status|reset|bootstrap|node-up N|node-down N|node-kill N}" >&2; exit 2 ;;
  esac
}

main "$@"
