#!/usr/bin/env bash
# A/B helper: measures copies of src/ against each other and the built-in contenders, interleaved.
#   bash bench/ab.sh NAME=DIR [NAME=DIR ...]
# DIR holds a copy of src/ (DIR/src); each becomes two EXTRA contenders, NAME-bun and NAME-deno,
# running bench/servers/reuseport.ts (and bench/app.ts) against that copy. Other env (ROUNDS, DURATION_S,
# ONLY, WORKLOADS, ...) goes to bench/run.sh as usual; e.g. ONLY=ours-bun,ours-deno,base-bun,base-deno.
# The scaling table and BENCHMARKS.md are left out unless SCALING=1 / REPORT=1 ask for them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
extra="["
for spec in "$@"; do
  name=${spec%%=*}; dir=$(cd "${spec#*=}" && pwd)
  mkdir -p "$dir/bench/servers"
  cp bench/servers/reuseport.ts bench/servers/_exit-after.ts "$dir/bench/servers/"
  cp bench/app.ts "$dir/bench/"
  [ -e "$dir/zig" ] || ln -s "$root/zig" "$dir/zig"
  [ "$extra" = "[" ] || extra+=","
  extra+="{\"id\":\"$name-bun\",\"label\":\"$name (bun)\",\"argv\":[\"$root/node_modules/.bin/bun\",\"$dir/bench/servers/reuseport.ts\"]}"
  extra+=",{\"id\":\"$name-deno\",\"label\":\"$name (deno)\",\"argv\":[\"$root/node_modules/.bin/deno\",\"run\",\"-A\",\"--no-check\",\"$dir/bench/servers/reuseport.ts\"]}"
done
extra+="]"
SCALING=${SCALING:-0} REPORT=${REPORT:-0} EXTRA=$extra exec bash bench/run.sh
