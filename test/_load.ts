// Saturating load from another process (test/fixtures/load-client.mjs under node) and the crash check that
// every lifecycle test applies to the output of the processes it started.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const CLIENT = fileURLToPath(new URL("./fixtures/load-client.mjs", import.meta.url));

export interface LoadTotals {
  requests: number;
  failed: number;
  /** Of the failures, new connections reset before their response (what a listener closing under load causes). */
  freshResets: number;
  keepAliveRequests: number;
  freshRequests: number;
  reconnects: number;
  errors: string[];
}

export interface LoadOptions {
  /** Keep-alive connections, each with one request in flight all the time (default 32). */
  keepAlive?: number;
  /** Clients that open a new connection per request (default 8). */
  fresh?: number;
  path?: string;
  /** The client stops by itself after this long (a bound; tests call stop() much sooner). */
  maxMs?: number;
}

export class LoadClient {
  private stdout = "";
  stderr = "";
  private readonly done: Promise<LoadTotals>;
  private constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => (this.stdout += chunk));
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => (this.stderr += chunk));
    this.done = new Promise((resolve, reject) => {
      child.on("exit", (code) => {
        const line = this.stdout.trim().split("\n").pop() ?? "";
        try {
          resolve(JSON.parse(line) as LoadTotals);
        } catch {
          reject(new Error(`load client exited ${code} without totals: ${this.stdout.slice(-500)} ${this.stderr.slice(-500)}`));
        }
      });
    });
  }

  /** Starts the client against 127.0.0.1:port; resolves once its connections are being opened. */
  static async start(port: number, options: LoadOptions = {}): Promise<LoadClient> {
    const config = { port, keepAlive: 32, fresh: 8, path: "/", maxMs: 120_000, ...options };
    const child = spawn("node", [CLIENT, JSON.stringify(config)], { stdio: ["pipe", "pipe", "pipe"] });
    const client = new LoadClient(child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("load client did not start")), 10_000);
      child.stderr!.on("data", () => {
        if (!client.stderr.includes("load: started")) return;
        clearTimeout(timer);
        resolve();
      });
      child.on("exit", () => reject(new Error(`load client exited early: ${client.stderr}`)));
    });
    return client;
  }

  /** Asks the client to finish (in-flight requests complete) and returns its totals. */
  stop(): Promise<LoadTotals> {
    this.child.stdin!.end("stop\n");
    return this.done;
  }
}

const CRASH = /panic|Segmentation fault|SIGSEGV|core dumped|Bun has crashed/i;

/** The first line of output that reports a runtime crash, or null. */
export function crashLine(output: string): string | null {
  for (const line of output.split("\n")) if (CRASH.test(line)) return line;
  return null;
}
