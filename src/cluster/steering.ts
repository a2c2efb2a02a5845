// Cluster steering programs. Each worker's socket sits at index = worker id in a
// REUSEPORT_SOCKARRAY map, and an SK_REUSEPORT program picks the index:
//  - "cpu": the CPU that handles the SYN, mod n (worker i is pinned to CPU i);
//  - "least-connections": the smallest count in a shared ARRAY map. The program adds 1 to the
//    chosen worker's count when it picks it (so a stalled worker that stops accepting still
//    looks busy) and the worker subtracts 1 when the connection ends, through a mmap of the map.
// If the chosen index is empty (a worker restarting), the program returns SK_PASS without a
// selection and the kernel falls back to its hash over the sockets that are there.
import { lib, runtime } from "../ffi/index.ts";
import {
  Assembler, createMap, HELPER_GET_SMP_PROCESSOR_ID, HELPER_MAP_LOOKUP_ELEM, HELPER_SK_SELECT_REUSEPORT, loadProgram, MAP_TYPE_ARRAY, MAP_TYPE_REUSEPORT_SOCKARRAY,
  PROG_TYPE_SK_REUSEPORT, PROG_TYPE_SOCKET_FILTER, updateMap,
} from "../net/bpf.ts";
import { BpfError, ConfigError } from "../errors.ts";
import { check } from "../ffi/errno.ts";

/** How a cluster steers new connections to its workers (the `balance` option). */
export type ClusterSteering = "hash" | "cpu" | "least-connections" | { program: Uint8Array };

const BPF_F_MMAPABLE = 1 << 10;
const SK_PASS = 1;
export const WORKERS_MAX_BPF = 64;

/** Checks the `balance` option of a cluster. */
export function checkClusterSteering(steering: unknown, option = "balance"): ClusterSteering {
  if (steering === undefined) return "hash";
  if (steering === "hash" || steering === "cpu" || steering === "least-connections") return steering;
  if (steering && typeof steering === "object" && (steering as { program?: unknown }).program instanceof Uint8Array) {
    return steering as { program: Uint8Array };
  }
  throw new ConfigError(option, `must be "hash", "cpu", "least-connections" or { program: Uint8Array }, got ${JSON.stringify(steering)}`);
}

/** r1..r4 for bpf_sk_select_reuseport(ctx = r6, sockarray, &key at r10-4, 0); then return SK_PASS. */
function selectAndPass(asm: Assembler, sockarrayFd: number): Assembler {
  return asm
    .movReg(1, 6)
    .loadMapFd(2, sockarrayFd)
    .movReg(3, 10)
    .addImm(3, -4)
    .movImm(4, 0)
    .call(HELPER_SK_SELECT_REUSEPORT)
    .movImm(0, SK_PASS)
    .exit();
}

/** key = cpu % n. */
export function cpuSelectProgram(sockarrayFd: number, workers: number): Uint8Array {
  const asm = new Assembler()
    .movReg(6, 1)
    .call(HELPER_GET_SMP_PROCESSOR_ID)
    .modImm(0, workers)
    .raw(0x63, 10, 0, -4, 0); // *(u32 *)(r10 - 4) = r0
  return selectAndPass(asm, sockarrayFd).bytes();
}

/**
 * key = argmin load[i] over i < n (signed compare, so a count that drifted below zero is
 * picked and corrected), then load[key] += 1 atomically, then select. Unrolled per worker;
 * r7 = best index, r8 = best load, r9 = pointer to the best count (0 while none).
 */
export function leastConnectionsProgram(sockarrayFd: number, loadFd: number, workers: number): Uint8Array {
  const asm = new Assembler().movReg(6, 1).movImm(7, 0).movImm(8, 0x7fffffff).movImm(9, 0);
  for (let i = 0; i < workers; i++) {
    asm.storeWordImm(10, -4, i)
      .loadMapFd(1, loadFd)
      .movReg(2, 10)
      .addImm(2, -4)
      .call(HELPER_MAP_LOOKUP_ELEM)
      .jumpEqImm(0, 0, 7) // no value: next worker
      .loadWord(1, 0, 0) // r1 = load[i]
      .raw(0x67, 1, 0, 0, 32) // r1 <<= 32
      .raw(0xc7, 1, 0, 0, 32) // r1 s>>= 32: sign-extend the u32 count
      .raw(0x7d, 1, 8, 3, 0) // if r1 s>= r8 goto +3
      .movReg(8, 1)
      .movImm(7, i)
      .movReg(9, 0);
  }
  asm.jumpEqImm(9, 0, 10) // nothing found: pass without a selection (kernel hash)
    .movImm(1, 1)
    .raw(0xc3, 9, 1, 0, 0) // lock *(u32 *)(r9 + 0) += r1
    .raw(0x63, 10, 7, -4, 0); // *(u32 *)(r10 - 4) = r7
  return selectAndPass(asm, sockarrayFd).bytes();
}

