// A private redis-server for tests (test/suites/ws-redis.ts): found on PATH, or installed with apt where this runs
// as root (bounded, as scripts/test.mjs installs systemd), then started on a free 127.0.0.1 port with no
// persistence, and stopped by pid. Node modules only, so it runs under node, Bun and Deno alike.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import process from "node:process";

const APT_TIMEOUT_MS = 240_000;
/** From spawn to the first PONG. */
const START_TIMEOUT_MS = 10_000;
/** From SIGTERM to exit; then SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;
const PROBE_INTERVAL_MS = 20;
const OUTPUT_KEPT_CHARS = 8000;
const KNOWN_PATHS = ["/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"];

/** Runs a command to its end (killed past timeoutMs); resolves with its exit status (null: killed or not started). */
function runBounded(command, args, timeoutMs, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: "ignore", env: { ...process.env, ...env } });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", () => {
      clearTimeout(timer);
      resolve(null);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** redis-server on PATH (or where Debian puts it), else null. */
async function findRedis() {
  for (const directory of (process.env.PATH ?? "").split(":").filter(Boolean)) {
    if (existsSync(`${directory}/redis-server`)) return `${directory}/redis-server`;
  }
  return KNOWN_PATHS.find((path) => existsSync(path)) ?? null;
}

/**
 * The path of redis-server: found, or installed with apt (`apt-get update` first only if the install fails) when
 * this runs as root. Resolves with { path } or { path: null, reason }.
 */
export async function ensureRedis() {
  const found = await findRedis();
  if (found !== null) return { path: found };
  if (process.getuid?.() !== 0) return { path: null, reason: "redis-server is not installed (apt package redis-server; installed by the tests only as root)" };
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const install = () => runBounded("apt-get", ["install", "-y", "--no-install-recommends", "redis-server"], APT_TIMEOUT_MS, env);
  if ((await install()) !== 0 && (await runBounded("apt-get", ["update"], APT_TIMEOUT_MS, env)) === 0) await install();
  const installed = await findRedis();
  return installed !== null ? { path: installed } : { path: null, reason: "redis-server is not installed and apt-get install redis-server failed" };
}

/** A TCP port on 127.0.0.1 that was free a moment ago (redis-server takes no port 0). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** One PING: resolves true on +PONG, false when nothing answers it (refused, closed, or another reply). */
function ping(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    let answered = false;
    socket.setEncoding("latin1");
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk;
      if (reply.includes("\r\n")) {
        answered = reply.startsWith("+PONG");
        socket.destroy();
      }
    });
    socket.once("error", () => socket.destroy());
    socket.once("close", () => resolve(answered));
  });
}

/**
 * Starts redis-server (no persistence, 127.0.0.1 only) on `options.port` or a free port, and resolves once it
 * answers PING: { port, url, pid, output(), stop(signal) }. stop() signals it by pid and waits for it to exit.
 */
export async function startRedis(options = {}) {
  const { path, reason } = await ensureRedis();
  if (path === null) throw new Error(reason);
  const port = options.port ?? (await freePort());
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const child = spawn(path, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk) => (output = (output + chunk).slice(-OUTPUT_KEPT_CHARS));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const closed = new Promise((resolve) => child.once("close", (code, signal) => resolve(signal ?? code)));
  const stop = async (signal = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, signal);
    const timer = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(child.pid, "SIGKILL"), STOP_TIMEOUT_MS);
    const status = await closed;
    clearTimeout(timer);
    return status;
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await ping(port))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop("SIGKILL");
      throw new Error(`redis-server on 127.0.0.1:${port} did not answer PING within ${START_TIMEOUT_MS} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
  }
  return { port, url: `redis://127.0.0.1:${port}`, pid: child.pid, output: () => output, stop };
}
