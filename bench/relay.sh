#!/usr/bin/env bash
# Relay throughput on loopback: SIZE (default 4G) of `head -c SIZE /dev/zero`
# through `X connect` to `X listen > /dev/null`, for sockbox (splice and
# --no-splice), nc.openbsd, ncat and socat in the same run, with iperf3 as the
# ceiling; then SHA-256 of 1 GiB of random data end to end (pipe in, pipe out
# and file in, file out) to prove nothing is lost or reordered; then the
# latency of small request/response round trips through each client.
#
# Usage: bench/relay.sh            (RUNS=3 SIZE=4G INTEGRITY=1G by default)
#        RUNS=1 SIZE=1G bench/relay.sh
# Needs: nc.openbsd ncat socat iperf3 jq python3 ss (iproute2) /usr/bin/time awk numfmt;
# builds the release binary first (BUILD=0 skips that).
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SIZE=${SIZE:-4G}
INTEGRITY=${INTEGRITY:-1G}
PORT=${PORT:-47311}
SOCKBOX=${SOCKBOX:-target/release/sockbox}
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

if [[ ! -x $SOCKBOX || ${BUILD:-1} == 1 ]]; then
    cargo build --release -p sockbox-cli >&2
fi
for t in nc.openbsd ncat socat iperf3 jq ss /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install netcat-openbsd ncat socat iperf3 jq iproute2 time)" >&2; exit 2; }
done

bytes=$(numfmt --from=iec "$SIZE")

wait_port() { # wait until something listens on $1 (tcp) without connecting
    for _ in $(seq 1 200); do
        if [[ -n $(ss -Hltn "sport = :$1") ]]; then return 0; fi
        sleep 0.02
    done
    echo "nothing listens on port $1" >&2
    return 1
}

now() { date +%s%N; }

