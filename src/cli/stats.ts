// `reuseport stats [pid]`: reads a running cluster's shared-memory counters from outside (the
// file /dev/shm/reuseport-<primary pid>-<id>) and prints one line per worker plus the balance.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { collectStats } from "../cluster/cluster-stats.ts";
import { F, SharedStats } from "../cluster/shared-stats.ts";
import { RUNTIME_FILE } from "../cluster/host.ts";

/** The stats files of running clusters, as [primary pid, path]. */
export function findClusters(): [number, string][] {
  let names: string[] = [];
  try {
    names = readdirSync("/dev/shm");
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const match = RUNTIME_FILE.exec(name);
    return match && !match[2] ? [[Number(match[1]), join("/dev/shm", name)] as [number, string]] : [];
  });
}

/** Reads the header (slot count, fd bitmap bytes) the primary wrote, then maps the file. */
function mapExisting(path: string): SharedStats {
  const header = new Float64Array(new Uint8Array(readFileSync(path).subarray(0, 64)).buffer);
  return SharedStats.map(path, header[1], header[2]);
}

export function statsCommand(args: string[]): void {
  const clusters = findClusters();
  const wanted = args[0] === undefined ? undefined : Number(args[0]);
  if (wanted !== undefined && !Number.isInteger(wanted)) throw new ConfigError("pid", `must be a process id, got ${JSON.stringify(args[0])}`);
  const chosen = clusters.filter(([pid]) => wanted === undefined || pid === wanted);
  if (chosen.length === 0) {
    throw new ConfigError("stats", wanted === undefined ? "found no running reuseport cluster (/dev/shm/reuseport-*)" : `found no cluster with primary pid ${wanted}`);
  }
  for (const [pid, path] of chosen) {
    const shared = mapExisting(path);
    let workers = 0;
    for (let slot = 0; slot < shared.slotCount; slot++) {
      const fields = shared.slot(slot);
      if (fields[F.state] !== 0) workers = Math.max(workers, fields[F.workerId] + 1);
      if (shared.retired(slot).some((v) => v !== 0)) workers = Math.max(workers, slot + 1);
    }
    const stats = collectStats(shared, workers);
    shared.unmap();
    console.log(`primary ${pid}: ${workers} workers, balance cv ${stats.balance.coefficientOfVariation.toFixed(3)} max deviation ${stats.balance.maxDeviation.toFixed(3)}${stats.balance.alert ? " (ALERT > 0.15)" : ""}`);
    console.log("  id  pid      tid      cpu  state      restarts  active  accepted    requests    cpu-s");
    for (const w of stats.workers) {
      console.log(`  ${String(w.id).padEnd(3)} ${String(w.pid).padEnd(8)} ${String(w.threadId).padEnd(8)} ${String(w.cpu).padEnd(4)} ${w.state.padEnd(10)} ${String(w.restarts).padEnd(9)} ${String(w.active).padEnd(7)} ${String(w.counters.accepted).padEnd(11)} ${String(w.counters.requests).padEnd(11)} ${w.cpuSeconds.toFixed(2)}`);
    }
  }
}
