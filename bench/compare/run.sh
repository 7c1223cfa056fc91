#!/usr/bin/env bash
# Side-by-side benchmark (`make compare`): single-node Pulse and a 3-node Pulse cluster
# (replication factor 3; fsync on) against what users would pick instead — a 3-member etcd
# cluster and a Redis server from Debian packages — on loopback, on this machine, in the same run. Prints one table and writes it to $OUT (default
# bench/compare/results.md). Everything it starts, it stops (trap on exit).
#
# Knobs (environment): DURATION (pulse-loadgen measured time, default 30s), WARMUP (5s),
# CONCURRENCY (64), CUSTOMERS (20000), ETCD_LOAD (etcdctl check perf --load, default l: a target of 8000 writes/s, so the figure is what etcd sustains rather than the small profile's 150/s cap),
# REDIS_REQUESTS (200000), OUT.
set -euo pipefail

cd "$(dirname "$0")/../.."
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-5s}
CONCURRENCY=${CONCURRENCY:-64}
CUSTOMERS=${CUSTOMERS:-20000}
ETCD_LOAD=${ETCD_LOAD:-l}
REDIS_REQUESTS=${REDIS_REQUESTS:-200000}
OUT=${OUT:-bench/compare/results.md}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

WORK=$(mktemp -d /tmp/pulse-compare.XXXXXX)
PIDS=()
CLUSTER_UP=
cleanup() {
  if [[ -n $CLUSTER_UP ]]; then deploy/local-cluster.sh down >&2 || true; fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "compare: $*" >&2; }

