// Process-level knobs: RLIMIT_NOFILE, CPU affinity, the current CPU.
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
