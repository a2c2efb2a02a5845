// Process-level knobs: RLIMIT_NOFILE, CPU affinity, the cgroup CPU quota, the current CPU.
import { readFileSync } from "node:fs";
import { lib } from "./ffi/index.ts";
import { check } from "./ffi/errno.ts";
import { ConfigError } from "./errors.ts";

const limits = new Uint8Array(16);
const limitsView = new DataView(limits.buffer);

export interface FileLimit {
  soft: number;
  hard: number;
}

export function getFileLimit(): FileLimit {
  check(lib.rp_rlimit_nofile_get(limits), "prlimit64(RLIMIT_NOFILE)");
  const clamp = (v: bigint) => (v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v));
  return { soft: clamp(limitsView.getBigUint64(0, true)), hard: clamp(limitsView.getBigUint64(8, true)) };
}

/** Raises the soft RLIMIT_NOFILE to `wanted` (default: the hard limit) and returns the new limits. */
export function raiseFileLimit(wanted?: number): FileLimit {
  const current = getFileLimit();
  const target = Math.min(wanted ?? current.hard, current.hard);
  if (target <= current.soft) return current;
  limitsView.setBigUint64(0, target === Infinity ? 0xffffffffffffffffn : BigInt(target), true);
  limitsView.setBigUint64(8, current.hard === Infinity ? 0xffffffffffffffffn : BigInt(current.hard), true);
  check(lib.rp_rlimit_nofile_set(limits), "prlimit64(RLIMIT_NOFILE)");
  return getFileLimit();
}

const mask = new Uint8Array(128); // 1024 CPUs

/** The CPUs the calling thread may run on. */
export function allowedCpus(): number[] {
  check(lib.rp_affinity_get(mask, mask.byteLength), "sched_getaffinity");
  const cpus: number[] = [];
  for (let cpu = 0; cpu < mask.byteLength * 8; cpu++) if (mask[cpu >> 3] & (1 << (cpu & 7))) cpus.push(cpu);
  return cpus;
}

type ReadText = (path: string) => string | null;

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/**
 * The CPUs the cgroup's quota gives this process, rounded up (a container limited to 1.5 CPUs gets 2), or
 * null when there is no quota: cgroup v2 `cpu.max` of this cgroup and every ancestor (the tightest wins),
 * else cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`.
 */
export function cpuQuota(read: ReadText = readText): number | null {
  const membership = read("/proc/self/cgroup") ?? "";
  let tightest: number | null = null;
  const consider = (quota: number, period: number) => {
    if (quota > 0 && period > 0) tightest = Math.min(tightest ?? Infinity, Math.ceil(quota / period));
  };
  const unified = /^0::(.*)$/m.exec(membership)?.[1];
  if (unified !== undefined) {
    // From the process's cgroup up to the root: each level may cap its children.
    for (let path = unified.replace(/\/$/, ""); ; path = path.slice(0, path.lastIndexOf("/"))) {
      const [quota, period] = (read(`/sys/fs/cgroup${path}/cpu.max`) ?? "").trim().split(/\s+/);
      if (quota !== undefined && quota !== "max" && quota !== "") consider(Number(quota), Number(period));
      if (path === "") break;
    }
  }
  if (tightest !== null) return tightest;
  const v1 = /^\d+:[^:]*\bcpu\b[^:]*:(.*)$/m.exec(membership)?.[1];
  if (v1 !== undefined) {
    for (const base of [`/sys/fs/cgroup/cpu${v1}`, `/sys/fs/cgroup/cpu,cpuacct${v1}`, "/sys/fs/cgroup/cpu"]) {
      const quota = Number(read(`${base}/cpu.cfs_quota_us`)?.trim());
      const period = Number(read(`${base}/cpu.cfs_period_us`)?.trim());
      if (Number.isFinite(quota) && Number.isFinite(period)) {
        consider(quota, period);
        break;
      }
    }
  }
  return tightest;
}

/** What workers: "auto" means: the CPUs this process may run on, capped by its cgroup's CPU quota. */
export function autoWorkerCount(): number {
  const cpus = allowedCpus().length;
  const quota = cpuQuota();
  return Math.max(1, quota === null ? cpus : Math.min(cpus, quota));
}

/** Pins the calling thread (a worker's JS thread) to one CPU. */
export function pinToCpu(cpu: number): void {
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= 1024) throw new ConfigError("cpu", `must be an integer from 0 to 1023, got ${JSON.stringify(cpu)}`);
  check(lib.rp_affinity_set_cpu(cpu), "sched_setaffinity", `cpu ${cpu}`);
}

export function currentCpu(): number {
  return check(lib.rp_getcpu(), "getcpu");
}

export function threadId(): number {
  return check(lib.rp_gettid(), "gettid");
}

/** Runs fn with the calling thread pinned to cpu, then restores the previous mask. */
export function withCpu<T>(cpu: number, fn: () => T): T {
  const saved = new Uint8Array(mask.byteLength);
  check(lib.rp_affinity_get(saved, saved.byteLength), "sched_getaffinity");
  pinToCpu(cpu);
  try {
    return fn();
  } finally {
    check(lib.rp_affinity_set(saved, saved.byteLength), "sched_setaffinity");
  }
}
