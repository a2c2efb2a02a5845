#!/usr/bin/env node
// `npm run soak`: rolling reloads under saturating load, on each runtime's default path (Bun: thread
// workers; Deno: process workers; io_uring where the kernel allows it). For each runtime it starts
// test/fixtures/sync-cluster-app.ts (2 workers, synchronous handler), keeps 32 keep-alive and 8
// new-connection clients busy (test/fixtures/load-client.mjs), and calls reload() back to back until both
// SOAK_RELOADS reloads and SOAK_REQUESTS requests are done, or SOAK_MAX_S passes (a failure). Prints the
// figures (requests, reloads, failures, RSS at start and at the end, once the retired workers are gone) and
// exits non-zero on any failed request, crash or missed target.
// Env: SOAK_RELOADS (100), SOAK_REQUESTS (1000000), SOAK_MAX_S (540 per runtime), SOAK_RUNTIMES (bun,deno).
import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const env = process.env;
const number = (name, fallback) => {
  const value = env[name] === undefined || env[name] === "" ? fallback : Number(env[name]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${env[name]}`);
  return value;
};
const RELOADS = number("SOAK_RELOADS", 100);
const REQUESTS = number("SOAK_REQUESTS", 1_000_000);
const MAX_MS = number("SOAK_MAX_S", 540) * 1000;
const RUNTIMES = (env.SOAK_RUNTIMES ?? "bun,deno").split(",");
const FIXTURE = join(root, "test/fixtures/sync-cluster-app.ts");
const LOAD = join(root, "test/fixtures/load-client.mjs");
const CRASH = /panic|Segmentation fault|SIGSEGV|core dumped|Bun has crashed/i;

const argv = {
  bun: [join(root, "node_modules/.bin/bun"), FIXTURE],
  deno: [join(root, "node_modules/.bin/deno"), "run", "-A", "--no-check", FIXTURE],
};

/** Resident memory (KiB) of pid and all its descendants (process workers), from /proc. */
function rssKiB(pid) {
  let total = 0;
  try {
    total = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      for (const child of children ? children.split(" ") : []) total += rssKiB(Number(child));
    }
  } catch {
    // gone meanwhile
  }
  return total;
}

const mib = (kib) => Math.round(kib / 102.4) / 10;

/** How many child processes pid has. */
function childCount(pid) {
  let count = 0;
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (children) count += children.split(" ").length;
    }
  } catch {
    // gone
  }
  return count;
}

/** A child process whose stdout is read as lines; `line(predicate)` waits for one (bounded). */
function lines(child, label) {
  const state = { lines: [], waiters: [], output: "", stderr: "", exited: false };
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    state.output += chunk;
    const parts = state.output.split("\n");
    state.output = parts.pop();
    state.lines.push(...parts);
    for (const wake of state.waiters.splice(0)) wake();
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => (state.stderr += chunk));
  child.on("exit", () => {
    state.exited = true;
    for (const wake of state.waiters.splice(0)) wake();
  });
  state.line = async (predicate, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = state.lines.findIndex(predicate);
      if (index >= 0) return state.lines.splice(index, 1)[0];
      if (state.exited) throw new Error(`${label} exited; stderr: ${state.stderr.slice(-1500)}`);
      if (Date.now() > deadline) throw new Error(`${label}: timed out waiting for a line`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        state.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  return state;
}

async function soak(runtime) {
  const started = Date.now();
  const cluster = spawn(argv[runtime][0], argv[runtime].slice(1), {
    cwd: root,
    env: { ...env, REUSEPORT_TEST_CONFIG: JSON.stringify({ workers: 2 }), NO_COLOR: "1" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const primary = lines(cluster, `${runtime} cluster`);
  const exitCode = new Promise((resolve) => cluster.on("exit", (code, signal) => resolve(signal ?? code)));
  const [, port, , io] = (await primary.line((l) => l.startsWith("ready "), 30_000)).split(" ");
  const stats = async () => {
    cluster.stdin.write("stats\n");
    return JSON.parse((await primary.line((l) => l.startsWith("stats "), 10_000)).slice(6));
  };
  const load = spawn("node", [LOAD, JSON.stringify({ port: Number(port), keepAlive: 32, fresh: 8, maxMs: MAX_MS + 60_000 })], { stdio: ["pipe", "pipe", "pipe"] });
  const client = lines(load, "load client");
  const rssStart = rssKiB(cluster.pid);
  let reloads = 0;
  let requests = 0;
  let rssLoaded = 0;
  let failure = null;
  try {
    while ((reloads < RELOADS || requests < REQUESTS) && Date.now() - started < MAX_MS) {
      cluster.stdin.write("reload\n");
      const answer = await primary.line((l) => l === "reloaded" || l.startsWith("reload-failed"), 30_000);
      if (answer !== "reloaded") throw new Error(answer);
      reloads++;
      requests = (await stats()).totals.requests;
      if (reloads === 1) rssLoaded = rssKiB(cluster.pid); // under load, once: a baseline that growth is measured from
    }
  } catch (error) {
    failure = String(error);
  }
  load.stdin.end("stop\n");
  const totals = JSON.parse(await client.line((l) => l.startsWith("{"), 20_000));
  // The end figure once the last retired workers are gone (process workers: one child per worker again).
  for (let i = 0; i < 100 && runtime === "deno" && childCount(cluster.pid) > 2; i++) await stats().catch(() => null);
  const rssEnd = rssKiB(cluster.pid);
  const final = await stats().catch(() => null);
  cluster.kill("SIGTERM");
  const code = await Promise.race([exitCode, new Promise((resolve) => setTimeout(() => resolve("timeout"), 30_000))]);
  if (code === "timeout") cluster.kill("SIGKILL");
  const crash = primary.stderr.split("\n").find((l) => CRASH.test(l)) ?? null;
  const result = {
    runtime, io, mode: runtime === "bun" ? "thread" : "process",
    seconds: Math.round((Date.now() - started) / 100) / 10,
    reloads, requests: totals.requests, freshResets: totals.freshResets, keepAliveRequests: totals.keepAliveRequests, freshRequests: totals.freshRequests, serverRequests: final?.totals.requests ?? null, failed: totals.failed,
    reconnects: totals.reconnects, errors: totals.errors, restarts: final?.totals.restarts ?? null,
    rssStartMiB: mib(rssStart), rssLoadedMiB: mib(rssLoaded), rssEndMiB: mib(rssEnd),
    exit: code, crash, failure, counters: final?.totals ?? null, stderr: primary.stderr.slice(-2000),
  };
  const ok = !failure && !crash && code === 0 && totals.failed === 0 &&
    reloads >= RELOADS && totals.requests >= REQUESTS;
  return { ok, result };
}

let allOk = true;
for (const runtime of RUNTIMES) {
  if (!argv[runtime]) throw new Error(`SOAK_RUNTIMES: unknown runtime ${runtime}`);
  const { ok, result } = await soak(runtime);
  allOk &&= ok;
  console.log(`soak ${runtime} (${result.mode} workers, ${result.io}): ${result.requests} requests, ${result.reloads} reloads, ` +
    `${result.failed} failed (${result.freshResets} new connections reset), ${result.restarts} restarts, RSS ${result.rssStartMiB} idle, ${result.rssLoadedMiB} after the first reload, ` +
    `${result.rssEndMiB} MiB at the end, ` +
    `${result.seconds} s, exit ${result.exit}${ok ? "" : "  FAILED"}`);
  if (!ok) console.log(JSON.stringify(result, null, 2));
}
process.exit(allOk ? 0 : 1);
