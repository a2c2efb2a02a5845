#!/usr/bin/env bash
# CPU-profiles reuseport's serve() (or a runtime's own server) under wrk load, then prints
# the top functions (bench/profile-summary.mjs).
# Usage: bash bench/profile.sh <ours-bun|ours-deno|bun-serve|deno-serve> [LOAD_S=8] [CONNECTIONS=64]
# The request: GET $URL_PATH (default /plaintext), shaped by the BENCH_* variables of bench/wrk/request.lua.
# The server runs pinned to CPU 0, wrk to CPU 1; the server exits by itself (BENCH_EXIT_AFTER_S)
# so that the runtime writes its profile. Profiles land in bench/.out/prof-<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: bash bench/profile.sh <ours-bun|ours-deno|bun-serve|deno-serve> [LOAD_S] [CONNECTIONS]}
load_s=${2:-8}
connections=${3:-${CONNECTIONS:-64}}
path=${URL_PATH:-/plaintext}
dir=bench/.out/prof-$name
rm -rf "$dir" && mkdir -p "$dir"
bun=node_modules/.bin/bun deno=node_modules/.bin/deno
case $name in
  ours-bun) cmd=("$bun" --cpu-prof --cpu-prof-dir="$dir" bench/servers/reuseport.ts) ;;
  bun-serve) cmd=("$bun" --cpu-prof --cpu-prof-dir="$dir" bench/servers/bun-serve.ts) ;;
  ours-deno) cmd=("$deno" run -A --no-check --cpu-prof --cpu-prof-dir="$dir" bench/servers/reuseport.ts) ;;
  deno-serve) cmd=("$deno" run -A --no-check --cpu-prof --cpu-prof-dir="$dir" bench/servers/deno-serve.ts) ;;
  *) echo "unknown contender $name" >&2; exit 2 ;;
esac
out=$dir/stdout.txt
BENCH_EXIT_AFTER_S=$((load_s + 4)) taskset -c 0 "${cmd[@]}" > "$out" 2> "$dir/stderr.txt" &
pid=$!
for _ in $(seq 200); do grep -q '^listening ' "$out" && break; sleep 0.1; done # bounded: 20 s
port=$(awk '/^listening /{print $2; exit}' "$out")
[ -n "$port" ] || { echo "server did not listen" >&2; kill "$pid"; exit 1; }
taskset -c 1 wrk -t1 -c"$connections" -d1s -s bench/wrk/request.lua "http://127.0.0.1:$port$path" > /dev/null # warm-up
taskset -c 1 wrk -t1 -c"$connections" -d"${load_s}s" --latency -s bench/wrk/request.lua "http://127.0.0.1:$port$path" | grep -E 'Requests/sec|50%|99%'
wait "$pid" || true
for file in "$dir"/*.cpuprofile; do node bench/profile-summary.mjs "$file" "${TOP:-25}"; done
