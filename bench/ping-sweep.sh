#!/usr/bin/env bash
# Sweep 127.0.0.0/16 (65534 hosts, one probe each, fastest rate) with
# sockbox and with fping in the same run; report wall time, alive count and
# peak RSS of each, and the ratios. Needs root (raw ICMP sockets) or a
# ping_group_range that allows ICMP datagram sockets for sockbox. As root
# it also times sockbox on raw sockets (--socket raw), for information.
#
#   bench/ping-sweep.sh [ROUNDS]      (default 3; the best round is kept)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
RANGE=127.0.0.0/16
EXPECT=65534

need() { command -v "$1" >/dev/null 2>&1; }
if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time (package: time)" >&2
    apt-get install -y -qq time >/dev/null
fi
need fping || { echo "fping is missing: apt-get install fping" >&2; exit 2; }

cargo build --release --locked -q -p sockbox-cli
SOCKBOX=target/release/sockbox

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME CMD...: prints "seconds alive rss_kb cpu_seconds" for one run.
run() {
    local name=$1
    shift
    /usr/bin/time -v -o "$tmp/$name.time" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || true
    local secs rss alive
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tmp/$name.time" |
        awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/$name.time")
    alive=$(sort -u "$tmp/$name.out" | grep -c . || true)
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$tmp/$name.time")
    echo "$secs $alive $rss $cpu"
}

# As root, sockbox with raw sockets too (what root gets where
# ping_group_range does not allow datagram sockets, the Debian default).
raw=""
if [ "$(id -u)" = 0 ]; then raw=1; fi

# faster A B: true when run A took less time than run B (or B is empty).
faster() { [ -z "$2" ] || awk "BEGIN{exit !(${1%% *} < ${2%% *})}"; }

best_s=""; best_f=""; best_r=""
for i in $(seq 1 "$ROUNDS"); do
    s=$(run sockbox "$SOCKBOX" ping -g "$RANGE" -i 0 -r 0 -a -q)
    f=$(run fping fping -a -g "$RANGE" -i 0 -r 0 -q)
    r="-"
    if [ -n "$raw" ]; then
        r=$(run sockbox_raw "$SOCKBOX" ping -g "$RANGE" -i 0 -r 0 -a -q --socket raw)
        if faster "$r" "$best_r"; then best_r=$r; fi
    fi
    echo "round $i: sockbox $s | fping $f | sockbox --socket raw $r  (seconds alive rss_kb cpu_s)" >&2
    if faster "$s" "$best_s"; then best_s=$s; fi
    if faster "$f" "$best_f"; then best_f=$f; fi
done

read -r s_secs s_alive s_rss s_cpu <<<"$best_s"
read -r f_secs f_alive f_rss f_cpu <<<"$best_f"
ratio_t=$(awk "BEGIN{printf \"%.2f\", $s_secs / $f_secs}")
ratio_m=$(awk "BEGIN{printf \"%.2f\", $s_rss / $f_rss}")

echo "| tool | time (s) | alive (of $EXPECT) | peak RSS (MB) | CPU user+sys (s) |"
echo "|---|---|---|---|---|"
printf '| sockbox ping -g %s -i 0 -r 0 -a -q | %s | %s | %.1f | %s |\n' "$RANGE" "$s_secs" "$s_alive" "$(awk "BEGIN{print $s_rss/1024}")" "$s_cpu"
printf '| fping -a -g %s -i 0 -r 0 -q | %s | %s | %.1f | %s |\n' "$RANGE" "$f_secs" "$f_alive" "$(awk "BEGIN{print $f_rss/1024}")" "$f_cpu"
if [ -n "$best_r" ]; then
    read -r r_secs r_alive r_rss r_cpu <<<"$best_r"
    printf '| sockbox ping … --socket raw (root) | %s | %s | %.1f | %s |\n' "$r_secs" "$r_alive" "$(awk "BEGIN{print $r_rss/1024}")" "$r_cpu"
fi
echo
echo "time ratio sockbox/fping: $ratio_t (goal <= 0.50); memory ratio: $ratio_m (goal < 1)"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$s_alive" -ne "$EXPECT" ]; then
    echo "FAIL: sockbox reported $s_alive alive, expected $EXPECT (replies lost)" >&2
    exit 1
fi
if [ -n "$best_r" ] && [ "$r_alive" -ne "$EXPECT" ]; then
    echo "FAIL: sockbox --socket raw reported $r_alive alive, expected $EXPECT" >&2
    exit 1
fi
