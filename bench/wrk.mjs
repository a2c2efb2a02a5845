// wrk runs for the bench: the argv and environment of bench/wrk/request.lua for a workload's
// request, and the parsing of wrk's report.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "./processes.mjs";

/** Beyond its -d, the most a wrk run may take before it is killed (its own request timeout is 2 s). */
const WRK_GRACE_MS = 30_000;
const UNIT_US = { us: 1, ms: 1000, s: 1e6 };

/** Writes each workload's request body to `directory`; returns id → file. */
export function writeBodies(workloads, directory) {
  mkdirSync(directory, { recursive: true });
  const files = {};
  for (const w of workloads) {
    if (w.request.body === undefined) continue;
    files[w.id] = join(directory, `${w.id}.body`);
    writeFileSync(files[w.id], w.request.body);
  }
  return files;
}

/** The environment bench/wrk/request.lua reads for a request shape. */
export function scriptEnv(request, bodyFile) {
  return {
    BENCH_METHOD: request.method,
    BENCH_BODY_FILE: bodyFile ?? "",
    BENCH_CONTENT_TYPE: request.contentType ?? "",
    BENCH_PIPELINE: String(request.pipeline ?? 1),
  };
}

/** A percentile of wrk's latency distribution in µs; NaN when absent or 0 (wrk 4.1 prints 0.00us for
 * high percentiles of pipelined runs). */
function latencyUs(text, percentile) {
  const match = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(text);
  const value = match ? Number(match[1]) * UNIT_US[match[2]] : NaN;
  return value > 0 ? value : NaN;
}

export function parseWrk(out) {
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN),
    p50Us: latencyUs(out, 50),
    p99Us: latencyUs(out, 99),
    socketErrors: /Socket errors: (.*)/.exec(out)?.[1] ?? null,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

/**
 * One wrk run: { port, path, seconds, connections, threads, cpus (taskset list), env (scriptEnv) }.
 * Resolves with wrk's parsed report; throws with wrk's output if it failed.
 */
export async function wrk({ root, port, path, seconds, connections, threads, cpus, env }) {
  const argv = ["taskset", "-c", cpus, "wrk", `-t${Math.min(threads, connections)}`, `-c${connections}`, `-d${seconds}s`,
    "--latency", "-s", join(root, "bench/wrk/request.lua"), `http://127.0.0.1:${port}${path}`];
  const { code, out } = await run(argv, { env, timeoutMs: seconds * 1000 + WRK_GRACE_MS });
  if (code !== 0) throw new Error(`wrk ${argv.slice(3).join(" ")} failed (${code ?? "killed"}):\n${out}`);
  return parseWrk(out);
}
