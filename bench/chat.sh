#!/usr/bin/env bash
# Chat fan-out benchmark: sockbox chat against ncat --chat, same run, same load generator.
#
#   bench/chat.sh            # full run: 1 -> 100 x 20000, 1 -> 1000 x 2000, 10000 idle clients
#   QUICK=1 bench/chat.sh    # smaller loads, to check the script works
#
# Each scenario runs twice: the sender writes 64 KiB at a time ("bulk", like `cat file | nc`)
# or one line per write ("per-line", like an interactive client).
# For every scenario it prints delivered/expected lines, corrupted lines (anything that is
# not a whole "<nick> m SEQ PAYLOAD" line or a server notice), messages per second
# (delivered / time from the first line sent to the last byte received), the server's CPU time and its peak RSS (VmHWM).
# Then the server's RSS with 10000 idle connected clients. Needs ncat (nmap package).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    SCENARIOS=("100 2000" "300 200")
    IDLE=1000
else
    SCENARIOS=("100 20000" "1000 2000")
    IDLE=10000
fi

cargo build --release -q -p sockbox-cli --bin sockbox --example chatload
SOCKBOX=target/release/sockbox
LOAD=target/release/examples/chatload
ulimit -n "$(ulimit -Hn)"

# Below the ephemeral range (32768+), where the load clients of earlier runs
# linger in TIME-WAIT and would make the bind fail.
PORT=$((20000 + RANDOM % 12000))
SERVER_PID=
SAMPLER_PID=
HWM_FILE=$(mktemp)
cleanup() {
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -f "$HWM_FILE"
}
trap cleanup EXIT

cpu_secs() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo "n/a"; }

# start_server NAME: starts it on $PORT, sets SERVER_PID, starts the RSS sampler
# (ncat exits by itself when a client leaves abruptly, so its peak is sampled while it runs).
start_server() {
    PORT=$((PORT + 1))
    case "$1" in
        # Every load client comes from 127.0.0.1: no per-address cap.
        sockbox) "$SOCKBOX" chat 127.0.0.1 "$PORT" --quiet --max-per-addr 0 2>/dev/null & ;;
        ncat) ncat --chat -l 127.0.0.1 "$PORT" 2>/dev/null & ;;
    esac
    SERVER_PID=$!
    echo "0 n/a" > "$HWM_FILE"
    ( while kill -0 "$SERVER_PID" 2>/dev/null; do
          v=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || true)
          c=$(cpu_secs "$SERVER_PID")
          [ -n "$v" ] && echo "$v $c" > "$HWM_FILE"
          sleep 0.05
      done ) &
    SAMPLER_PID=$!
    # Wait for the listening socket without connecting (ncat quits when a
    # client leaves before it has looked it up).
    for _ in $(seq 100); do
        [ -n "$(ss -Hltn "sport = :$PORT")" ] && break
        sleep 0.05
    done
}

# stop_server: stops it; "$HWM_FILE" then holds "peak-RSS-kB cpu-seconds" as last sampled.
stop_server() {
    local v c
    c=$(cpu_secs "$SERVER_PID")
    v=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)
    # The sampler first: killed while it rewrites the file, it could leave it empty.
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    [ "$c" != n/a ] && echo "$v $c" > "$HWM_FILE"
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID= SAMPLER_PID=
}

field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]])' "$1" "$2"; }

printf '| scenario | sender writes | server | delivered / expected | lost | corrupted | time s | msgs/s | server CPU s | peak RSS |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for sc in "${SCENARIOS[@]}"; do
    set -- $sc
    recv=$1 lines=$2
    for style in bulk per-line; do
        flag=
        [ "$style" = per-line ] && flag=--per-line
        for server in sockbox ncat; do
            start_server "$server"
            out=$("$LOAD" fanout 127.0.0.1 "$PORT" --receivers "$recv" --lines "$lines" --idle 3 $flag)
            stop_server
            read -r hwm cpu < "$HWM_FILE" || true
            printf '| 1 -> %s x %s | %s | %s | %s / %s | %s | %s | %.3f | %.0f | %s | %s |\n' \
                "$recv" "$lines" "$style" "$server" \
                "$(field "$out" delivered)" "$(field "$out" expected)" "$(field "$out" lost)" \
                "$(field "$out" corrupted)" "$(field "$out" elapsed_s)" "$(field "$out" msgs_per_s)" "$cpu" \
                "$(awk -v k="$hwm" 'BEGIN {if (k > 0) printf "%.1f MB", k / 1024; else printf "n/a (exited)"}')"
        done
    done
done

echo
printf '| idle clients | server | connected / alive | RSS with all connected |\n'
printf '|---|---|---|---|\n'
for server in sockbox ncat; do
    start_server "$server"
    rss=n/a ready=
    while read -r line; do
        case "$line" in
            ready*)
                ready=${line#ready }
                rss=$(awk '/VmRSS/ {printf "%.1f MB", $2 / 1024}' "/proc/$SERVER_PID/status" 2>/dev/null || echo "exited")
                ;;
        esac
    done < <("$LOAD" idle 127.0.0.1 "$PORT" --clients "$IDLE" --hold 1)
    stop_server
    printf '| %s | %s | %s | %s |\n' "$IDLE" "$server" "${ready/ / \/ }" "$rss"
done
