#!/usr/bin/env -S bun
// The `reuseport` command. `reuseport serve app.ts` loads a module whose default export is
// `{ fetch }` (as `deno serve` and `bun` do) and serves it with N workers; every worker re-runs
// this file with the same arguments, so the same serve() call becomes a worker there.
import process from "node:process";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { runtime } from "../ffi/index.ts";
import { settings } from "../config.ts";
import { ConfigError, serve } from "../index.ts";
import type { Options } from "../serve.ts";
import { currentWorkerContext } from "../cluster/worker.ts";
import { doctor } from "./doctor.ts";
import { statsCommand } from "./stats.ts";
import packageJson from "../../package.json" with { type: "json" };

const COMMANDS = `usage: reuseport <command> [options]

commands:
  serve <module>    serve a module's default export with N workers on one port
  stats             counters of running clusters, per worker
  doctor            what this machine allows a reuseport server
  version           the version of reuseport
  help [command]    this text, or a command's

\`reuseport <command> --help\` shows each command's options.`;

const SERVE_USAGE = `usage: reuseport serve <module> [options]

options:
  --port <n>            port (default $PORT or 3000; 0 picks a free one)
  --hostname <ip>       address to bind (default 0.0.0.0)
  --workers <n|auto>    workers in the port's reuseport group (default auto)
  --balance <how>       hash | cpu | least-connections (default hash)
  --mode <where>        thread | process (default: Bun threads, Deno processes)
  --metrics-port <n>    serve Prometheus /metrics from the primary on this port

The module's default export is { fetch } or { routes } (a Hono app works as is), optionally with
serve() options such as port or limits; flags override them. SIGHUP reloads the workers one at a
time, SIGTERM and SIGINT stop gracefully.`;

const STATS_USAGE = `usage: reuseport stats [<primary pid> | --port <n>] [--json]

Per worker: pid, thread, pinned CPU ("-" when unpinned), state, restarts, open connections, accepted
connections, requests and CPU seconds; per cluster the balance of accepted connections. The balance
alert (max deviation > 0.15, the seed guide's rule) waits for 400 accepted connections per worker on
average: below that, chance alone moves a worker's share by more than that.
  --port <n>   the cluster serving this port
  --json       one JSON document: { "clusters": [{ "primaryPid", "workers": [...], "totals", "balance" }] }`;

const DOCTOR_USAGE = `usage: reuseport doctor [--json]

Kernel, CPUs, file limit, the sysctls that matter (somaxconn, tcp_migrate_req, ...), BPF and io_uring,
each with what it means for a reuseport server.
  --json   one JSON document: { "kernel", "cpusAllowed", "cpuQuota", "autoWorkers", "fileLimit", "sysctls",
           "bpf", "ioUring" }`;

function environmentHelp(): string {
  const lines = Object.values(settings).filter((setting) => !setting.internal).map((setting) => `  ${setting.name.padEnd(27)} ${setting.meaning.split(". ")[0].replace(/\.$/, "")}`);
  return `environment:\n${lines.join("\n")}\n\nexit codes: 0 success, 1 the server failed (a crash loop, a failed start), 2 bad arguments or options`;
}

const USAGE = `${COMMANDS}\n\n${environmentHelp()}`;
const HELP: Record<string, string> = { serve: SERVE_USAGE, stats: STATS_USAGE, doctor: DOCTOR_USAGE, version: "usage: reuseport version", help: "usage: reuseport help [command]" };

const FLAGS: Record<string, keyof Options | "metricsPort"> = {
  "--port": "port", "--hostname": "hostname", "--workers": "workers", "--balance": "balance", "--mode": "mode",
  "--metrics-port": "metricsPort",
};

const MODULE_OPTIONS = [
  "port", "hostname", "compression", "health", "error", "onError", "onListen", "limits", "idleTimeout", "maxRequestBodySize", "backlog",
  "ipv6Only", "development", "workers", "balance", "mode", "metrics", "restartsMax", "restartWindowMs", "stopTimeoutMs",
] as const;