# run_one NAME "SERVER CMD" "CLIENT CMD": prints "wall_seconds cpu_seconds"
# for one transfer (cpu = user + system of client and server, not of head).
run_one() {
    local server=$2 client=$3 port=$((PORT++))
    server=${server//@PORT@/$port}
    client=${client//@PORT@/$port}
    /usr/bin/time -f "%U %S" -o "$TMP/server.time" bash -c "exec $server" >/dev/null 2>"$TMP/server.err" &
    local spid=$!
    PIDS+=("$spid")
    wait_port "$port"
    local t0 t1
    t0=$(now)
    head -c "$SIZE" /dev/zero |
        /usr/bin/time -f "%U %S" -o "$TMP/client.time" bash -c "exec $client" >/dev/null 2>"$TMP/client.err"
    wait "$spid" || true
    t1=$(now)
    cat "$TMP/server.time" "$TMP/client.time" |
        awk -v a="$t0" -v b="$t1" '{ cpu += $1 + $2 } END { printf "%.3f %.2f\n", (b - a) / 1e9, cpu }'
}

declare -A SERVER CLIENT BEST MEDIAN
ORDER=(sockbox sockbox-no-splice nc.openbsd ncat socat)
SERVER[sockbox]="$SOCKBOX listen 127.0.0.1 @PORT@"
CLIENT[sockbox]="$SOCKBOX connect 127.0.0.1 @PORT@"
SERVER[sockbox-no-splice]="$SOCKBOX listen --no-splice 127.0.0.1 @PORT@"
CLIENT[sockbox-no-splice]="$SOCKBOX connect --no-splice 127.0.0.1 @PORT@"
SERVER[nc.openbsd]="nc.openbsd -l 127.0.0.1 @PORT@"
CLIENT[nc.openbsd]="nc.openbsd -N 127.0.0.1 @PORT@"
SERVER[ncat]="ncat -l 127.0.0.1 @PORT@"
CLIENT[ncat]="ncat 127.0.0.1 @PORT@"
SERVER[socat]="socat TCP-LISTEN:@PORT@,bind=127.0.0.1,reuseaddr -"
CLIENT[socat]="socat - TCP:127.0.0.1:@PORT@"

echo "# relay: $SIZE of /dev/zero over loopback, best and median of $RUNS run(s)"
echo "# $(uname -r), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-18s %9s %9s %10s %11s\n' tool best_s median_s best_GB/s cpu_s/GiB
for name in "${ORDER[@]}"; do
    runs=()
    for _ in $(seq 1 "$RUNS"); do
        runs+=("$(run_one "$name" "${SERVER[$name]}" "${CLIENT[$name]}")")
    done
    sorted=$(printf '%s\n' "${runs[@]}" | sort -n)
    best=$(head -1 <<<"$sorted" | cut -d' ' -f1)
    median=$(sed -n "$(((RUNS + 1) / 2))p" <<<"$sorted" | cut -d' ' -f1)
    cpu=$(printf '%s\n' "${runs[@]}" | cut -d' ' -f2 | sort -n | head -1)
    BEST[$name]=$best
    MEDIAN[$name]=$median
    printf '%-18s %9s %9s %10s %11s\n' "$name" "$best" "$median" \
        "$(awk -v n="$bytes" -v t="$best" 'BEGIN { printf "%.2f", n / t / 1e9 }')" \
        "$(awk -v n="$bytes" -v c="$cpu" 'BEGIN { printf "%.2f", c / (n / 1073741824) }')"
done

awk -v s="${BEST[sockbox]}" -v n="${BEST[nc.openbsd]}" -v sm="${MEDIAN[sockbox]}" -v nm="${MEDIAN[nc.openbsd]}" \
    'BEGIN { printf "sockbox throughput / nc.openbsd: %.2fx (best), %.2fx (median)\n", n / s, nm / sm }'

# The producer alone (head into a pipe read by cat): the floor for every tool.
t0=$(now); head -c "$SIZE" /dev/zero | cat >/dev/null; t1=$(now)
printf '%-18s %9s %9s %10s\n' "head|cat (floor)" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" - -

# iperf3: memory to memory, the ceiling for one TCP stream on this host.
port=$((PORT++))
iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$port"
bps=$(iperf3 -c 127.0.0.1 -p "$port" -n "$SIZE" -J | jq '.end.sum_received.bits_per_second')
printf '%-18s %9s %9s %10s\n' "iperf3 (ceiling)" - - "$(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 8 / 1e9 }')"

# Integrity: SHA-256 in == SHA-256 out, through pipes and through files.
echo
echo "# integrity: $INTEGRITY of /dev/urandom, SHA-256 end to end"
head -c "$INTEGRITY" /dev/urandom >"$TMP/in"
want=$(sha256sum <"$TMP/in" | cut -d' ' -f1)
port=$((PORT++))
"$SOCKBOX" listen 127.0.0.1 "$port" | sha256sum | cut -d' ' -f1 >"$TMP/got.pipe" &
lp=$!
wait_port "$port"
cat "$TMP/in" | "$SOCKBOX" connect 127.0.0.1 "$port"
wait "$lp"
port=$((PORT++))
"$SOCKBOX" listen 127.0.0.1 "$port" >"$TMP/out" &
lp=$!
wait_port "$port"
"$SOCKBOX" connect 127.0.0.1 "$port" <"$TMP/in"
wait "$lp"
got_pipe=$(cat "$TMP/got.pipe")
got_file=$(sha256sum <"$TMP/out" | cut -d' ' -f1)
echo "sent          $want"
echo "pipe -> pipe  $got_pipe"
echo "file -> file  $got_file"
if [[ $want == "$got_pipe" && $want == "$got_file" ]]; then
    echo "integrity: OK"
else
    echo "integrity: MISMATCH" >&2
    exit 1
fi

# Latency: small request/response round trips through each client (the
# batching of streaming input must not slow interactive traffic).
echo
echo "# latency: 3000 line round trips through the client to an echo server, microseconds"
printf '%-18s %9s %9s\n' tool median_us p99_us
declare -A LAT
LAT[sockbox]="$SOCKBOX connect 127.0.0.1 @PORT@"
LAT[nc.openbsd]="nc.openbsd -N 127.0.0.1 @PORT@"
LAT[ncat]="ncat 127.0.0.1 @PORT@"
LAT[socat]="socat - TCP:127.0.0.1:@PORT@"
for name in sockbox nc.openbsd ncat socat; do
    read -r med p99 < <(python3 bench/relay_latency.py "${LAT[$name]}" "$((PORT++))")
    printf '%-18s %9s %9s\n' "$name" "$med" "$p99"
done
