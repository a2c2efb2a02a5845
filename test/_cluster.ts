// Runs test/fixtures/cluster-app.ts as a child of the same runtime and talks to its primary
// over stdin/stdout lines ("ready <port>", "stats <json>", ...). Ends only the pids it started.
import { spawn, type ChildProcess } from "node:child_process";
import { procNetSockets } from "../src/net/proc-net.ts";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { runtimeName } from "./_runtime.ts";
import type { ClusterStats } from "../src/index.ts";
import { rawExchange } from "./_http.ts";

const FIXTURE = fileURLToPath(new URL("./fixtures/cluster-app.ts", import.meta.url));
export const UDP_FIXTURE = fileURLToPath(new URL("./fixtures/udp-cluster-app.ts", import.meta.url));

export class ClusterChild {
  private lines: string[] = [];
  private waiters: (() => void)[] = [];
  private output = "";
  exitCode: number | null = null;
  exited: Promise<number | null>;
  port = 0;
  metricsUrl: string | null = null;
  /** The primary's `io` once every worker listened (null for UDP). */
  io: string | null = null;

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      this.output += chunk;
      for (let i = this.output.indexOf("\n"); i >= 0; i = this.output.indexOf("\n")) {
        this.lines.push(this.output.slice(0, i));
        this.output = this.output.slice(i + 1);
      }
      this.wake();
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => child.on("exit", (code) => {
      this.exitCode = code ?? -1;
      this.wake();
      resolve(code);
    }));
  }

  stderr = "";

  /** Starts a cluster fixture (default test/fixtures/cluster-app.ts) and waits for "ready". */
  static async start(config: Record<string, unknown>, fixture = FIXTURE): Promise<ClusterChild> {
    const args = runtimeName === "deno" ? ["run", "-A", "--no-check", fixture] : [fixture];
    const child = spawn(process.execPath, args, {
      env: { ...process.env, REUSEPORT_TEST_CONFIG: JSON.stringify(config), NO_COLOR: "1" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const cluster = new ClusterChild(child);
    const ready = await cluster.line((l) => l.startsWith("ready "), 20_000);
    const [, port, metrics, io] = ready.split(" ");
    cluster.port = Number(port);
    cluster.metricsUrl = metrics === "-" ? null : metrics;
    cluster.io = io === "-" ? null : io;
    return cluster;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Waits for (and consumes) the first output line matching predicate. */
  async line(predicate: (line: string) => boolean, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.lines.findIndex(predicate);
      if (index >= 0) return this.lines.splice(index, 1)[0];
      if (this.exitCode !== null) throw new Error(`cluster exited (${this.exitCode}) before the expected line; stderr: ${this.stderr.slice(-2000)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a line; got ${JSON.stringify(this.lines)}; stderr: ${this.stderr.slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * Sends a signal by pid. (Deno's ChildProcess.kill() also stops the pipes and reports the child as killed
   * by the signal, code null, even when it handled the signal and exited 0.)
   */
  signal(name: "SIGTERM" | "SIGKILL" | "SIGHUP"): void {
    if (this.exitCode === null && this.child.pid !== undefined) process.kill(this.child.pid, name);
  }

  /** Whether the child printed this line (not yet consumed by line()). */
  sawLine(text: string): boolean {
    return this.lines.includes(text);
  }

  command(text: string): void {
    this.child.stdin!.write(text + "\n");
  }

  async stats(): Promise<ClusterStats> {
    this.command("stats");
    return JSON.parse((await this.line((l) => l.startsWith("stats "))).slice(6));
  }

  /**
   * Asks for stats until predicate holds and returns those; each answer is the event the next question waits
   * for. Throws with the predicate and the last stats seen if it does not hold within timeoutMs.
   */
  async statsUntil(predicate: (s: ClusterStats) => boolean, timeoutMs = 10_000): Promise<ClusterStats> {
    const deadline = Date.now() + timeoutMs;
    let stats = await this.stats();
    while (!predicate(stats)) {
      if (Date.now() >= deadline) {
        throw new Error(`statsUntil: ${predicate} did not hold within ${timeoutMs} ms; last stats: ${JSON.stringify(stats).slice(0, 3000)}`);
      }
      stats = await this.stats();
    }
    return stats;
  }

  /** SIGTERM (graceful) and wait for exit; SIGKILL if it takes more than timeoutMs. */
  async stop(timeoutMs = 15_000): Promise<number | null> {
    if (this.exitCode !== null) return this.exitCode;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** Runs body with a fresh cluster (see ClusterChild.start) and always stops it. */
export async function withCluster(config: Record<string, unknown>, body: (cluster: ClusterChild) => Promise<void>): Promise<void> {
  const cluster = await ClusterChild.start(config);
  try {
    await body(cluster);
  } finally {
    await cluster.stop();
  }
}

/** One request on a fresh connection (Connection: close), so every request is a new accept. */
export function oneShot(port: number, path = "/"): Promise<string> {
  return rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
}

/** What `ss -ltn` / `ss -lun` list for a port, read from procfs (no iproute2 needed): TCP
 * sockets in LISTEN (state 0A), or every UDP socket bound to the port. */
function socketsOn(port: number, protocol: "tcp" | "udp"): number {
  return procNetSockets(protocol).filter((s) => s.localPort === port && (protocol === "udp" || s.state === "0A")).length;
}

export const listenersOn = (port: number): number => socketsOn(port, "tcp");
export const udpSocketsOn = (port: number): number => socketsOn(port, "udp");

/** Fetches url `count` times with `concurrency` in flight; returns [ok, failed, latencies ms]. */
export async function load(url: string, count: number, concurrency: number, init?: RequestInit): Promise<{ ok: number; failed: number; errors: string[]; latencies: number[] }> {
  let next = 0;
  const result = { ok: 0, failed: 0, errors: [] as string[], latencies: [] as number[] };
  const runner = async () => {
    while (next < count) {
      next++;
      const started = performance.now();
      try {
        const response = await fetch(url, init);
        await response.arrayBuffer();
        if (response.ok) result.ok++;
        else {
          result.failed++;
          result.errors.push(`status ${response.status}`);
        }
      } catch (error) {
        result.failed++;
        result.errors.push(String(error));
      }
      result.latencies.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, runner));
  return result;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** The port in the CLI's "reuseport: N workers (...) on http://host:PORT/" line (waits at most 20 s). */
export function announcedPort(child: ChildProcess): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 20_000);
    child.stdout!.on("data", (chunk) => {
      out += chunk;
      const match = /on http:\/\/[^:]+:(\d+)\//.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`cli exited ${code}: ${out}`));
    });
  });
}
