#!/usr/bin/env bash
# Discovery-responder round trips per second on loopback: a client sends a
# datagram from one socket and waits for the answer, N times in a row.
# Compares sockbox's in-process responder with the
# socat idiom for answering every sender (UDP-RECVFROM,fork: one process per
# datagram), and both tools' fork-per-datagram program runners.
#
# Usage: bench/udp_responder.sh [N]        (needs socat, python3; builds release)
#        SOCKBOX=path/to/sockbox bench/udp_responder.sh [N]   (that binary, no build)
set -euo pipefail
N=${1:-2000}
cd "$(dirname "$0")/.."
if [[ -z "${SOCKBOX:-}" ]]; then
  cargo build --release -q -p sockbox-cli
  SOCKBOX=$PWD/target/release/sockbox
fi
SB=$SOCKBOX
PORT=$((20000 + RANDOM % 20000))

client() { # $1 = label
  python3 - "$PORT" "$N" "$1" <<'PY'
import socket, sys, time
port, n, label = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
# Warm up until the responder answers (it may still be starting).
deadline = time.time() + 10
while True:
    s.sendto(b"WHO", ("127.0.0.1", port))
    try:
        s.recvfrom(2048); break
    except socket.timeout:
        if time.time() > deadline: sys.exit(label + ": responder never answered")
ok = lost = 0
t = time.perf_counter()
for i in range(n):
    s.sendto(b"WHO", ("127.0.0.1", port))
    try:
        s.recvfrom(2048); ok += 1
    except socket.timeout:
        lost += 1
dt = time.perf_counter() - t
print(f"{label:<48} {ok/dt:>10.0f} replies/s   {dt*1e6/max(ok,1):>8.1f} us/round trip   lost {lost}")
PY
}

run() { # $1 = label, rest = server command
  local label=$1; shift
  "$@" >/dev/null 2>&1 &
  local pid=$!
  client "$label" || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  PORT=$((PORT + 1))
}

echo "N=$N sequential request/reply round trips on 127.0.0.1"
run "sockbox udp listen --reply (in process)"   "$SB" udp listen 127.0.0.1 "$PORT" --reply "I am here" -q
run "sockbox udp listen --echo (in process)"    "$SB" udp listen 127.0.0.1 "$PORT" --echo -q
# socat has no in-process fixed reply: its responder idiom forks a shell per
# datagram (the shell must drain stdin, or socat hits EPIPE and drops replies).
run "socat UDP-RECVFROM,fork SYSTEM:echo (fork)" socat UDP-RECVFROM:"$PORT",bind=127.0.0.1,fork SYSTEM:"cat >/dev/null; echo I am here"
run "sockbox udp listen --reply-exec cat (fork)" "$SB" udp listen 127.0.0.1 "$PORT" --reply-exec cat -q
run "socat UDP-RECVFROM,fork EXEC:cat (fork)"   socat UDP-RECVFROM:"$PORT",bind=127.0.0.1,fork EXEC:cat
