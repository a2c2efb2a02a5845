#!/usr/bin/env node
// The benchmark driver (bench/run.sh starts it; see bench/README.md).
//
// Starts every contender side by side (server pinned to CPU 0), waits for each one's
// `listening <port>` line, prints each response head once, then measures them INTERLEAVED:
// round 1: A B C D E, round 2: A B C D E, ... with wrk pinned to CPU 1. For each run it reads the
// server process's CPU time (utime+stime of all threads, /proc/<pid>/stat) right before wrk starts
// and right after it exits, so the metric req/s / server-CPU-share covers exactly the wrk run.
// Then: idle CPU of freshly started servers (and of the loaded ones after the rounds).
//
// Env: ROUNDS (3), DURATION_S (10), CONNECTIONS (64), WARMUP_S (2), IDLE_S (10),
//      WRK_THREADS (1), SERVER_CPU (0), CLIENT_CPU (1), ONLY (comma list of contender ids),
//      OUT (bench/.out/results.json), FLOOR_BIN (bench/.out/floor), EXTRA (JSON list of more contenders).
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const env = process.env;
const int = (name, fallback) => {
  const value = env[name] === undefined || env[name] === "" ? fallback : Number(env[name]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${env[name]}`);
  return value;
};
const config = {
  rounds: int("ROUNDS", 3),
  durationS: int("DURATION_S", 10),
  connections: int("CONNECTIONS", 64),
  warmupS: int("WARMUP_S", 2),
  idleS: int("IDLE_S", 10),
  wrkThreads: int("WRK_THREADS", 1),
  serverCpu: int("SERVER_CPU", 0),
  clientCpu: int("CLIENT_CPU", 1),
};
const outFile = env.OUT || join(root, "bench/.out/results.json");
const floorBin = env.FLOOR_BIN || join(root, "bench/.out/floor");
const bun = join(root, "node_modules/.bin/bun");
const deno = join(root, "node_modules/.bin/deno");
const LISTEN_TIMEOUT_MS = 20_000;
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

const CONTENDERS = [
  { id: "bun-serve", label: "Bun.serve (bun)", argv: [bun, "bench/servers/bun-serve.ts"] },
  { id: "ours-bun", label: "reuseport serve() (bun)", argv: [bun, "bench/servers/reuseport.ts"] },
  { id: "deno-serve", label: "Deno.serve (deno)", argv: [deno, "run", "-A", "--no-check", "bench/servers/deno-serve.ts"] },
  { id: "ours-deno", label: "reuseport serve() (deno)", argv: [deno, "run", "-A", "--no-check", "bench/servers/reuseport.ts"] },
  { id: "floor", label: "native floor (C, epoll)", argv: [floorBin, "0"] },
];
// EXTRA: more contenders for A/B experiments, JSON [{"id": "...", "label": "...", "argv": ["cmd", ...]}]
// (each must print `listening <port>` like the others); measured after the built-in ones.
const extra = env.EXTRA ? JSON.parse(env.EXTRA) : [];
const only = env.ONLY ? new Set(env.ONLY.split(",")) : null;
const contenders = [...CONTENDERS, ...extra].filter((c) => !only || only.has(c.id));

const started = new Set(); // child processes this driver started (only these are ever killed)

/** Starts a contender pinned to serverCpu; resolves once it printed `listening <port>` (bounded wait). */
function startServer(contender) {
  // taskset execs the server, so the child's pid is the server's pid.
  const child = spawn("taskset", ["-c", String(config.serverCpu), ...contender.argv], {
    cwd: root,
    env: { ...env, NO_COLOR: "1", PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.add(child);
  child.on("exit", () => started.delete(child));
  let stderr = "";
  child.stderr.on("data", (chunk) => { stderr += chunk; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`no "listening <port>" line within ${LISTEN_TIMEOUT_MS / 1000} s`), LISTEN_TIMEOUT_MS);
    const fail = (why) => {
      clearTimeout(timer);
      stop(child);
      reject(new Error(`${contender.id}: ${why}\n${stderr}`));
    };
    child.on("exit", (code, signal) => fail(`exited (${signal ?? code}) before listening`));
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      const match = /^listening (\d+)$/.exec(line.trim());
      if (!match) return fail(`first stdout line was not "listening <port>": ${JSON.stringify(line)}`);
      clearTimeout(timer);
      child.removeAllListeners("exit");
      child.on("exit", (code, signal) => {
        started.delete(child);
        if (!stopping.has(child)) console.error(`!! ${contender.id} (pid ${child.pid}) exited unexpectedly (${signal ?? code})\n${stderr}`);
      });
      resolve({ ...contender, child, pid: child.pid, port: Number(match[1]), stderr: () => stderr });
    });
  });
}

const stopping = new Set();
function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  stopping.add(child);
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 3000);
    child.once("exit", () => { clearTimeout(force); resolve(); });
    child.kill("SIGTERM");
  });
}

async function stopAll() {
  await Promise.all([...started].map(stop));
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => { await stopAll(); process.exit(130); });
}

/** Server CPU time (seconds) of a process, all threads: utime+stime from /proc/<pid>/stat. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // fields 14 (utime) and 15 (stime)
}

function run(argv) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    started.add(child);
    let out = "";
    child.stdout.on("data", (c) => { out += c; });
    child.stderr.on("data", (c) => { out += c; });
    child.on("error", reject);
    child.on("exit", (code) => { started.delete(child); resolve({ code, out }); });
  });
}

const UNIT = { us: 1, ms: 1000, s: 1e6 };
function latencyUs(text, pct) {
  const match = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(text);
  return match ? Number(match[1]) * UNIT[match[2]] : NaN;
}

function parseWrk(out) {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const socketErrors = /Socket errors: (.*)/.exec(out)?.[1] ?? null;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return { rps, requests, p50Us: latencyUs(out, 50), p99Us: latencyUs(out, 99), socketErrors, non2xx };
}

function wrkArgv(port, seconds) {
  return ["taskset", "-c", String(config.clientCpu), "wrk", `-t${config.wrkThreads}`, `-c${config.connections}`,
    `-d${seconds}s`, "--latency", `http://127.0.0.1:${port}/`];
}

/** One measured wrk run against a server, with that server's CPU time over exactly the run. */
async function measure(server) {
  const argv = wrkArgv(server.port, config.durationS);
  const cpuBefore = cpuSeconds(server.pid);
  const t0 = process.hrtime.bigint();
  const { code, out } = await run(argv);
  const cpuAfter = cpuSeconds(server.pid);
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  if (code !== 0) throw new Error(`wrk failed against ${server.id} (${code}):\n${out}`);
  const parsed = parseWrk(out);
  const cpuS = cpuAfter - cpuBefore;
  // req/s divided by the server's CPU share (CPU-seconds per wall-second) = requests per CPU-second.
  const perCpuS = parsed.requests / cpuS;
  return { ...parsed, cpuS, wallS, cpuShare: cpuS / wallS, perCpuS, raw: out };
}

const median = (values) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const k = (n) => (Number.isFinite(n) ? `${(n / 1000).toFixed(1)}k` : "-");
const us = (n) => (!Number.isFinite(n) ? "-" : n >= 1000 ? `${(n / 1000).toFixed(2)}ms` : `${n.toFixed(0)}us`);
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

function table(rows) {
  const header = `${pad("contender", 26)}${lpad("req/s", 10)}${lpad("srv CPU", 9)}${lpad("req/CPU-s", 11)}${lpad("p50", 9)}${lpad("p99", 9)}  errors`;
  const lines = [header, "-".repeat(header.length + 6)];
  for (const r of rows) {
    const errors = [r.socketErrors, r.non2xx ? `non2xx ${r.non2xx}` : ""].filter(Boolean).join("; ") || "";
    lines.push(`${pad(r.label, 26)}${lpad(k(r.rps), 10)}${lpad(`${(r.cpuShare * 100).toFixed(0)}%`, 9)}${lpad(k(r.perCpuS), 11)}${lpad(us(r.p50Us), 9)}${lpad(us(r.p99Us), 9)}  ${errors}`);
  }
  return lines.join("\n");
}

function curlHead(port) {
  try {
    const out = execFileSync("curl", ["-si", "--max-time", "5", `http://127.0.0.1:${port}/`]).toString();
    return out;
  } catch (failure) {
    return `curl failed: ${failure.message}`;
  }
}

function headerNames(response) {
  return response.split("\r\n\r\n")[0].split("\r\n").slice(1).map((line) => line.split(":")[0].toLowerCase()).sort();
}

/** Idle CPU of servers over idleS seconds, as % of one core. */
async function idleCpu(servers) {
  const before = new Map(servers.map((s) => [s.id, cpuSeconds(s.pid)]));
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, config.idleS * 1000));
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  return Object.fromEntries(servers.map((s) => {
    const cpuS = cpuSeconds(s.pid) - before.get(s.id);
    return [s.id, { cpuS, wallS, percentOfCore: (cpuS / wallS) * 100 }];
  }));
}

