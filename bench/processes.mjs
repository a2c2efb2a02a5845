// Server processes for the bench: start one (pinned with taskset, bounded wait for its
// `listening <port>` line), read the CPU time and peak RSS of its whole process tree from /proc,
// and stop it with the processes it started. Only processes started here are ever signalled.
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createInterface } from "node:readline";

const LISTEN_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 3_000;
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

const started = new Set(); // live children of this process, started by startServer or run

function statFields(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
}

/** The pids below `pid` (children of all its threads, recursively), with their start times. */
export function descendants(pid) {
  const found = [];
  const queue = [pid];
  while (queue.length > 0 && found.length < 4096) {
    const parent = queue.shift();
    let tasks = [];
    try { tasks = readdirSync(`/proc/${parent}/task`); } catch { continue; } // exited meanwhile
    for (const task of tasks) {
      let children = "";
      try { children = readFileSync(`/proc/${parent}/task/${task}/children`, "utf8"); } catch { continue; }
      for (const child of children.split(" ").filter(Boolean).map(Number)) {
        try { found.push({ pid: child, startTime: statFields(child)[19] }); queue.push(child); } catch { /* exited */ }
      }
    }
  }
  return found;
}

/** CPU seconds (utime+stime of all threads) of `pid` and every live process below it. */
export function treeCpuSeconds(pid) {
  let ticks = 0;
  for (const p of [pid, ...descendants(pid).map((d) => d.pid)]) {
    try {
      const fields = statFields(p);
      ticks += Number(fields[11]) + Number(fields[12]); // fields 14 (utime) and 15 (stime)
    } catch { /* exited between the listing and the read */ }
  }
  return ticks / CLK_TCK;
}

/** Sum of VmHWM (peak resident set) over `pid` and the processes below it, in bytes. */
export function treePeakRssBytes(pid) {
  let kib = 0;
  for (const p of [pid, ...descendants(pid).map((d) => d.pid)]) {
    try { kib += Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0); } catch { /* exited */ }
  }
  return kib * 1024;
}

/**
 * Starts `argv` under `taskset -c cpus` (taskset execs it, so the child's pid is the server's) and
 * resolves with { pid, port, child, stderr() } once it printed `listening <port>`.
 */
export function startServer(id, argv, { cpus, env = {}, cwd }) {
  const child = spawn("taskset", ["-c", cpus, ...argv], {
    cwd, env: { ...process.env, NO_COLOR: "1", PORT: "0", ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
  started.add(child);
  let stderr = "";
  child.stderr.on("data", (chunk) => { stderr = (stderr + chunk).slice(-8000); });
  return new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      stopServer({ child, pid: child.pid }).then(() => reject(new Error(`${id}: ${why}\n${stderr}`)));
    };
    const timer = setTimeout(() => fail(`no "listening <port>" line within ${LISTEN_TIMEOUT_MS / 1000} s`), LISTEN_TIMEOUT_MS);
    child.on("error", (error) => fail(`could not start ${argv[0]}: ${error.message}`));
    child.once("exit", (code, signal) => { started.delete(child); fail(`exited (${signal ?? code}) before listening`); });
    createInterface({ input: child.stdout }).once("line", (line) => {
      const match = /^listening (\d+)$/.exec(line.trim());
      if (!match) return fail(`first stdout line was not "listening <port>": ${JSON.stringify(line)}`);
      clearTimeout(timer);
      child.removeAllListeners("exit");
      child.once("exit", () => started.delete(child));
      resolve({ id, child, pid: child.pid, port: Number(match[1]), stderr: () => stderr });
    });
  });
}

const alive = (child) => child.exitCode === null && child.signalCode === null;

/** SIGTERM to the server, SIGKILL after STOP_TIMEOUT_MS; then SIGKILL to what it started that is still there. */
export async function stopServer(server) {
  const below = alive(server.child) ? descendants(server.pid) : [];
  if (alive(server.child)) {
    await new Promise((resolve) => {
      const force = setTimeout(() => server.child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      server.child.once("exit", () => { clearTimeout(force); resolve(); });
      server.child.kill("SIGTERM");
    });
  }
  for (const { pid, startTime } of below) {
    try {
      if (statFields(pid)[19] === startTime) process.kill(pid, "SIGKILL"); // same process, not a reused pid
    } catch { /* already gone */ }
  }
}

/** Runs a command to its end, collecting stdout and stderr; SIGKILL after timeoutMs (then code is null). */
export function run(argv, { env = {}, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    started.add(child);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    let out = "";
    child.stdout.on("data", (chunk) => { out += chunk; });
    child.stderr.on("data", (chunk) => { out += chunk; });
    child.on("error", (error) => { clearTimeout(timer); reject(error); });
    child.on("exit", (code) => { clearTimeout(timer); started.delete(child); resolve({ code, out }); });
  });
}

/** Stops every child still running (on SIGINT/SIGTERM or a failure). */
export async function stopAll() {
  await Promise.all([...started].map((child) => stopServer({ child, pid: child.pid })));
}

/** The CPUs this process may run on (Cpus_allowed_list), e.g. [0, 1]. */
export function allowedCpus() {
  const list = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0";
  return list.split(",").flatMap((range) => {
    const [from, to = from] = range.split("-").map(Number);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
}
