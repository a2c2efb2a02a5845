// Which socket of a reuseport group gets a new connection: the kernel hash, the SYN's CPU,
// or a user eBPF program. A program attached to any socket of the group applies to the group.
import { lib } from "../ffi/index.ts";
import { check, SyscallError } from "../ffi/errno.ts";
import { ConfigError } from "../errors.ts";
import { cpuProgram as cpuEbpf, loadProgram, PROG_TYPE_SK_REUSEPORT, PROG_TYPE_SOCKET_FILTER } from "./bpf.ts";

export interface EbpfSteering {
  /** eBPF instruction bytes (8 per instruction). */
  program: Uint8Array;
  /** "socket-filter" (returns the socket index, the default) or "sk-reuseport". */
  type?: "socket-filter" | "sk-reuseport";
}

export type Steering = "hash" | "cpu" | "cpu-ebpf" | EbpfSteering;

const ENOENT = 2;

export function checkSteering(steering: unknown, option = "balance"): Steering {
  if (steering === "hash" || steering === "cpu" || steering === "cpu-ebpf") return steering;
  if (steering && typeof steering === "object" && (steering as EbpfSteering).program instanceof Uint8Array) {
    const type = (steering as EbpfSteering).type ?? "socket-filter";
    if (type !== "socket-filter" && type !== "sk-reuseport") {
      throw new ConfigError(`${option}.type`, `must be "socket-filter" or "sk-reuseport", got ${JSON.stringify(type)}`);
    }
    return steering as EbpfSteering;
  }
  throw new ConfigError(option, `must be "hash", "cpu", "cpu-ebpf" or { program: Uint8Array }, got ${JSON.stringify(steering)}`);
}

/** Attaches steering to the group of `fd` (n sockets). "hash" detaches any program. */
export function attachSteering(fd: number, steering: Steering, groupSize: number, address?: string): void {
  if (steering === "hash") return detachSteering(fd, address);
  if (steering === "cpu") {
    if (!Number.isInteger(groupSize) || groupSize <= 0) throw new ConfigError("groupSize", "must be a positive integer");
    check(lib.rp_reuseport_attach_cbpf_cpu(fd, groupSize), "setsockopt(SO_ATTACH_REUSEPORT_CBPF)", address);
    return;
  }
  const { program, type } = steering === "cpu-ebpf"
    ? { program: cpuEbpf(groupSize), type: "socket-filter" as const }
    : steering;
  const programFd = loadProgram(type === "sk-reuseport" ? PROG_TYPE_SK_REUSEPORT : PROG_TYPE_SOCKET_FILTER, program);
  try {
    check(lib.rp_reuseport_attach_ebpf(fd, programFd), "setsockopt(SO_ATTACH_REUSEPORT_EBPF)", address);
  } finally {
    lib.rp_close(programFd); // the socket group holds its own reference
  }
}

export function detachSteering(fd: number, address?: string): void {
  const rc = lib.rp_reuseport_detach(fd);
  if (rc < 0 && -rc !== ENOENT) throw new SyscallError("setsockopt(SO_DETACH_REUSEPORT_BPF)", -rc, address);
}