# A free loopback port (the kernel picks it; a race with another process is unlikely and fails loudly).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Waits until `$@` succeeds, at most 60 tries 0.5 s apart (an external process starting up).
wait_for() {
  local what=$1; shift
  for _ in $(seq 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$what did not come up"; return 1
}

log "building release binaries"
cargo build --release -q -p pulsed -p pulse-loadgen -p pulsectl
PULSED="$TARGET_DIR/release/pulsed"
LOADGEN="$TARGET_DIR/release/pulse-loadgen"
PULSECTL="$TARGET_DIR/release/pulsectl"

# ---- machine ---------------------------------------------------------------------------------
CORES=$(nproc)
MEMORY=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
log "measuring the disk's fsync rate"
FSYNC_RATE=$(python3 - "$WORK" <<'EOF'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
n, start = 0, time.monotonic()
while time.monotonic() - start < 2.0:
    os.write(fd, b"x" * 512)
    os.fdatasync(fd)
    n += 1
os.close(fd)
print(f"{n / (time.monotonic() - start):.0f}")
EOF
)

# ---- etcd: 3 members on loopback --------------------------------------------------------------
log "starting a 3-member etcd cluster"
CLUSTER=""
CLIENT_URLS=()
for i in 1 2 3; do
  cport=$(free_port); pport=$(free_port)
  CLUSTER+="${CLUSTER:+,}etcd$i=http://127.0.0.1:$pport"
  CLIENT_URLS+=("http://127.0.0.1:$cport")
  eval "ETCD_CPORT_$i=$cport ETCD_PPORT_$i=$pport"
done
for i in 1 2 3; do
  cport_var=ETCD_CPORT_$i; pport_var=ETCD_PPORT_$i
  etcd --name "etcd$i" --data-dir "$WORK/etcd$i" \
    --listen-client-urls "http://127.0.0.1:${!cport_var}" --advertise-client-urls "http://127.0.0.1:${!cport_var}" \
    --listen-peer-urls "http://127.0.0.1:${!pport_var}" --initial-advertise-peer-urls "http://127.0.0.1:${!pport_var}" \
    --initial-cluster "$CLUSTER" --initial-cluster-state new --initial-cluster-token pulse-compare \
    >"$WORK/etcd$i.log" 2>&1 &
  PIDS+=($!)
done
ENDPOINTS=$(IFS=,; echo "${CLIENT_URLS[*]}")
wait_for etcd env ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" endpoint health
log "etcdctl check perf --load=$ETCD_LOAD (about a minute)"
ETCD_OUT=$(ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" check perf --load="$ETCD_LOAD" 2>&1 || true)
echo "$ETCD_OUT" >"$WORK/etcd-perf.txt"
# "PASS: Throughput is 151 writes/s" or "FAIL: Throughput too low: 2304 writes/s": the measured rate.
ETCD_WPS=$(sed -n 's/.*Throughput[^0-9]*\([0-9.]*\) writes\/s.*/\1/p' <<<"$ETCD_OUT" | head -1)
ETCD_SLOWEST=$(sed -n 's/.*Slowest request took \([0-9.]*\)s.*/\1/p' <<<"$ETCD_OUT" | head -1)
for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()

# ---- redis -----------------------------------------------------------------------------------
log "starting redis-server"
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
wait_for redis redis-cli -p "$RPORT" ping
log "redis-benchmark GET and HSET, 64 clients"
REDIS_OUT=$(redis-benchmark -p "$RPORT" -c 64 -n "$REDIS_REQUESTS" -t get,hset -q 2>&1 | tr '\r' '\n')
echo "$REDIS_OUT" >"$WORK/redis-benchmark.txt"
redis_field() { grep "^$1:" <<<"$REDIS_OUT" | tail -1 | sed -n "s/.*$2=\([0-9.]*\).*/\1/p"; }
REDIS_GET_RPS=$(grep '^GET:' <<<"$REDIS_OUT" | tail -1 | sed -n 's/^GET: \([0-9.]*\) requests per second.*/\1/p')
REDIS_HSET_RPS=$(grep '^HSET:' <<<"$REDIS_OUT" | tail -1 | sed -n 's/^HSET: \([0-9.]*\) requests per second.*/\1/p')
REDIS_GET_P50=$(redis_field GET p50)
REDIS_HSET_P50=$(redis_field HSET p50)
kill "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true
PIDS=()

# ---- pulse -----------------------------------------------------------------------------------
log "starting pulsed standalone (fsync on)"
PPORT=$(free_port)
"$PULSED" standalone --data-dir "$WORK/pulse" --listen "127.0.0.1:$PPORT" >"$WORK/pulsed.log" 2>&1 &
PIDS+=($!)
wait_for pulsed "$PULSECTL" --addr "127.0.0.1:$PPORT" health
# run_loadgen NAME ADDRS SCENARIO [FLAGS...]: one pulse-loadgen run, JSON in $WORK/NAME-SCENARIO.json
run_loadgen() {
  local name=$1 addrs=$2 scenario=$3; shift 3
  log "$name: pulse-loadgen --scenario $scenario --concurrency $CONCURRENCY --duration $DURATION $*"
  "$LOADGEN" --addr "$addrs" --scenario "$scenario" --duration "$DURATION" --warmup "$WARMUP" \
    --concurrency "$CONCURRENCY" --customers "$CUSTOMERS" --json "$WORK/$name-$scenario.json" "$@" \
    >"$WORK/$name-$scenario.txt"
}
run_loadgen pulse "127.0.0.1:$PPORT" ingest --batch-size 500
run_loadgen pulse "127.0.0.1:$PPORT" get
run_loadgen pulse "127.0.0.1:$PPORT" batch-get --batch-size 100 --no-preload
kill "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true
PIDS=()

# ---- pulse, 3 nodes ----------------------------------------------------------------------------
log "starting a Pulse cluster: 1 coordinator + 3 nodes, replication factor 3 (fsync on)"
BASE=$(( 52000 + RANDOM % 2000 ))
export CLUSTER_DIR="$WORK/cluster" BASE_PORT=$BASE PULSED PULSECTL
deploy/local-cluster.sh up 3 >"$WORK/cluster-up.txt"
CLUSTER_UP=1
GATEWAYS="127.0.0.1:$(( BASE + 1 )),127.0.0.1:$(( BASE + 2 )),127.0.0.1:$(( BASE + 3 ))"
run_loadgen pulse3 "$GATEWAYS" ingest --batch-size 500
run_loadgen pulse3 "$GATEWAYS" get
# The same reads through pulse-client, which sends each straight to its shard's leader.
run_loadgen pulse3-client "$GATEWAYS" get --routing client --no-preload
deploy/local-cluster.sh down >&2
CLUSTER_UP=

# ---- table -----------------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")" bench/compare/raw
cp "$WORK"/*.txt "$WORK"/*.json bench/compare/raw/ 2>/dev/null || true
python3 - "$WORK" "$OUT" <<EOF
import json, sys, datetime
work, out = sys.argv[1], sys.argv[2]
def pulse(name, system="pulse"):
    with open(f"{work}/{system}-{name}.json") as f:
        return json.load(f)
def num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None
ingest, get, batch = pulse("ingest"), pulse("get"), pulse("batch-get")
ingest3, get3 = pulse("ingest", "pulse3"), pulse("get", "pulse3")
get3c = pulse("get", "pulse3-client")
etcd_wps = num("$ETCD_WPS")
etcd_slowest = num("$ETCD_SLOWEST")
redis_get, redis_hset = num("$REDIS_GET_RPS"), num("$REDIS_HSET_RPS")
redis_get_p50, redis_hset_p50 = num("$REDIS_GET_P50"), num("$REDIS_HSET_P50")
def f(x, unit=""):
    return "n/a" if x is None else f"{x:,.0f}{unit}"
def ms(x):
    return "n/a" if x is None else f"{x:.2f}"
def ratio(a, b):
    return "n/a" if a is None or not b else f"{a / b:.2f}x"
rows = [
    ("Pulse standalone", "Ingest, batches of 500 events (fsync)", f(ingest["eps"]) + " events/s", f(ingest["rps"]), ms(ingest["latency_ms"]["p50"]), ms(ingest["latency_ms"]["p99"]), ingest["errors"]),
    ("Pulse standalone", "GetActivity (linearizable)", f(get["rps"]) + " req/s", f(get["rps"]), ms(get["latency_ms"]["p50"]), ms(get["latency_ms"]["p99"]), get["errors"]),
    ("Pulse standalone", "BatchGetActivity, 100 customers", f(batch["eps"]) + " customers/s", f(batch["rps"]), ms(batch["latency_ms"]["p50"]), ms(batch["latency_ms"]["p99"]), batch["errors"]),
    ("Pulse 3 nodes, RF 3", "Ingest, batches of 500 events (fsync), 3 gateways", f(ingest3["eps"]) + " events/s", f(ingest3["rps"]), ms(ingest3["latency_ms"]["p50"]), ms(ingest3["latency_ms"]["p99"]), ingest3["errors"]),
    ("Pulse 3 nodes, RF 3", "GetActivity (linearizable), 3 gateways", f(get3["rps"]) + " req/s", f(get3["rps"]), ms(get3["latency_ms"]["p50"]), ms(get3["latency_ms"]["p99"]), get3["errors"]),
    ("Pulse 3 nodes, RF 3", "GetActivity (linearizable), pulse-client routing", f(get3c["rps"]) + " req/s", f(get3c["rps"]), ms(get3c["latency_ms"]["p50"]), ms(get3c["latency_ms"]["p99"]), get3c["errors"]),
    ("etcd 3 members", "etcdctl check perf --load=$ETCD_LOAD (writes)", f(etcd_wps) + " writes/s", f(etcd_wps), "n/a", "slowest " + (f"{etcd_slowest*1000:.0f} ms" if etcd_slowest else "n/a"), "-"),
    ("Redis", "redis-benchmark GET, 64 clients", f(redis_get) + " req/s", f(redis_get), ms(redis_get_p50), "n/a", "-"),
    ("Redis", "redis-benchmark HSET, 64 clients", f(redis_hset) + " req/s", f(redis_hset), ms(redis_hset_p50), "n/a", "-"),
]
lines = [
    f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} on $CORES cores, $MEMORY, disk fsync rate $FSYNC_RATE/s; "
    f"Pulse: pulse-loadgen --concurrency $CONCURRENCY --duration $DURATION --warmup $WARMUP --customers $CUSTOMERS",
    "",
    "| System | Workload | Throughput | Requests/s | p50 ms | p99 ms | Errors |",
    "|---|---|---|---|---|---|---|",
]
lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
lines += [
    "",
    "| Ratio | Value |",
    "|---|---|",
    f"| Pulse ingest events/s ÷ etcd writes/s | {ratio(ingest['eps'], etcd_wps)} |",
    f"| Pulse 3 nodes ingest events/s ÷ etcd writes/s | {ratio(ingest3['eps'], etcd_wps)} |",
    f"| Pulse GetActivity req/s ÷ Redis GET req/s | {ratio(get['rps'], redis_get)} |",
    f"| Pulse ingest events/s ÷ Redis HSET req/s | {ratio(ingest['eps'], redis_hset)} |",
]
text = "\n".join(lines) + "\n"
print(text)
with open(out, "w") as f:
    f.write(text)
EOF
log "written to $OUT (raw outputs in bench/compare/raw/)"
