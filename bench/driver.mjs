#!/usr/bin/env node
// The benchmark driver (bench/run.sh starts it; bench/README.md is the reference). Runs the
// workload matrix (bench/matrix.mjs), the idle-CPU readings, the scaling table (bench/scaling.mjs),
// and writes everything to bench/.out/results.json, from which bench/report.mjs writes BENCHMARKS.md.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { contenders, loadConfig } from "./config.mjs";
import { runWorkload, workloadContenders } from "./matrix.mjs";
import { runScaling } from "./scaling.mjs";
import { startServer, stopAll, stopServer, treeCpuSeconds } from "./processes.mjs";
import { workloads } from "./workloads.mjs";
import { writeBodies } from "./wrk.mjs";
import { times } from "./format.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const IDLE_IDS = ["ours-bun", "ours-deno", "bun-serve", "deno-serve"];

function version(argv) {
  let text;
  try { text = execFileSync(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString(); }
  catch (failure) { text = `${failure.stdout ?? ""}${failure.stderr ?? ""}`; } // `wrk -v` exits 1
  return text.split("\n")[0].trim() || "?";
}

function system() {
  return {
    date: new Date().toISOString(),
    kernel: version(["uname", "-r"]),
    cpu: /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?",
    cpus: Number(version(["nproc"])),
    loadAverage: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number),
    bun: version([join(root, "node_modules/.bin/bun"), "--version"]),
    deno: version([join(root, "node_modules/.bin/deno"), "--version"]).replace(/^deno /, "").replace(/ \(.*$/, ""),
    node: process.version.replace(/^v/, ""),
    wrk: version(["wrk", "-v"]).replace(/^wrk /, "").replace(/ \[.*$/, ""),
  };
}

/** CPU of each server over idleS seconds with no traffic, as % of one core. */
async function idleCpu(servers, idleS) {
  const before = new Map(servers.map((s) => [s.id, treeCpuSeconds(s.pid)]));
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, idleS * 1000));
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  return Object.fromEntries(servers.map((s) => [s.id, ((treeCpuSeconds(s.pid) - before.get(s.id)) / wallS) * 100]));
}

async function idleFresh(all, config) {
  const ids = IDLE_IDS.filter((id) => all[id] && (!config.only || config.only.includes(id)));
  if (config.idleS <= 0 || ids.length === 0) return {};
  const servers = [];
  try {
    for (const id of ids) servers.push(await startServer(id, all[id].argv, { cpus: config.serverCpu, cwd: root }));
    return await idleCpu(servers, config.idleS);
  } finally {
    await Promise.all(servers.map(stopServer));
  }
}

function printGoals(result) {
  for (const g of [...result.goals, ...result.floorRatios]) {
    const goal = Object.entries(g.goal).map(([key, min]) => `${key === "rps" ? "req/s" : "req/CPU-s"} >= ${min}`).join(", ");
    const verdict = g.met === null ? "" : g.met ? "  met" : "  MISSED";
    console.log(`  ${`${g.ours} / ${g.than}`.padEnd(24)} req/CPU-s ${times(g.perCpuS)}  req/s ${times(g.rps)}${goal ? `  goal ${goal}` : ""}${verdict}`);
  }
}

async function main() {
  const started = Date.now();
  const config = loadConfig(root);
  const all = contenders(root, config);
  const info = system();
  console.log(`# reuseport bench  ${info.date}${config.quick ? "  (BENCH_QUICK)" : ""}`);
  console.log(`config: ${JSON.stringify({ ...config, extra: config.extra.length })}`);
  console.log(`kernel ${info.kernel}; cpu ${info.cpu} x${info.cpus}; bun ${info.bun}; deno ${info.deno}; node ${info.node}; wrk ${info.wrk}`);
  const chosen = workloads().filter((w) => !config.workloads || config.workloads.includes(w.id));
  const ctx = { root, config, bodyFiles: writeBodies(chosen, join(dirname(config.out), "bodies")) };
  const perCellS = config.warmupS + config.rounds * config.durationS;
  const cells = chosen.reduce((sum, w) => sum + workloadContenders(w, all, config).length, 0);
  const scalingCells = config.scaling ? config.scalingCpus.n.length * 4 : 0;
  const minutes = ((cells + scalingCells) * perCellS + 2 * config.idleS) / 60;
  console.log(`about ${minutes.toFixed(1)} min of measuring: ${cells} matrix and ${scalingCells} scaling cells of ${perCellS} s each, plus start-ups`);

  const idle = { fresh: await idleFresh(all, config), afterLoad: {} };
  const results = [];
  for (const workload of chosen) {
    const afterRounds = workload.id === "plaintext" && config.idleS > 0
      ? async (servers) => { idle.afterLoad = await idleCpu(servers.filter((s) => IDLE_IDS.includes(s.id)), config.idleS); }
      : null;
    const result = await runWorkload(workload, all, ctx, afterRounds);
    if (result) { results.push(result); printGoals(result); }
  }
  if (Object.keys(idle.fresh).length) console.log(`\nidle CPU, % of one core: fresh ${JSON.stringify(idle.fresh)} after load ${JSON.stringify(idle.afterLoad)}`);
  const plaintext = workloads().find((w) => w.id === "plaintext");
  const scaling = config.scaling ? await runScaling(plaintext, ctx) : null;

  const { extra, ...recorded } = config;
  const output = { system: info, config: { ...recorded, extra: extra.map((e) => e.id) }, workloads: results, idle, scaling, wallS: (Date.now() - started) / 1000 };
  mkdirSync(dirname(config.out), { recursive: true });
  writeFileSync(config.out, JSON.stringify(output, null, 2) + "\n");
  console.log(`\nresults: ${config.out}  (${output.wallS.toFixed(0)} s)`);
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => { await stopAll(); process.exit(130); });
}
main().catch(async (failure) => {
  console.error(`bench: ${failure instanceof Error ? failure.message : failure}`);
  await stopAll();
  process.exit(1);
});
