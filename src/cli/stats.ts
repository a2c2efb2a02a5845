// `reuseport stats [pid | --port P] [--json]`: reads a running cluster's shared-memory counters from outside
// (the file /dev/shm/reuseport-<primary pid>-<id>, copied, never mapped or changed) and prints one line per
// worker plus the balance, or one JSON document; a file it cannot use is named on stderr and the others
// still print.
import { closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from "node:fs";
import process from "node:process";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { BALANCE_ALERT, BALANCE_ALERT_MIN_PER_WORKER, type ClusterStats, collectStats } from "../cluster/cluster-stats.ts";
import { procNetSockets } from "../net/proc-net.ts";
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

interface StatsArgs {
  pid: number | undefined;
  port: number | undefined;
  json: boolean;
}

function parseStatsArgs(args: string[]): StatsArgs {
  const parsed: StatsArgs = { pid: undefined, port: undefined, json: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--json") parsed.json = true;
    else if (arg === "--port") {
      const value = args[++i];
      if (value === undefined || !/^\d+$/.test(value) || Number(value) > 65535) throw new ConfigError("--port", `must be a port number, got ${JSON.stringify(value ?? "nothing")}`);
      parsed.port = Number(value);
    } else if (arg.startsWith("-")) throw new ConfigError(arg, "is not a reuseport stats option (<pid>, --port <n>, --json)");
    else if (parsed.pid === undefined && /^\d+$/.test(arg)) parsed.pid = Number(arg);
    else throw new ConfigError("pid", `must be a process id, got ${JSON.stringify(arg)}`);
  }
  if (parsed.pid !== undefined && parsed.port !== undefined) throw new ConfigError("stats", "takes a pid or --port, not both");
  return parsed;
}

/** The pids holding a TCP or UDP socket bound to `port`, from /proc/net and each process's fds. */
function pidsOnPort(port: number): Set<number> {
  const inodes = new Set([...procNetSockets("tcp"), ...procNetSockets("udp")].filter((s) => s.localPort === port).map((s) => `socket:[${s.inode}]`));
  const pids = new Set<number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readdirSync(`/proc/${name}/fd`).some((fd) => inodes.has(safeReadlink(`/proc/${name}/fd/${fd}`)))) pids.add(Number(name));
    } catch {
      // gone, or not ours to look at
    }
  }
  return pids;
}

function safeReadlink(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return -1;
  }
}

/** One cluster's figures; its workers' CPU is null when unpinned. */
function clusterDocument(pid: number, workers: number, stats: ClusterStats) {
  return {
    primaryPid: pid,
    workers: stats.workers.map((w) => ({ ...w, cpu: w.cpu >= 0 ? w.cpu : null })),
    totals: stats.totals,
    balance: { ...stats.balance, rule: `max deviation > ${BALANCE_ALERT} with at least ${BALANCE_ALERT_MIN_PER_WORKER} accepted connections per worker`, workers },
  };
}

export function statsCommand(args: string[]): void {
  const { pid: wanted, port, json } = parseStatsArgs(args);
  const clusters = findClusters();
  const onPort = port === undefined ? null : pidsOnPort(port);
  // A worker process holds the port's socket; its primary (the stats file's pid) is itself or its parent.
  const chosen = clusters.filter(([pid]) => (wanted === undefined || pid === wanted) && (onPort === null || onPort.has(pid) || [...onPort].some((p) => parentOf(p) === pid)));
  if (chosen.length === 0) {
    const which = wanted !== undefined ? `with primary pid ${wanted}` : port !== undefined ? `serving port ${port}` : "running (/dev/shm/reuseport-*)";
    throw new ConfigError("stats", `found no reuseport cluster ${which}`);
  }
  const documents: ReturnType<typeof clusterDocument>[] = [];
  for (const [pid, path] of chosen) {
    let shared: SharedStats;
    try {
      shared = readSnapshot(path);
    } catch (error) {
      if (!(error instanceof UnreadableStats)) throw error;
      console.error(`reuseport: skipping ${path}: ${error.message}`);
      continue;
    }
    const workers = workerCountOf(shared);
    const stats = collectStats(shared, workers);
    shared.unmap();
    documents.push(clusterDocument(pid, workers, stats));
  }
  if (documents.length === 0) throw new ConfigError("stats", `could read none of ${chosen.length} stats file${chosen.length === 1 ? "" : "s"} (see above)`);
  if (json) console.log(JSON.stringify({ clusters: documents }, null, 2));
  else for (const document of documents) printCluster(document);
}

/** Workers with a slot in use or a retired generation. */
function workerCountOf(shared: SharedStats): number {
  let workers = 0;
  for (let slot = 0; slot < shared.slotCount; slot++) {
    const fields = shared.slot(slot);
    const id = fields[F.workerId];
    if (fields[F.state] !== 0 && Number.isInteger(id) && id >= 0 && id < shared.slotCount) workers = Math.max(workers, id + 1);
    if (shared.retired(slot).some((v) => v !== 0)) workers = Math.max(workers, slot + 1);
  }
  return workers;
}

function printCluster(document: ReturnType<typeof clusterDocument>): void {
  const { balance } = document;
  const alert = balance.alert ? ` (ALERT: ${balance.rule})` : "";
  console.log(`primary ${document.primaryPid}: ${balance.workers} workers, balance cv ${balance.coefficientOfVariation.toFixed(3)} max deviation ${balance.maxDeviation.toFixed(3)}${alert}`);
  console.log("  id  pid      tid      cpu  state      restarts  active  accepted    requests    cpu-s");
  for (const w of document.workers) {
    console.log(`  ${String(w.id).padEnd(3)} ${String(w.pid).padEnd(8)} ${String(w.threadId).padEnd(8)} ${(w.cpu === null ? "-" : String(w.cpu)).padEnd(4)} ${w.state.padEnd(10)} ${String(w.restarts).padEnd(9)} ${String(w.active).padEnd(7)} ${String(w.counters.accepted).padEnd(11)} ${String(w.counters.requests).padEnd(11)} ${w.cpuSeconds.toFixed(2)}`);
  }
}