/** The maps and program a cluster's steering needs; created by the primary, shared with workers. */
export interface SteeringSetup {
  kind: "cpu" | "least-connections" | "custom";
  sockarrayFd: number;
  programFd: number;
  loadFd: number;
  workers: number;
}

/** Creates the SOCKARRAY (and load map) and loads the program; throws BpfError without privilege. */
export function createSteering(steering: Exclude<ClusterSteering, "hash">, workers: number): SteeringSetup {
  if (workers > WORKERS_MAX_BPF) throw new ConfigError("workers", `must be at most ${WORKERS_MAX_BPF} with balance ${JSON.stringify(steering)}`);
  const sockarrayFd = createMap(MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 8, workers);
  let loadFd = -1;
  try {
    let program: Uint8Array;
    let kind: SteeringSetup["kind"];
    if (steering === "cpu") {
      kind = "cpu";
      program = cpuSelectProgram(sockarrayFd, workers);
    } else if (steering === "least-connections") {
      kind = "least-connections";
      loadFd = check(lib.rp_bpf_map_create_flags(MAP_TYPE_ARRAY, 4, 4, workers, BPF_F_MMAPABLE), "bpf(BPF_MAP_CREATE)");
      program = leastConnectionsProgram(sockarrayFd, loadFd, workers);
    } else {
      kind = "custom";
      program = steering.program;
    }
    // Custom programs are SOCKET_FILTER programs returning a socket index (no map needed).
    const programFd = loadProgram(kind === "custom" ? PROG_TYPE_SOCKET_FILTER : PROG_TYPE_SK_REUSEPORT, program);
    return { kind, sockarrayFd, programFd, loadFd, workers };
  } catch (error) {
    lib.rp_close(sockarrayFd);
    if (loadFd >= 0) lib.rp_close(loadFd);
    throw error;
  }
}

export function closeSteering(setup: SteeringSetup): void {
  for (const fd of [setup.sockarrayFd, setup.programFd, setup.loadFd]) if (fd >= 0) lib.rp_close(fd);
}

/** ARRAY map elements are 8-byte aligned: a 4-byte count sits every 2 int32s in the mmap. */
const LOAD_STRIDE = 2;

/** The least-connections counts, through a mmap of the map (no syscall per update). */
export class LoadCounters {
  private readonly counts: Int32Array;
  constructor(loadFd: number, workers: number) {
    const bytes = Math.max(4096, Math.ceil((workers * 8) / 4096) * 4096);
    const pointer = lib.rp_bpf_map_mmap(loadFd, bytes);
    if (pointer === null || pointer === 0) throw new BpfError("EINVAL", "mmap of the least-connections load map failed", "");
    this.counts = new Int32Array(runtime.viewNative(pointer, bytes));
  }
  get(worker: number): number {
    return Atomics.load(this.counts, worker * LOAD_STRIDE);
  }
  set(worker: number, value: number): void {
    Atomics.store(this.counts, worker * LOAD_STRIDE, value);
  }
  /** A connection of `worker` ended (the program counted it when it chose the worker). */
  release(worker: number): void {
    Atomics.sub(this.counts, worker * LOAD_STRIDE, 1);
  }
}

/** Puts a worker's listening socket at its index; custom SOCKET_FILTER programs need no map. */
export function joinSteering(setup: SteeringSetup, workerId: number, listenerFd: number): void {
  if (setup.kind !== "custom") updateMap(setup.sockarrayFd, workerId, listenerFd, 8);
  check(lib.rp_reuseport_attach_ebpf(listenerFd, setup.programFd), "setsockopt(SO_ATTACH_REUSEPORT_EBPF)");
}
