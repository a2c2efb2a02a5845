#!/usr/bin/env bash
# Quick A/B of two server commands by server CPU per request, in alternating pairs (A B, B A, ...),
# so that drift of a shared machine hits both alike. Each run: server pinned to CPU 0, 2 s wrk warm-up,
# then wrk -t1 -c$CONNECTIONS for $DURATION_S s on CPU 1; CPU = utime+stime of all the server's threads.
#   bash bench/pairs.sh PAIRS "ENV_A" "COMMAND_A" "ENV_B" "COMMAND_B"
#   e.g. bash bench/pairs.sh 6 "" "node_modules/.bin/deno run -A --no-check bench/servers/reuseport.ts" \
#          "REUSEPORT_LIBRARY=/tmp/other.so" "node_modules/.bin/deno run -A --no-check bench/servers/reuseport.ts"
# Prints µs of server CPU per request for each run and the median A/B ratio (> 1: B is cheaper).
# The request: GET $URL_PATH (default /plaintext, a route of bench/app.ts); WORKLOAD=<id> (one of
# bench/workloads.mjs, e.g. post-echo-1k or pipelined-16) takes the path, method, body, pipelining and
# connections of that workload; or set the BENCH_* variables bench/wrk/request.lua reads yourself.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:?usage: bash bench/pairs.sh PAIRS ENV_A COMMAND_A ENV_B COMMAND_B}
env_a=$2 cmd_a=$3 env_b=$4 cmd_b=$5
out=bench/.out/pairs && mkdir -p "$out"
if [ -n "${WORKLOAD:-}" ]; then
  # Prints `export NAME=value` lines: request.lua's BENCH_* variables, URL_PATH and the workload's connections.
  exports=$(node --input-type=module -e '
    import { workloads } from "./bench/workloads.mjs";
    import { scriptEnv, writeBodies } from "./bench/wrk.mjs";
    const workload = workloads().find((w) => w.id === process.argv[1]);
    if (!workload) { console.error(`unknown WORKLOAD ${process.argv[1]}: ${workloads().map((w) => w.id).join(", ")}`); process.exit(2); }
    const env = { ...scriptEnv(workload.request, writeBodies([workload], process.argv[2])[workload.id]), URL_PATH: workload.request.path };
    if (workload.connections && !process.env.CONNECTIONS) env.CONNECTIONS = String(workload.connections);
    for (const [name, value] of Object.entries(env)) console.log(`export ${name}=${JSON.stringify(value)}`);
  ' "$WORKLOAD" "$out")
  eval "$exports"
fi
path=${URL_PATH:-/plaintext}
duration=${DURATION_S:-3}
connections=${CONNECTIONS:-64}
command -v wrk > /dev/null || { echo "wrk missing: run bench/run.sh once (it installs it)" >&2; exit 1; }

# One run: prints the server's CPU µs per request.
measure() {
  local log=$out/server.log pid port
  # shellcheck disable=SC2086 # ENV strings are NAME=VALUE words on purpose
  env $1 taskset -c 0 $2 > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do grep -q '^listening ' "$log" && break; sleep 0.05; done # bounded: 10 s
  port=$(awk '/^listening /{print $2; exit}' "$log")
  [ -n "$port" ] || { echo "server did not listen: $(head -3 "$log")" >&2; kill "$pid"; return 1; }
  taskset -c 1 wrk -t1 -c"$connections" -d2s -s bench/wrk/request.lua "http://127.0.0.1:$port$path" > /dev/null
  local before after requests
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  requests=$(taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" -s bench/wrk/request.lua "http://127.0.0.1:$port$path" | awk '/requests in/{print $1}')
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2> /dev/null || true
  # /proc counts clock ticks (USER_HZ, 100 per second): 10 000 µs each.
  awk -v t=$((after - before)) -v r="$requests" 'BEGIN { printf "%.3f", t * 10000 / r }'
}

ratios=()
for i in $(seq "$pairs"); do
  if (( i % 2 )); then a=$(measure "$env_a" "$cmd_a"); b=$(measure "$env_b" "$cmd_b")
  else b=$(measure "$env_b" "$cmd_b"); a=$(measure "$env_a" "$cmd_a"); fi
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", a / b }')
  echo "pair $i: A $a µs/req  B $b µs/req  A/B $ratio"
  ratios+=("$ratio")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR]=$1} END { m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "median A/B %.4f (min %s, max %s)\n", m, v[1], v[NR] }'
