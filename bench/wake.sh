#!/usr/bin/env bash
# Wake-on-LAN: reach and speed of `sockbox wake` against `wakeonlan`, on a
# sender with N NICs on N subnets and no default route (the common
# multi-NIC complaint). Needs root (network namespaces), hyperfine, wakeonlan.
#
#   bench/wake.sh [N]          N interfaces (default 4)
#   SOCKBOX=path/to/sockbox bench/wake.sh
set -euo pipefail
N=${1:-4}
MAC=00:11:22:33:44:55
cd "$(dirname "$0")/.."
if [[ -z "${SOCKBOX:-}" ]]; then
  cargo build --release -q -p sockbox-cli
  SOCKBOX=$PWD/target/release/sockbox
fi
[[ $EUID -eq 0 ]] || { echo "bench/wake.sh needs root (network namespaces)" >&2; exit 1; }
command -v hyperfine >/dev/null && command -v wakeonlan >/dev/null \
  || { echo "needs hyperfine and wakeonlan" >&2; exit 1; }

A=sbxbenchA$$ B=sbxbenchB$$
LPID=
cleanup() {
  [[ -n $LPID ]] && kill "$LPID" 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -f "${OUT:-}"
}
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip -n "$A" link set lo up; ip -n "$B" link set lo up
for i in $(seq 1 "$N"); do
  ip link add "bwa$i" netns "$A" type veth peer name "bwb$i" netns "$B"
  ip -n "$A" addr add "10.88.$i.1/24" dev "bwa$i"
  ip -n "$B" addr add "10.88.$i.2/24" dev "bwb$i"
  ip -n "$A" link set "bwa$i" up; ip -n "$B" link set "bwb$i" up
done

OUT=$(mktemp)
ip netns exec "$B" "$SOCKBOX" wake listen --json >"$OUT" 2>/dev/null &
LPID=$!
sleep 0.5

reach() { # label, command...: how many of the N links a single run reached
  local label=$1; shift
  : >"$OUT"
  local rc=0
  ip netns exec "$A" "$@" >/dev/null 2>&1 || rc=$?
  sleep 0.3
  local got
  got=$(grep -c '"magic":true' "$OUT" || true)
  printf '%-45s exit %d, reached %d of %d subnets\n' "$label" "$rc" "$got" "$N"
}
echo "== reach (sender has $N NICs, no default route)"
reach "sockbox wake $MAC" "$SOCKBOX" wake -q "$MAC"
reach "wakeonlan $MAC" wakeonlan "$MAC"
reach "wakeonlan -i 10.88.1.255 $MAC" wakeonlan -i 10.88.1.255 "$MAC"

echo "== time per invocation"
hyperfine -N --warmup 5 --runs 200 \
  "ip netns exec $A $SOCKBOX wake -q $MAC" \
  "ip netns exec $A wakeonlan -i 10.88.1.255 $MAC"
