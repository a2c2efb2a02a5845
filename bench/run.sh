#!/usr/bin/env bash
# `npm run bench`: builds the native floor, makes sure wrk/curl/taskset exist, runs bench/driver.mjs
# (the workload matrix and the scaling table, see bench/README.md for every variable), then writes
# BENCHMARKS.md and bench/charts/ from its results with bench/report.mjs (REPORT=0 skips that).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/bun ] || [ ! -x node_modules/.bin/deno ]; then
  node scripts/bootstrap.mjs
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need() { # need <command> <apt package>
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "bench: installing $2 (for $1)" >&2
  as_root apt-get install -y "$2" || { as_root apt-get update && as_root apt-get install -y "$2"; }
}
need wrk wrk
need curl curl
need taskset util-linux

# The native floor: the project's zig (0.17.0) builds it; `zig` on PATH when it is that version.
mkdir -p bench/.out
zig=.tools/zig/ziglang/zig
if [ ! -x "$zig" ]; then
  if command -v zig >/dev/null 2>&1 && [ "$(zig version)" = "0.17.0" ]; then zig=zig
  else node scripts/bootstrap.mjs; fi
fi
if [ ! -x bench/.out/floor ] || [ bench/floor/floor.c -nt bench/.out/floor ]; then
  "$zig" cc -O2 -o bench/.out/floor bench/floor/floor.c
fi

node bench/driver.mjs
if [ "${REPORT:-1}" != 0 ]; then node bench/report.mjs "${OUT:-bench/.out/results.json}"; fi