export function parseServeArgs(args: string[]): { module: string; flags: Record<string, string> } {
  let module: string | undefined;
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const [name, inline] = arg.startsWith("--") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    if (name in FLAGS) {
      const value = inline ?? args[++i];
      if (value === undefined) throw new ConfigError(name, "needs a value");
      flags[FLAGS[name]] = value;
    } else if (name.startsWith("-")) throw new ConfigError(name, "is not a reuseport serve option");
    else if (module === undefined) module = arg;
    else throw new ConfigError(arg, "is an extra argument; serve takes one module");
  }
  if (module === undefined) throw new ConfigError("module", "is missing: reuseport serve <module>");
  return { module, flags };
}

function integerFlag(name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(`--${name}`, `must be a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** --workers: "auto" or a positive integer, one message for every other value. */
function workersFlag(value: string): number | "auto" {
  if (value === "auto") return "auto";
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new ConfigError("--workers", `must be a positive integer or auto, got ${JSON.stringify(value)}`);
  return Number(value);
}

async function serveCommand(args: string[]): Promise<void> {
  const { module, flags } = parseServeArgs(args);
  const loaded = await import(pathToFileURL(resolve(module)).href);
  const app = loaded.default;
  // Bun's routes object; a Hono app's `routes` is its array of handlers, not that.
  const routes = typeof app?.routes === "object" && app.routes !== null && !Array.isArray(app.routes) ? app.routes : undefined;
  if (!app || (typeof app.fetch !== "function" && routes === undefined)) {
    throw new ConfigError("module", `${module} must export default { fetch } or { routes } (got ${app === undefined ? "no default export" : typeof app})`);
  }
  // Take serve() options from the export (Bun's `export default { port, fetch }`), nothing else:
  // a Hono app also carries get/post/route methods.
  const options: Options = { workers: "auto" };
  if (typeof app.fetch === "function") options.fetch = app.fetch.bind(app);
  if (routes !== undefined) options.routes = routes;
  for (const key of MODULE_OPTIONS) if (app[key] !== undefined) (options as Record<string, unknown>)[key] = app[key];
  if (flags.port !== undefined) options.port = integerFlag("port", flags.port);
  if (flags.hostname !== undefined) options.hostname = flags.hostname;
  if (flags.workers !== undefined) options.workers = workersFlag(flags.workers);
  if (flags.balance !== undefined) options.balance = flags.balance as Options["balance"];
  if (flags.mode !== undefined) options.mode = flags.mode as Options["mode"];
  if (flags.metricsPort !== undefined) options.metrics = { port: integerFlag("metrics-port", flags.metricsPort) };
  const server = serve(options as Options & { workers: number | "auto" });
  if (server.role === "primary") {
    await server.listening;
    console.log(`reuseport: ${server.workerCount} workers (${server.mode === "thread" ? "threads" : "processes"}, balance ${JSON.stringify(server.balance)}) on ${server.url}`);
  }
}

const isHelp = (arg: string | undefined) => arg === "--help" || arg === "-h";

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || isHelp(command)) return void console.log(USAGE);
  if (command === "help") {
    if (rest[0] === undefined) return void console.log(USAGE);
    if (HELP[rest[0]] === undefined) throw new ConfigError(rest[0], `is not a command\n\n${COMMANDS}`);
    return void console.log(HELP[rest[0]]);
  }
  if (command === "version" || command === "--version" || command === "-V") return void console.log(`reuseport ${version()}`);
  if (HELP[command] !== undefined && rest.some(isHelp)) return void console.log(HELP[command]);
  if (command === "serve") return serveCommand(rest);
  if (command === "doctor") return doctor(rest);
  if (command === "stats") return statsCommand(rest);
  throw new ConfigError(command, `is not a command\n\n${COMMANDS}`);
}

/** The package's version, from its package.json (the compiled binary embeds it). */
function version(): string {
  return (packageJson as { version: string }).version;
}

/** Whether this file is the program's entry: in a thread worker import.meta.main is false, so
 * compare with the entry the workers re-run (the compiled binary's entry imports us instead). */
function isEntry(): boolean {
  if (settings.cliEmbedded.read()) return false; // scripts/compiled-cli.ts calls main()
  if (import.meta.main) return true;
  const toPath = (where: string) => (where.startsWith("file:") ? fileURLToPath(where) : where);
  return currentWorkerContext() !== null && toPath(runtime.mainModule) === fileURLToPath(import.meta.url);
}

if (isEntry()) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(`reuseport: ${error instanceof Error ? error.message : error}`);
    process.exit(2);
  });
}
