// BPF for reuseport steering: a tiny eBPF assembler, program/map loading with the verifier
// log, and the programs we ship. Struct sk_reuseport_md has no socket index field: an index is
// returned by a SOCKET_FILTER program (or classic BPF), while an SK_REUSEPORT program picks a
// socket with bpf_sk_select_reuseport() from a REUSEPORT_SOCKARRAY map and returns SK_PASS.
import { lib } from "../ffi/index.ts";
import { errnoName } from "../ffi/errno.ts";
import { BpfError } from "../errors.ts";

export const PROG_TYPE_SOCKET_FILTER = 1;
export const PROG_TYPE_SK_REUSEPORT = 21;
export const MAP_TYPE_ARRAY = 2;
export const MAP_TYPE_REUSEPORT_SOCKARRAY = 20;

/** Kernel helper ids (include/uapi/linux/bpf.h, __BPF_FUNC_MAPPER order). */
export const HELPER_MAP_LOOKUP_ELEM = 1;
export const HELPER_GET_SMP_PROCESSOR_ID = 8;
export const HELPER_SK_SELECT_REUSEPORT = 82;

/** Builds eBPF instruction bytes: {u8 code, u8 dst|src<<4, i16 off, i32 imm}, little endian. */
export class Assembler {
  private readonly words: number[][] = [];

  raw(code: number, dst: number, src: number, off: number, imm: number): this {
    this.words.push([code, (dst & 0xf) | ((src & 0xf) << 4), off, imm]);
    return this;
  }
  movImm(dst: number, imm: number): this { return this.raw(0xb7, dst, 0, 0, imm); }
  movReg(dst: number, src: number): this { return this.raw(0xbf, dst, src, 0, 0); }
  modImm(dst: number, imm: number): this { return this.raw(0x97, dst, 0, 0, imm); }
  addImm(dst: number, imm: number): this { return this.raw(0x07, dst, 0, 0, imm); }
  call(helper: number): this { return this.raw(0x85, 0, 0, 0, helper); }
  exit(): this { return this.raw(0x95, 0, 0, 0, 0); }
  /** r[dst] = map fd, as the two-slot ld_imm64 with BPF_PSEUDO_MAP_FD. */
  loadMapFd(dst: number, mapFd: number): this { return this.raw(0x18, dst, 1, 0, mapFd).raw(0, 0, 0, 0, 0); }
  /** *(u32 *)(r[dst] + off) = imm */
  storeWordImm(dst: number, off: number, imm: number): this { return this.raw(0x62, dst, 0, off, imm); }
  /** r[dst] = *(u32 *)(r[src] + off) */
  loadWord(dst: number, src: number, off: number): this { return this.raw(0x61, dst, src, off, 0); }
  /** if r[dst] == imm goto +off */
  jumpEqImm(dst: number, imm: number, off: number): this { return this.raw(0x15, dst, 0, off, imm); }
  /** if r[dst] >= r[src] (unsigned) goto +off */
  jumpGeReg(dst: number, src: number, off: number): this { return this.raw(0x3d, dst, src, off, 0); }
  jump(off: number): this { return this.raw(0x05, 0, 0, off, 0); }

  get length(): number {
    return this.words.length;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.words.length * 8);
    const view = new DataView(out.buffer);
    this.words.forEach(([code, regs, off, imm], i) => {
      view.setUint8(i * 8, code);
      view.setUint8(i * 8 + 1, regs);
      view.setInt16(i * 8 + 2, off, true);
      view.setInt32(i * 8 + 4, imm, true);
    });
    return out;
  }
}

/** Verifier log size when a load failed and we ask again for the reason. */
const LOG_BYTES = 1024 * 1024;

function bpfFailure(what: string, rc: number, log: string): BpfError {
  const code = errnoName(-rc);
  const reason = code === "EPERM"
    ? `${what} EPERM: loading BPF programs needs root or CAP_BPF (kernel.unprivileged_bpf_disabled)`
    : `${what} ${code}: the kernel refused the program`;
  return new BpfError(code, reason, log);
}

/** Loads a program; throws BpfError with the verifier log on failure. Returns the program fd. */
export function loadProgram(type: number, instructions: Uint8Array): number {
  if (instructions.byteLength === 0 || instructions.byteLength % 8 !== 0) {
    throw new BpfError("EINVAL", `BPF program must be a non-empty multiple of 8 bytes, got ${instructions.byteLength}`, "");
  }
  // Without a log first: a verbose log of a large (valid) program can overflow any buffer (ENOSPC).
  const count = instructions.byteLength / 8;
  const fd = lib.rp_bpf_prog_load(type, instructions, count, NO_LOG, 0);
  if (fd >= 0) return fd;
  const log = new Uint8Array(LOG_BYTES);
  const again = lib.rp_bpf_prog_load(type, instructions, count, log, LOG_BYTES);
  if (again >= 0) return again; // a transient failure the second try did not see
  const end = log.indexOf(0);
  throw bpfFailure("bpf(BPF_PROG_LOAD)", fd, new TextDecoder().decode(log.subarray(0, end < 0 ? LOG_BYTES : end)).trim());
}

export function createMap(type: number, keyBytes: number, valueBytes: number, entriesMax: number): number {
  const fd = lib.rp_bpf_map_create(type, keyBytes, valueBytes, entriesMax);
  if (fd < 0) throw bpfFailure("bpf(BPF_MAP_CREATE)", fd, "");
  return fd;
}

const NO_LOG = new Uint8Array(0);
const key32 = new Uint8Array(4);
const value64 = new Uint8Array(8);

/** map[key] = value (u32 key; value of 4 or 8 bytes, e.g. a socket fd for a SOCKARRAY). */
export function updateMap(mapFd: number, key: number, value: number | bigint, valueBytes: 4 | 8 = 4): void {
  new DataView(key32.buffer).setUint32(0, key, true);
  const view = new DataView(value64.buffer);
  if (valueBytes === 8) view.setBigUint64(0, BigInt(value), true);
  else view.setUint32(0, Number(value), true);
  const rc = lib.rp_bpf_map_update(mapFd, key32, value64.subarray(0, valueBytes), 0);
  if (rc < 0) throw bpfFailure("bpf(BPF_MAP_UPDATE_ELEM)", rc, "");
}

/** A SOCKET_FILTER program that returns `cpu % n`: the socket index for the SYN's CPU. */
export function cpuProgram(groupSize: number): Uint8Array {
  return new Assembler().call(HELPER_GET_SMP_PROCESSOR_ID).modImm(0, groupSize).exit().bytes();
}

/** A SOCKET_FILTER program that always returns `index`. */
export function constantProgram(index: number): Uint8Array {
  return new Assembler().movImm(0, index).exit().bytes();
}

