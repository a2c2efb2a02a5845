// The cluster's statistics, computed from shared memory alone (live slots + retired records),
// so the primary (stats(), metrics port) and any worker (metrics path) give the same answer.
import { readFileSync } from "node:fs";
import { COUNTER_NAMES, type CounterName, F, type SharedStats, SlotState } from "./shared-stats.ts";
import { procNetSockets, tcpExtCounters } from "../net/proc-net.ts";
import type { ControlCounters } from "./control.ts";

export interface WorkerStats {
  id: number;
  pid: number;
  threadId: number;
  cpu: number;
  state: "starting" | "listening" | "stalled" | "retiring" | "exited";
  restarts: number;
  active: number;
  /** CPU time of the worker's thread (or process) so far, from /proc: per-core balance at a glance. */
  cpuSeconds: number;
  counters: Record<CounterName, number>;
}

export interface ClusterStats {
  workers: WorkerStats[];
  totals: Record<CounterName | "active" | "restarts", number>;
  /** WebSockets open in live workers, and those a worker held when it died (lost: never closed, never counted closed). */
  webSockets: { open: number; lost: number };
  /** Connections accepted per worker: coefficient of variation and max |x - mean| / mean. */
  balance: { coefficientOfVariation: number; maxDeviation: number; alert: boolean };
  /** UDP clusters: datagrams the kernel dropped on the port's sockets (/proc/net/udp). */
  kernelDrops?: number;
  /** HTTP clusters: connections the kernel dropped before any worker could accept them (null without procfs). */
  kernel?: KernelListenStats | null;
  /** The primary's stats(): what its control socket refused (malformed lines, peers of another uid). */
  control?: ControlCounters;
}

/**
 * What the kernel refused before accept(). A SYN that finds an accept queue full is dropped, and no
 * worker sees it (the client retries, or gives up): these are the only count of those connections.
 */
export interface KernelListenStats {
  /**
   * Connections dropped because an accept queue was full (TcpExt ListenOverflows). Host-wide: every
   * listener of this network namespace, every port, since boot; compare two readings.
   */
  listenOverflows: number;
  /** SYNs dropped by a listener for any reason, overflows included (TcpExt ListenDrops); same scope. */
  listenDrops: number;
  /**
   * This port's LISTEN sockets now: connections queued for accept(), summed (/proc/net/tcp rx_queue).
   * The queues' limit is the backlog option (capped by net.core.somaxconn); /proc does not show it.
   */
  acceptQueue: number;
}

const TCP_LISTEN = "0A";

/** Reads the kernel's listen figures when stats() is called: /proc/net/netstat and /proc/net/tcp{,6}. */
export function kernelListenStats(port: number): KernelListenStats | null {
  const counters = tcpExtCounters();
  if (counters === null) return null;
  let acceptQueue = 0;
  for (const socket of procNetSockets("tcp")) {
    if (socket.localPort === port && socket.state === TCP_LISTEN) acceptQueue += socket.rxQueue;
  }
  return {
    listenOverflows: counters.get("ListenOverflows") ?? 0,
    listenDrops: counters.get("ListenDrops") ?? 0,
    acceptQueue,
  };
}

const STATES = ["exited", "starting", "listening", "retiring", "exited"] as const;
/** The seed guide's alert threshold on per-worker imbalance. */
export const BALANCE_ALERT = 0.15;
/**
 * The alert waits for this many accepted connections per worker on average: with fewer, chance alone moves a
 * worker's share by more than 15 % (one standard deviation of a random share is about 1/sqrt(n): 5 % at 400).
 */
export const BALANCE_ALERT_MIN_PER_WORKER = 400;

/** Per-worker counters (retired generations plus live slots), totals and balance. */
export function collectStats(shared: SharedStats, workerCount: number): ClusterStats {
  const workers: WorkerStats[] = [];
  const webSockets = { open: 0, lost: 0 };
  for (let id = 0; id < workerCount; id++) {
    const retired = shared.retired(id);
    webSockets.lost += retired[F.wsOpened] - retired[F.wsClosed];
    workers.push({
      id, pid: 0, threadId: 0, cpu: -1, state: "exited", restarts: retired[F.restarts], active: 0, cpuSeconds: 0,
      counters: Object.fromEntries(COUNTER_NAMES.map((n) => [n, retired[F[n]]])) as Record<CounterName, number>,
    });
  }
  for (let slot = 0; slot < shared.slotCount; slot++) {
    const fields = shared.slot(slot);
    if (fields[F.state] === SlotState.Free) continue;
    const worker = workers[fields[F.workerId]];
    if (!worker) continue;
    for (const name of COUNTER_NAMES) worker.counters[name] += fields[F[name]];
    worker.active += fields[F.active];
    webSockets.open += fields[F.wsOpened] - fields[F.wsClosed];
    if (fields[F.current] === 1) {
      worker.pid = fields[F.pid];
      worker.threadId = fields[F.threadId];
      worker.cpu = fields[F.cpu];
      worker.state = fields[F.stalled] === 1 ? "stalled" : STATES[fields[F.state]] ?? "exited";
      worker.cpuSeconds = threadCpuSeconds(worker.pid, worker.threadId);
    }
  }
  const totals = Object.fromEntries([...COUNTER_NAMES, "active", "restarts"].map((n) => [n, 0])) as ClusterStats["totals"];
  for (const w of workers) {
    for (const name of COUNTER_NAMES) totals[name] += w.counters[name];
    totals.active += w.active;
    totals.restarts += w.restarts;
  }
  return { workers, totals, webSockets, balance: balanceOf(workers.map((w) => w.counters.accepted)) };
}

const TICKS_PER_SECOND = 100; // USER_HZ, fixed at 100 for /proc on Linux

/** utime + stime of a thread from /proc/<pid>/task/<tid>/stat (0 when it is gone). */
function threadCpuSeconds(pid: number, tid: number): number {
  if (pid <= 0 || tid <= 0) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // the name may hold spaces
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Coefficient of variation and the largest relative deviation from the mean. */
export function balanceOf(values: number[]): ClusterStats["balance"] {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);
  if (mean === 0) return { coefficientOfVariation: 0, maxDeviation: 0, alert: false };
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  const coefficientOfVariation = Math.sqrt(variance) / mean;
  const maxDeviation = Math.max(...values.map((v) => Math.abs(v - mean) / mean));
  return { coefficientOfVariation, maxDeviation, alert: maxDeviation > BALANCE_ALERT && mean >= BALANCE_ALERT_MIN_PER_WORKER };
}
