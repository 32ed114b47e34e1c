#!/usr/bin/env bash
# Zero-I/O port check of every TCP port on loopback: `sockbox connect -z
# 127.0.0.1 1-65535` next to `nc -z 127.0.0.1 1-65535` (nc.openbsd) in the
# same run, interleaved, RUNS times each. A few listeners are started first
# (LISTENERS, default 5, on random high ports) so both tools have something
# to find; the script checks that both report every listener it started
# (other programs' listeners may come and go between the runs) and prints
# wall time best / median per tool and the ratio.
#
# Usage: bench/portscan.sh              (RUNS=5 LISTENERS=5)
#        SOCKBOX=/path/to/sockbox BUILD=0 bench/portscan.sh
# Needs: nc.openbsd, python3 (for the listeners); builds the release binary
# first unless BUILD=0.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
LISTENERS=${LISTENERS:-5}
SOCKBOX=${SOCKBOX:-target/release/sockbox}
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

if [[ ${BUILD:-1} == 1 ]]; then
    cargo build --release -p sockbox-cli >&2
fi
command -v nc.openbsd >/dev/null || { echo "missing nc.openbsd (apt-get install netcat-openbsd)" >&2; exit 2; }

# Listeners that accept and close forever (nc -z and sockbox -z close at once).
python3 - "$LISTENERS" >"$TMP/ports" <<'PY' &
import socket, sys, threading, os
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks), flush=True)
sys.stdout.close()
os.close(1)
def serve(s):
    while True:
        c, _ = s.accept()
        c.close()
ts = [threading.Thread(target=serve, args=(s,), daemon=True) for s in socks]
for t in ts: t.start()
for t in ts: t.join()
PY
PIDS+=($!)
for _ in $(seq 1 100); do [[ -s $TMP/ports ]] && break; sleep 0.05; done
read -r -a MINE <"$TMP/ports"

now() { date +%s%N; }
# run NAME CMD...: time one full scan, keep the open ports it reported.
run() {
    local name=$1; shift
    local t0 t1
    t0=$(now)
    "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" || true
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}

declare -A TIMES
for _ in $(seq 1 "$RUNS"); do
    TIMES[sockbox]+="$(run sockbox "$SOCKBOX" connect -z 127.0.0.1 1-65535) "
    TIMES[nc]+="$(run nc nc.openbsd -zv 127.0.0.1 1-65535) "
done

# Open ports each found (nc -v says "succeeded" on stderr; sockbox on stdout).
grep -o ' [0-9]* port \[tcp' "$TMP/sockbox.out" | awk '{print $1}' | sort -n >"$TMP/sockbox.open"
grep 'succeeded' "$TMP/nc.err" | awk '{print $4}' | sort -n >"$TMP/nc.open"
for p in "${MINE[@]}"; do
    for t in sockbox nc; do
        grep -qx "$p" "$TMP/$t.open" || { echo "$t missed open port $p" >&2; exit 1; }
    done
done

stats() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { printf "%s %s\n", v[1], v[int((NR + 1) / 2)] }'; }
echo "# TCP ports 1-65535 on 127.0.0.1, $RUNS interleaved runs each"
echo "# $(uname -r), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# this script's listeners (${MINE[*]}) found by both; open in the last run:" \
    "sockbox $(wc -l <"$TMP/sockbox.open"), nc $(wc -l <"$TMP/nc.open")"
printf '%-22s %8s %9s\n' tool best_s median_s
read -r sb sm < <(stats "${TIMES[sockbox]}")
read -r nb nm < <(stats "${TIMES[nc]}")
printf '%-22s %8s %9s\n' "sockbox connect -z" "$sb" "$sm"
printf '%-22s %8s %9s\n' "nc.openbsd -z" "$nb" "$nm"
awk -v s="$sb" -v n="$nb" -v sm="$sm" -v nm="$nm" \
    'BEGIN { printf "nc / sockbox wall time: %.1fx (best), %.1fx (median)\n", n / s, nm / sm }'
