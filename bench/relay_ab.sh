#!/usr/bin/env bash
# A/B of two sockbox binaries on the relay, interleaved in one session (the
# machine's speed drifts, so runs alternate): throughput of SIZE (default
# 4G) of /dev/zero through `X connect` into `X listen > /dev/null`, and the
# latency of 3000 small request/response round trips through `X connect`
# (bench/relay_latency.py) next to nc.openbsd, ncat and socat in the same
# rounds.
#
# Usage: bench/relay_ab.sh OLD_BINARY NEW_BINARY     (ROUNDS=5 SIZE=4G)
# Build the old one from a commit without touching the worktree, e.g.:
#   mkdir /tmp/sb-old && git archive 15d1081 | tar x -C /tmp/sb-old &&
#   (cd /tmp/sb-old && cargo build --release -p sockbox-cli)
# Needs: nc.openbsd ncat socat python3 ss.
set -euo pipefail

cd "$(dirname "$0")/.."
OLD=${1:?old binary}
NEW=${2:?new binary}
ROUNDS=${ROUNDS:-5}
SIZE=${SIZE:-4G}
PORT=${PORT:-47611}
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 200); do
        [[ -n $(ss -Hltn "sport = :$1") ]] && return 0
        sleep 0.02
    done
    echo "nothing listens on port $1" >&2
    return 1
}

# throughput BINARY: seconds for SIZE through BINARY's connect and listen.
throughput() {
    local bin=$1 port=$((PORT++)) t0 t1
    "$bin" listen 127.0.0.1 "$port" >/dev/null 2>"$TMP/listen.err" &
    local lp=$!
    PIDS+=("$lp")
    wait_port "$port"
    t0=$(date +%s%N)
    head -c "$SIZE" /dev/zero | "$bin" connect 127.0.0.1 "$port" >/dev/null
    wait "$lp" || { echo "listen failed: $(cat "$TMP/listen.err")" >&2; return 1; }
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}

declare -A TP LAT
for _ in $(seq 1 "$ROUNDS"); do
    TP[old]+="$(throughput "$OLD") "
    TP[new]+="$(throughput "$NEW") "
    for t in old new nc.openbsd ncat socat; do
        case $t in
        old) c="$OLD connect 127.0.0.1 @PORT@" ;;
        new) c="$NEW connect 127.0.0.1 @PORT@" ;;
        nc.openbsd) c="nc.openbsd -N 127.0.0.1 @PORT@" ;;
        ncat) c="ncat 127.0.0.1 @PORT@" ;;
        socat) c="socat - TCP:127.0.0.1:@PORT@" ;;
        esac
        LAT[$t]+="$(python3 bench/relay_latency.py "$c" "$((PORT++))" | cut -d' ' -f1) "
    done
done

line() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END {
    printf "%s %s %s", v[1], v[int((NR + 1) / 2)], v[NR] }'; }
echo "# relay A/B, $ROUNDS interleaved rounds; $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# throughput: $SIZE of /dev/zero, wall seconds (min / median / max)"
printf '%-12s %s\n' old "$(line "${TP[old]}")" new "$(line "${TP[new]}")"
echo "# latency: median of 3000 round trips per run, microseconds (min / median / max over runs)"
for t in old new nc.openbsd ncat socat; do
    printf '%-12s %s\n' "$t" "$(line "${LAT[$t]}")"
done
