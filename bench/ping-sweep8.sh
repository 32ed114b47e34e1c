#!/usr/bin/env bash
# Sweep all of 127.0.0.0/8 (16,777,214 addresses, every one answers on
# loopback) with `sockbox ping -g 127.0.0.0/8 -a -q -i 0 -r 0`: wall time,
# alive count and peak RSS. fping cannot take a range this big (-g stops at
# 100,000 addresses), so there is no peer run. Needs root or a
# ping_group_range that allows ICMP datagram sockets.
#
#   bench/ping-sweep8.sh [RANGE]      (default 127.0.0.0/8)
set -euo pipefail
cd "$(dirname "$0")/.."
RANGE="${1:-127.0.0.0/8}"
if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time (package: time)" >&2
    apt-get install -y -qq time >/dev/null
fi
cargo build --release --locked -q -p sockbox-cli
SOCKBOX=target/release/sockbox
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/time -v -o "$tmp/time" "$SOCKBOX" ping -g "$RANGE" -a -q -i 0 -r 0 >"$tmp/out" 2>"$tmp/err" || true
secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tmp/time" |
    awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time")
cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$tmp/time")
alive=$(wc -l <"$tmp/out")
unique=$(sort -u "$tmp/out" | wc -l)
echo "| range | time (s) | alive | distinct | peak RSS (MB) | CPU user+sys (s) |"
echo "|---|---|---|---|---|---|"
printf '| %s | %s | %s | %s | %.1f | %s |\n' "$RANGE" "$secs" "$alive" "$unique" "$(awk "BEGIN{print $rss/1024}")" "$cpu"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -s "$tmp/err" ]; then
    echo "stderr:" >&2
    head -5 "$tmp/err" >&2
fi
