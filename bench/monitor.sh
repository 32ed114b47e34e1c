#!/usr/bin/env bash
# The Prometheus prober (`sockbox ping --serve`) against smokeping_prober
# (Debian's prometheus-smokeping-prober) in the same run, on loopback: N
# targets (127.x addresses, all answer) probed once a second for DURATION
# seconds by each in turn. Reported per run:
#   cpu_s     user+system CPU seconds of the prober over the run
#   rss_mb    peak resident memory (VmHWM)
#   replies/sent  replies counted over probes sent, from the prober's own
#             metrics: smokeping_response_duration_seconds_count summed over
#             targets, over smokeping_requests_total (smokeping_prober) or
#             sockbox_packets_sent_total (sockbox); probes of the last
#             second may still be in flight
#   first_s   seconds from start to the first complete /metrics (HTTP 200
#             with a smokeping_requests_total sample for every target)
#   scrape_s  time of one full scrape at the end (curl), and its size
#   gzip_s    the same scrape asking for gzip as Prometheus does (curl
#             --compressed), and the bytes that crossed the wire
# Then sockbox alone at 16,384 and 65,534 targets.
#
#   bench/monitor.sh [DURATION]        (default 60 seconds per run)
#   SIZES="100 1000" BIG="" bench/monitor.sh 20    (a shorter run)
#
# Needs root (both open raw or datagram ICMP sockets), curl. Probers are
# stopped by pid when each run ends, and on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-60}"
SIZES="${SIZES-100 1000 4094}"
BIG="${BIG-16384 65534}"
# Below the ephemeral port range (32768-60999 by default), so no client
# connection of an earlier run holds them.
PORT_S=29741
PORT_P=29742

command -v curl >/dev/null || { echo "curl is missing: apt-get install curl" >&2; exit 2; }
SPP=$(command -v prometheus-smokeping-prober || true)
[ -n "$SPP" ] || echo "prometheus-smokeping-prober is missing (apt-get install prometheus-smokeping-prober): sockbox only" >&2

cargo build --release --locked -q -p sockbox-cli
SOCKBOX=target/release/sockbox
tmp=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# targets N: N loopback addresses from 127.1.0.1 on, one per line.
targets() {
    awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++) { a = 256 + i; printf "127.%d.%d.%d\n", int(a / 65536) % 256, int(a / 256) % 256, a % 256 } }'
}

# metric FILE NAME: the sum of NAME's samples (labelled ones only).
metric() { awk -v n="$2{" 'index($0, n) == 1 { s += $NF } END { printf "%.0f", s }' "$1"; }

# cpu PID: user+system seconds so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# measure NAME PORT N CMD...: run the prober, print one table row.
measure() {
    local name=$1 port=$2 n=$3
    shift 3
    # The port must be free (a prober of the last run may still be going).
    local tries=0
    while ss -ltn "sport = :$port" | grep -q LISTEN; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || { echo "port $port is in use: $(ss -ltnp "sport = :$port")" >&2; exit 3; }
        sleep 0.1
    done
    "$@" >"$tmp/$name.log" 2>&1 &
    pid=$!
    local t0 first="-" now
    t0=$(date +%s.%N)
    local end
    end=$(awk "BEGIN{printf \"%.3f\", $t0 + $DURATION}")
    while now=$(date +%s.%N); awk "BEGIN{exit !($now < $end)}"; do
        if [ "$first" = "-" ] &&
            curl -sf -o "$tmp/first" "http://127.0.0.1:$port/metrics" 2>/dev/null &&
            [ "$(grep -c '^smokeping_requests_total{' "$tmp/first")" -ge "$n" ]; then
            first=$(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $t0}")
        fi
        kill -0 "$pid" 2>/dev/null || { echo "$name exited early: $(tail -3 "$tmp/$name.log")" >&2; break; }
        sleep 0.2
    done
    local scrape size sent replies cpu_s rss
    rm -f "$tmp/last"
    scrape=$(curl -s -o "$tmp/last" -w '%{time_total}' --max-time 60 "http://127.0.0.1:$port/metrics") || scrape="failed"
    size=$(stat -c %s "$tmp/last" 2>/dev/null || echo 0)
    local gz gz_s gz_size
    gz=$(curl -s --compressed -o /dev/null -w '%{time_total} %{size_download}' --max-time 60 \
        "http://127.0.0.1:$port/metrics") || gz="failed 0"
    read -r gz_s gz_size <<<"$gz"
    cpu_s=$(cpu "$pid" 2>/dev/null || echo "-")
    rss=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo "-")
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
    touch "$tmp/last"
    # Probes sent: sockbox's own count of packets handed to the system
    # (its smokeping_requests_total counts probes once answered or timed
    # out); smokeping_prober's smokeping_requests_total counts sends.
    sent=$(awk '$1 == "sockbox_packets_sent_total" { printf "%.0f", $2 }' "$tmp/last")
    [ -n "$sent" ] || sent=$(metric "$tmp/last" smokeping_requests_total)
    replies=$(metric "$tmp/last" smokeping_response_duration_seconds_count)
    local share="-"
    [ "${sent:-0}" -gt 0 ] && share=$(awk "BEGIN{printf \"%.1f%%\", 100 * $replies / $sent}")
    printf '| %s | %s | %s | %s | %s | %s / %s (%s) | %s | %s (%.1f MB) | %s (%.1f MB) |\n' \
        "$name" "$n" "$DURATION" "$cpu_s" "$rss" "$replies" "$sent" "$share" "$first" "$scrape" \
        "$(awk "BEGIN{print $size / 1048576}")" "$gz_s" "$(awk "BEGIN{print $gz_size / 1048576}")"
}

# smokeping_prober reads its default config file (with localhost) unless
# told otherwise: an empty one, so it probes the same targets as sockbox.
echo "targets: []" >"$tmp/spp.yml"

echo "| prober | targets | seconds | cpu_s | rss_mb | replies / sent | first_s | scrape_s (size) | gzip_s (wire size) |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in $SIZES; do
    targets "$n" >"$tmp/t$n"
    measure "sockbox ping --serve" "$PORT_S" "$n" \
        "$SOCKBOX" ping --serve "127.0.0.1:$PORT_S" -i 1s -f "$tmp/t$n"
    if [ -n "$SPP" ]; then
        # shellcheck disable=SC2046
        measure "smokeping_prober" "$PORT_P" "$n" \
            "$SPP" --config.file="$tmp/spp.yml" --web.listen-address="127.0.0.1:$PORT_P" \
            --privileged -i 1s $(cat "$tmp/t$n")
    fi
done
for n in $BIG; do
    targets "$n" >"$tmp/t$n"
    measure "sockbox ping --serve" "$PORT_S" "$n" \
        "$SOCKBOX" ping --serve "127.0.0.1:$PORT_S" -i 1s -f "$tmp/t$n"
done
echo
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
