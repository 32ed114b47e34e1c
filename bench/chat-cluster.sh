#!/usr/bin/env bash
# Chat across nodes: 3 `sockbox chat --cluster` nodes joined through one local
# `nats-server -js`, against the same load on a single node.
#
#   bench/chat-cluster.sh            # 3 nodes x 300 receivers, 1 sender per node, 20000 lines each
#   QUICK=1 bench/chat-cluster.sh    # 3 x 50 receivers, 2000 lines: checks the script works
#
# The load generator (examples/chatload, `cluster`) connects the receivers, then one sender
# per node. Two runs of each: "flat out" (each sender writes its lines 64 per write as fast
# as the server takes them: throughput; latency is then mostly the backlog, since the load
# generator reads 900 sockets on the same 2 cores) and "paced" (PACED_LINES lines at 500
# lines/s per sender, 4 per write: the latency of the path itself).
# Every line carries its sender, sequence number and send time, so every receiver checks
# delivery (each line once), order per sender and integrity, and measures latency
# same-node and cross-node apart. Printed per run: delivered / expected, lost, corrupted,
# out of order, lines delivered per second, p50/p99 latency, and each process's peak RSS
# (VmHWM) and CPU time. The single-node run puts the same 900 receivers and 3 senders on
# one node. Everything started here is stopped at the end (trap), and each load run gives
# up after 5 s without traffic (and is killed after 10 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then RECV=50 LINES=2000 PACED_LINES=1000; else RECV=300 LINES=20000 PACED_LINES=5000; fi

command -v nats-server >/dev/null || { echo "needs nats-server (apt-get install nats-server)" >&2; exit 2; }
cargo build --release -q -p sockbox-cli --bin sockbox --example chatload
SOCKBOX=target/release/sockbox
LOAD=target/release/examples/chatload
ulimit -n "$(ulimit -Hn)"

BASE=$((20000 + RANDOM % 10000))
STORE=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$STORE"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 200); do
        [ -n "$(ss -Hltn "sport = :$1")" ] && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    exit 3
}

# stats PID: "peak-RSS-MB cpu-s"
stats() {
    local hwm cpu
    hwm=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo n/a)
    cpu=$(awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo n/a)
    echo "$hwm $cpu"
}

field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); v=d[sys.argv[2]]; print(round(v, 2) if isinstance(v, float) else v)' "$1" "$2"; }

NATS_PORT=$BASE
nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$STORE" >/dev/null 2>&1 &
NATS_PID=$!
PIDS+=("$NATS_PID")
wait_port "$NATS_PORT"

# start_node PORT NAME: a clustered node (sets NODE_PID)
start_node() {
    "$SOCKBOX" chat 127.0.0.1 "$1" --quiet --max-per-addr 0 \
        --cluster "nats://127.0.0.1:$NATS_PORT" --room bench --node-name "$2" 2>/dev/null &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    wait_port "$1"
}

row() {
    local name=$1 out=$2
    printf '| %s | %s / %s | %s | %s | %s | %s | %s | %s / %s | %s / %s |\n' "$name" \
        "$(field "$out" delivered)" "$(field "$out" expected)" "$(field "$out" lost)" \
        "$(field "$out" corrupted)" "$(field "$out" out_of_order)" "$(field "$out" elapsed_s)" \
        "$(field "$out" deliveries_per_s)" \
        "$(field "$out" same_node_p50_ms)" "$(field "$out" same_node_p99_ms)" \
        "$(field "$out" cross_node_p50_ms)" "$(field "$out" cross_node_p99_ms)"
}

echo "| run | delivered / expected | lost | corrupted | out of order | time s | lines delivered/s | same-node p50 / p99 ms | cross-node p50 / p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|"

# 3 nodes.
NODES=() NODE_PIDS=()
for i in 1 2 3; do
    start_node $((BASE + i)) "n$i"
    NODES+=("127.0.0.1:$((BASE + i))")
    NODE_PIDS+=("$NODE_PID")
done
sleep 1
ALL=$(IFS=,; echo "${NODES[*]}")
out=$(timeout 600 "$LOAD" cluster --nodes "$ALL" --receivers "$RECV" --senders 1 --lines "$LINES")
row "3 nodes x $RECV receivers, 1 sender each, flat out" "$out"
out=$(timeout 600 "$LOAD" cluster --nodes "$ALL" --receivers "$RECV" --senders 1 --lines "$PACED_LINES" \
    --rate 500 --chunk 4)
row "3 nodes x $RECV receivers, 1 sender each, paced ($PACED_LINES lines)" "$out"
MEM3=()
for p in "${NODE_PIDS[@]}"; do MEM3+=("$(stats "$p")"); done
MEMN=$(stats "$NATS_PID")
for p in "${NODE_PIDS[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done

# The same load on one node (NATS stays up but carries nothing).
start_node $((BASE + 4)) solo
SOLO_PID=$NODE_PID
SOLO="127.0.0.1:$((BASE + 4))"
out1=$(timeout 600 "$LOAD" cluster --nodes "$SOLO" --receivers $((3 * RECV)) --senders 3 --lines "$LINES")
row "1 node x $((3 * RECV)) receivers, 3 senders, flat out" "$out1"
out1=$(timeout 600 "$LOAD" cluster --nodes "$SOLO" --receivers $((3 * RECV)) --senders 3 --lines "$PACED_LINES" \
    --rate 500 --chunk 4)
row "1 node x $((3 * RECV)) receivers, 3 senders, paced ($PACED_LINES lines)" "$out1"
MEM1=$(stats "$SOLO_PID")

echo
echo "| process | peak RSS MB | CPU s |"
echo "|---|---|---|"
for i in 0 1 2; do
    set -- ${MEM3[$i]}
    echo "| node n$((i + 1)) (3-node run) | $1 | $2 |"
done
set -- $MEMN
echo "| nats-server (3-node run) | $1 | $2 |"
set -- $MEM1
echo "| single node | $1 | $2 |"
