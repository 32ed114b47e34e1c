#!/usr/bin/env bash
# Whole-process hexdump benchmark: `sockbox hexdump` vs `xxd` vs `hexdump -C`
# on the same random file in one hyperfine run (output to /dev/null for all).
# First checks that sockbox's output is byte-identical to `hexdump -C`.
#
#   bench/hexdump.sh                 # 100 MB, 3 runs each
#   SIZE_MB=20 RUNS=10 bench/hexdump.sh
#
# Needs: cargo, hyperfine, xxd, hexdump (bsdextrautils), python3, cmp, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB="${SIZE_MB:-100}"
RUNS="${RUNS:-3}"
for tool in hyperfine xxd hexdump python3 cmp /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench/hexdump.sh: $tool is not installed" >&2; exit 2; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet -p sockbox-cli
bin="$PWD/target/release/sockbox"
input="$work/random.bin"
head -c "$((SIZE_MB * 1000 * 1000))" /dev/urandom > "$input"

echo "== correctness: sockbox hexdump vs hexdump -C on ${SIZE_MB} MB"
hexdump -C "$input" > "$work/expected.txt"
"$bin" hexdump "$input" > "$work/sockbox.txt"
cmp "$work/expected.txt" "$work/sockbox.txt"
echo "identical ($(wc -c < "$work/sockbox.txt") bytes of output)"
rss_kb="$(/usr/bin/time -f %M "$bin" hexdump "$input" 2>&1 >/dev/null)"
echo "sockbox peak RSS: ${rss_kb} KB (streaming, independent of input size)"

echo "== timing (${RUNS} runs each, output to /dev/null)"
hyperfine --warmup 1 --runs "$RUNS" --shell=none \
    --export-json "$work/times.json" \
    --command-name "sockbox hexdump" "$bin hexdump $input" \
    --command-name "xxd" "xxd $input" \
    --command-name "hexdump -C" "hexdump -C $input"

python3 - "$work/times.json" "$SIZE_MB" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
size = float(sys.argv[2])
base = next(r for r in results if r["command"] == "sockbox hexdump")["mean"]
print()
print("| tool | mean (s) | stddev (s) | MB/s | time vs sockbox |")
print("|---|---|---|---|---|")
for r in results:
    print(f"| {r['command']} | {r['mean']:.3f} | {r['stddev'] or 0:.3f} | "
          f"{size / r['mean']:.0f} | {r['mean'] / base:.1f}x |")
xxd = next(r for r in results if r["command"] == "xxd")["mean"]
print()
print(f"sockbox hexdump is {xxd / base:.1f}x faster than xxd (goal: >= 10x)")
PY
