#!/usr/bin/env bash
# RTT distribution of a burst: one probe to each of the 4094 addresses of
# 127.0.0.0/20, as fast as possible (-C 1 -q -i 0), with sockbox and fping in
# the same run; prints percentiles of the reported RTTs. Then sockbox with
# each source of send time (--send-time kernel: SO_TIMESTAMPING transmit
# stamps; --send-time clock: the clock read around each sendmmsg call,
# divided among its packets), to show which is exact.
#
#   bench/ping-rtt.sh [RANGE] [ROUNDS]   (default 127.0.0.0/20, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
RANGE="${1:-127.0.0.0/20}"
ROUNDS="${2:-3}"
command -v fping >/dev/null || { echo "fping is missing: apt-get install fping" >&2; exit 2; }
cargo build --release --locked -q -p sockbox-cli
SOCKBOX=target/release/sockbox
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# stats FILE: percentiles of the third column of `-C 1 -q` output (ms).
stats() {
    awk '$3 != "-" {print $3}' "$1" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "no replies"; exit }
            p = function_p
            printf "n=%d min=%.3f p50=%.3f p90=%.3f p99=%.3f max=%.3f\n", NR, v[1],
                v[int(NR*0.50)+1], v[int(NR*0.90)+1], v[int(NR*0.99)+1], v[NR]
        }' function_p=0
}

for i in $(seq 1 "$ROUNDS"); do
    "$SOCKBOX" ping -C 1 -q -i 0 -g "$RANGE" 2>"$tmp/s" || true
    fping -C 1 -q -i 0 -g "$RANGE" 2>"$tmp/f" || true
    "$SOCKBOX" ping -C 1 -q -i 0 -g "$RANGE" --send-time clock 2>"$tmp/c" || true
    echo "round $i"
    echo "  sockbox (kernel tx stamps): $(stats "$tmp/s")"
    echo "  fping:                      $(stats "$tmp/f")"
    echo "  sockbox --send-time clock:  $(stats "$tmp/c")"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
