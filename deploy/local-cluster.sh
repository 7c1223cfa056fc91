#!/usr/bin/env bash
# A local Pulse cluster on loopback: one coordinator and N storage nodes, each a background
# `pulsed` process with its own data directory and log under $CLUSTER_DIR.
#
#   deploy/local-cluster.sh up [NODES]   start (default 3 nodes), wait until every shard has a
#                                        leader, print one line per process, return
#   deploy/local-cluster.sh add          scale out: start one more storage node (the next
#                                        port), print its line; the coordinator moves replicas
#                                        onto it until balanced (`pulsectl cluster status`)
#   deploy/local-cluster.sh down         stop every process started by `up` or `add` (SIGTERM,
#                                        then SIGKILL after 10 s)
#
# Environment: PULSED and PULSECTL (binaries; default target/release), CLUSTER_DIR (default
# ./data/cluster), HOST (default 127.0.0.1), BASE_PORT (coordinator; nodes follow, default
# 50061), REPLICATION_FACTOR (default min(3, NODES)), WAIT_SECONDS (default 60).
set -euo pipefail

BIN_DIR=${CARGO_TARGET_DIR:-target}/release
PULSED=${PULSED:-$BIN_DIR/pulsed}
PULSECTL=${PULSECTL:-$BIN_DIR/pulsectl}
CLUSTER_DIR=${CLUSTER_DIR:-./data/cluster}
HOST=${HOST:-127.0.0.1}
BASE_PORT=${BASE_PORT:-50061}
WAIT_SECONDS=${WAIT_SECONDS:-60}

die() { echo "local-cluster: $*" >&2; exit 1; }

up() {
  local nodes=${1:-3}
  [[ $nodes =~ ^[1-9][0-9]*$ ]] || die "NODES must be a positive number, got '$nodes'"
  local replication=${REPLICATION_FACTOR:-$(( nodes < 3 ? nodes : 3 ))}
  [[ -x $PULSED && -x $PULSECTL ]] || die "build first: cargo build --release -p pulsed -p pulsectl"
  if compgen -G "$CLUSTER_DIR/*.pid" >/dev/null; then
    die "a cluster is already running from $CLUSTER_DIR (make cluster-down first)"
  fi
  mkdir -p "$CLUSTER_DIR"
  local coordinator="$HOST:$BASE_PORT"
  "$PULSED" coordinator --data-dir "$CLUSTER_DIR/coordinator" --listen "$coordinator" \
    --replication-factor "$replication" >"$CLUSTER_DIR/coordinator.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/coordinator.pid"
  for i in $(seq 1 "$nodes"); do
    local address="$HOST:$(( BASE_PORT + i ))"
    "$PULSED" node --data-dir "$CLUSTER_DIR/node-$i" --listen "$address" --join "$coordinator" \
      >"$CLUSTER_DIR/node-$i.log" 2>&1 &
    echo $! >"$CLUSTER_DIR/node-$i.pid"
  done
  if ! "$PULSECTL" --addr "$coordinator" cluster wait --nodes "$nodes" --timeout "${WAIT_SECONDS}s" >/dev/null; then
    echo "local-cluster: the cluster did not become ready; logs in $CLUSTER_DIR" >&2
    tail -n 5 "$CLUSTER_DIR"/*.log >&2 || true
    down
    exit 1
  fi
  echo "gateway: $coordinator role=coordinator pid=$(cat "$CLUSTER_DIR/coordinator.pid")"
  for i in $(seq 1 "$nodes"); do
    echo "gateway: $HOST:$(( BASE_PORT + i )) role=node pid=$(cat "$CLUSTER_DIR/node-$i.pid")"
  done
}

add() {
  [[ -e $CLUSTER_DIR/coordinator.pid ]] || die "no cluster is running from $CLUSTER_DIR (make cluster first)"
  local i=1
  while [[ -e $CLUSTER_DIR/node-$i.pid ]]; do i=$(( i + 1 )); done
  local address="$HOST:$(( BASE_PORT + i ))"
  "$PULSED" node --data-dir "$CLUSTER_DIR/node-$i" --listen "$address" --join "$HOST:$BASE_PORT" \
    >"$CLUSTER_DIR/node-$i.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/node-$i.pid"
  if ! "$PULSECTL" --addr "$address" cluster wait --nodes "$i" --timeout "${WAIT_SECONDS}s" >/dev/null; then
    die "node $i did not join; its log is $CLUSTER_DIR/node-$i.log"
  fi
  echo "gateway: $address role=node pid=$(cat "$CLUSTER_DIR/node-$i.pid")"
}

down() {
  local pids=() file
  for file in "$CLUSTER_DIR"/*.pid; do
    [[ -e $file ]] || continue
    pids+=("$(cat "$file")")
    rm -f "$file"
  done
  [[ ${#pids[@]} -gt 0 ]] || { echo "local-cluster: nothing running in $CLUSTER_DIR"; return 0; }
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 100); do
    local alive=0 pid
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && { echo "local-cluster: stopped ${#pids[@]} processes"; return 0; }
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  echo "local-cluster: killed ${#pids[@]} processes that did not stop within 10 s"
}

case "${1:-}" in
  up) up "${2:-3}" ;;
  add) add ;;
  down) down ;;
  *) die "usage: $0 up [NODES] | add | down" ;;
esac