function version(argv) {
  let text;
  try { text = execFileSync(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString(); }
  catch (failure) { text = `${failure.stdout ?? ""}${failure.stderr ?? ""}`; } // `wrk -v` exits 1
  return text.split("\n")[0].trim() || "?";
}

async function main() {
  const system = {
    date: new Date().toISOString(),
    kernel: version(["uname", "-r"]),
    cpu: /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?",
    cpus: Number(version(["nproc"])),
    bun: version([bun, "--version"]),
    deno: version([deno, "--version"]),
    wrk: version(["wrk", "-v"]).replace(/ \[.*$/, ""),
    node: process.version,
  };
  console.log(`# reuseport bench  ${system.date}`);
  console.log(`config: rounds=${config.rounds} duration=${config.durationS}s connections=${config.connections} ` +
    `wrk-threads=${config.wrkThreads} warmup=${config.warmupS}s idle=${config.idleS}s server-cpu=${config.serverCpu} client-cpu=${config.clientCpu}`);
  console.log(`kernel ${system.kernel}; cpu ${system.cpu} x${system.cpus}; bun ${system.bun}; ${system.deno}; ${system.wrk}`);

  // 1. Idle CPU of freshly started servers (ours first; the runtimes' own servers for reference).
  const idleIds = ["ours-bun", "ours-deno", "bun-serve", "deno-serve"].filter((id) => contenders.some((c) => c.id === id));
  let idleFresh = {};
  if (config.idleS > 0 && idleIds.length) {
    console.log(`\n## idle CPU, freshly started, over ${config.idleS}s (goal for ours: < 1% of one core)`);
    const fresh = await Promise.all(idleIds.map((id) => startServer(contenders.find((c) => c.id === id))));
    idleFresh = await idleCpu(fresh);
    for (const s of fresh) console.log(`${pad(s.label, 26)} ${idleFresh[s.id].percentOfCore.toFixed(2)}% of one core (${(idleFresh[s.id].cpuS * 1000).toFixed(0)} ms CPU)`);
    await Promise.all(fresh.map((s) => stop(s.child)));
  }

  // 2. Start all contenders side by side; print each response head once.
  const servers = [];
  for (const contender of contenders) servers.push(await startServer(contender));
  console.log("\n## response of each contender (curl -si)");
  const heads = {};
  for (const s of servers) {
    heads[s.id] = curlHead(s.port);
    console.log(`--- ${s.label}  pid ${s.pid} port ${s.port}\n${heads[s.id].replace(/\r/g, "").trim()}`);
  }
  const reference = servers.find((s) => s.id === "floor") ?? servers[0];
  for (const s of servers) {
    const a = headerNames(heads[s.id]).join(","), b = headerNames(heads[reference.id]).join(",");
    if (a !== b) console.log(`!! ${s.id} sends header fields [${a}], ${reference.id} sends [${b}]`);
  }

  // 3. Warm up each (JIT), not recorded.
  if (config.warmupS > 0) {
    for (const s of servers) await run(wrkArgv(s.port, config.warmupS));
  }

  // 4. Interleaved rounds.
  const rounds = [];
  for (let round = 1; round <= config.rounds; round++) {
    const rows = [];
    for (const s of servers) {
      const result = await measure(s);
      rows.push({ id: s.id, label: s.label, ...result });
    }
    rounds.push(rows);
    console.log(`\n## round ${round}/${config.rounds}  (c=${config.connections}, ${config.durationS}s each)`);
    console.log(table(rows));
  }

  // 5. Idle CPU of the same servers after the load.
  let idleAfterLoad = {};
  if (config.idleS > 0) idleAfterLoad = await idleCpu(servers);

  const summary = servers.map((s) => {
    const runs = rounds.map((rows) => rows.find((r) => r.id === s.id));
    return {
      id: s.id, label: s.label,
      rps: median(runs.map((r) => r.rps)),
      cpuShare: median(runs.map((r) => r.cpuShare)),
      perCpuS: median(runs.map((r) => r.perCpuS)),
      p50Us: median(runs.map((r) => r.p50Us)),
      p99Us: median(runs.map((r) => r.p99Us)),
      socketErrors: runs.map((r) => r.socketErrors).filter(Boolean).join(" | ") || null,
      non2xx: runs.reduce((sum, r) => sum + r.non2xx, 0),
    };
  });
  const get = (id) => summary.find((s) => s.id === id);
  const ratio = (a, b, goal, metric = "perCpuS") => {
    const x = get(a), y = get(b);
    if (!x || !y) return null;
    return { of: `${a} / ${b}`, metric, value: x[metric] / y[metric], rpsRatio: x.rps / y.rps, goal, met: x[metric] / y[metric] >= goal };
  };
  const ratios = [
    ratio("ours-bun", "bun-serve", 1.2),
    ratio("ours-deno", "deno-serve", 1.1),
    ratio("ours-bun", "floor", 0.95),
    ratio("ours-deno", "floor", 0.95),
  ].filter(Boolean);

  console.log(`\n## summary: medians of ${config.rounds} interleaved rounds (c=${config.connections}, ${config.durationS}s)`);
  console.log(table(summary));
  console.log("\nratios of requests per server-CPU-second (req/s ratio in brackets):");
  for (const r of ratios) {
    console.log(`  ${pad(r.of, 24)} ${r.value.toFixed(3)}  (req/s ${r.rpsRatio.toFixed(3)})  goal >= ${r.goal}  ${r.met ? "MET" : "not met"}`);
  }
  if (config.idleS > 0) {
    console.log(`\nidle CPU over ${config.idleS}s, % of one core (goal for ours: < 1%):`);
    for (const id of Object.keys({ ...idleFresh, ...idleAfterLoad })) {
      const fresh = idleFresh[id]?.percentOfCore, after = idleAfterLoad[id]?.percentOfCore;
      console.log(`  ${pad(id, 12)} fresh ${Number.isFinite(fresh) ? fresh.toFixed(2) + "%" : "-"}   after load ${Number.isFinite(after) ? after.toFixed(2) + "%" : "-"}`);
    }
  }

  await stopAll();
  const results = {
    system, config, heads,
    rounds: rounds.map((rows, i) => ({ round: i + 1, runs: rows.map(({ raw, ...rest }) => rest) })),
    summary, ratios, idle: { fresh: idleFresh, afterLoad: idleAfterLoad },
  };
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nresults: ${outFile}`);
}

main().catch(async (failure) => {
  console.error(failure instanceof Error ? failure.message : failure);
  await stopAll();
  process.exit(1);
});
