// `reuseport stats [pid]`: reads a running cluster's shared-memory counters from outside (the
// file /dev/shm/reuseport-<primary pid>-<id>, copied, never mapped or changed) and prints one line
// per worker plus the balance; a file it cannot use is named on stderr and the others still print.
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync } from "node:fs";
import process from "node:process";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { collectStats } from "../cluster/cluster-stats.ts";
import { F, SharedStats, STATS_VERSION } from "../cluster/shared-stats.ts";
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

/** Why a stats file was not read (reported, and the other clusters are still printed). */
class UnreadableStats extends Error {}

/**
 * A copy of one stats file's counters, read without changing it: opened read-only, not following a
 * symlink and not waiting on a FIFO (O_NONBLOCK), then checked to be a regular file of the caller
 * (any, for root) whose size is what its header declares.
 */
function readSnapshot(path: string): SharedStats {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new UnreadableStats(code === "ELOOP" ? "a symbolic link" : `open ${code ?? error}`);
  }
  try {
    const file = fstatSync(fd);
    if (!file.isFile()) throw new UnreadableStats(file.isDirectory() ? "a directory" : file.isFIFO() ? "a FIFO" : "not a regular file");
    const uid = process.getuid?.() ?? 0;
    if (uid !== 0 && file.uid !== uid) throw new UnreadableStats(`owned by uid ${file.uid}, not by this user (${uid})`);
    const header = readExactly(fd, 64);
    const layout = header && SharedStats.headerOf(header);
    if (!layout) throw new UnreadableStats(`not a stats file of layout ${STATS_VERSION}`);
    const expected = SharedStats.bytesFor(layout.slotCount, layout.fdBitmapBytes);
    if (file.size !== expected) throw new UnreadableStats(`${file.size} bytes, its header says ${expected}`);
    const fields = readExactly(fd, SharedStats.fieldsBytesFor(layout.slotCount));
    if (!fields) throw new UnreadableStats("shorter than its header says");
    return SharedStats.fromFields(path, layout.slotCount, fields);
  } finally {
    closeSync(fd);
  }
}

/** The first `length` bytes of the file, or null when it has fewer. */
function readExactly(fd: number, length: number): Uint8Array | null {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const read = readSync(fd, bytes, done, length - done, done);
    if (read === 0) return null;
    done += read;
  }
  return bytes;
}

export function statsCommand(args: string[]): void {
  const clusters = findClusters();
  const wanted = args[0] === undefined ? undefined : Number(args[0]);
  if (wanted !== undefined && !Number.isInteger(wanted)) throw new ConfigError("pid", `must be a process id, got ${JSON.stringify(args[0])}`);
  const chosen = clusters.filter(([pid]) => wanted === undefined || pid === wanted);
  if (chosen.length === 0) {
    throw new ConfigError("stats", wanted === undefined ? "found no running reuseport cluster (/dev/shm/reuseport-*)" : `found no cluster with primary pid ${wanted}`);
  }
  let printed = 0;
  for (const [pid, path] of chosen) {
    let shared: SharedStats;
    try {
      shared = readSnapshot(path);
    } catch (error) {
      if (!(error instanceof UnreadableStats)) throw error;
      console.error(`reuseport: skipping ${path}: ${error.message}`);
      continue;
    }
    printed++;
    let workers = 0;
    for (let slot = 0; slot < shared.slotCount; slot++) {
      const fields = shared.slot(slot);
      const id = fields[F.workerId];
      if (fields[F.state] !== 0 && Number.isInteger(id) && id >= 0 && id < shared.slotCount) workers = Math.max(workers, id + 1);
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
  if (printed === 0) throw new ConfigError("stats", `could read none of ${chosen.length} stats file${chosen.length === 1 ? "" : "s"} (see above)`);
}
