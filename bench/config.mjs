// The bench's settings, from the environment (bench/README.md lists them), and the contenders.
// BENCH_QUICK=1 changes the defaults only; a variable that is set always wins.
import { join } from "node:path";
import { allowedCpus } from "./processes.mjs";

const env = process.env;
const quick = env.BENCH_QUICK === "1";

function number(name, fallback) {
  const value = env[name] === undefined || env[name] === "" ? fallback : Number(env[name]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(env[name])}`);
  return value;
}

const list = (name) => (env[name] ? env[name].split(",").map((s) => s.trim()).filter(Boolean) : null);

/**
 * The scaling table's CPUs: with 4 or more, servers get the first half and wrk the rest (disjoint);
 * with fewer, both share all of them. N runs over 1, 2, 4, ... up to the servers' CPU count.
 */
function scalingCpus() {
  const cpus = allowedCpus();
  const shared = cpus.length < 4;
  const server = shared ? cpus : cpus.slice(0, cpus.length >> 1);
  const client = shared ? cpus : cpus.slice(cpus.length >> 1);
  const steps = [];
  for (let n = 1; n < server.length; n *= 2) steps.push(n);
  steps.push(server.length);
  const n = list("SCALING_N")?.map(Number) ?? (quick ? [...new Set([1, server.length])] : steps);
  return { shared, server: server.join(","), client: client.join(","), clientCount: client.length, n };
}

export function loadConfig(root) {
  return {
    quick,
    rounds: Math.max(1, number("ROUNDS", quick ? 2 : 3)),
    durationS: Math.max(1, number("DURATION_S", quick ? 1 : 3)),
    warmupS: number("WARMUP_S", quick ? 0 : 1),
    connections: Math.max(1, number("CONNECTIONS", 64)),
    idleS: number("IDLE_S", quick ? 2 : 5),
    wrkThreads: Math.max(1, number("WRK_THREADS", 1)),
    serverCpu: String(number("SERVER_CPU", 0)),
    clientCpu: String(number("CLIENT_CPU", 1)),
    only: list("ONLY"),
    workloads: list("WORKLOADS"),
    scaling: env.SCALING !== "0",
    scalingConnections: Math.max(1, number("SCALING_CONNECTIONS", 256)),
    scalingCpus: scalingCpus(),
    extra: env.EXTRA ? JSON.parse(env.EXTRA) : [],
    note: env.BENCH_NOTE ?? "",
    out: env.OUT || join(root, "bench/.out/results.json"),
    floorBin: env.FLOOR_BIN || join(root, "bench/.out/floor"),
  };
}

/** The matrix's contenders: id → { label, argv }. EXTRA ones ([{ id, label, argv }]) serve bench/app.ts too. */
export function contenders(root, config) {
  const bun = join(root, "node_modules/.bin/bun");
  const deno = join(root, "node_modules/.bin/deno");
  const all = {
    "ours-bun": { label: "reuseport serve() (bun)", argv: [bun, "bench/servers/reuseport.ts"] },
    "ours-deno": { label: "reuseport serve() (deno)", argv: [deno, "run", "-A", "--no-check", "bench/servers/reuseport.ts"] },
    "bun-serve": { label: "Bun.serve (bun)", argv: [bun, "bench/servers/bun-serve.ts"] },
    "deno-serve": { label: "Deno.serve (deno)", argv: [deno, "run", "-A", "--no-check", "bench/servers/deno-serve.ts"] },
    "node-http": { label: "node:http (node)", argv: [process.execPath, "bench/servers/node-http.mjs"] },
    floor: { label: "native floor (C, epoll)", argv: [config.floorBin, "0"] },
  };
  for (const extra of config.extra) all[extra.id] = { label: extra.label ?? extra.id, argv: extra.argv, extra: true };
  return all;
}

/** The scaling table's contenders at N: one accept point feeding N workers, or a reuseport group of N. */
export function scalingContenders(root, n) {
  const bun = join(root, "node_modules/.bin/bun");
  const deno = join(root, "node_modules/.bin/deno");
  const workers = { BENCH_WORKERS: String(n) };
  return [
    { id: "node-cluster", label: "node:cluster (node:http)", short: "node:cluster", model: "accept point", argv: [process.execPath, "bench/servers/node-http.mjs"], env: workers },
    { id: "ours-bun", label: "reuseport serve({ workers }) (bun)", short: "ours (bun)", model: "reuseport group", argv: [bun, "bench/servers/reuseport.ts"], env: workers },
    { id: "ours-deno", label: "reuseport serve({ workers }) (deno)", short: "ours (deno)", model: "reuseport group", argv: [deno, "run", "-A", "--no-check", "bench/servers/reuseport.ts"], env: workers },
    { id: "bun-serve", label: "Bun.serve reusePort, N processes", short: "Bun.serve reusePort", model: "reuseport group", argv: [bun, "bench/servers/bun-serve.ts"], env: { BENCH_PROCESSES: String(n) } },
  ];
}
