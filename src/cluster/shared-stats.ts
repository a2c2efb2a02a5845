// Per-worker counters in shared memory: one file in /dev/shm mapped by the primary and by every
// worker (threads and processes alike). Each worker instance owns one slot and is its only
// writer, except the fields src/counters.ts marks as the primary's. Layout version 5: a
// 64-byte header {version, slots, fd bitmap bytes}, slots of SLOT_FIELDS (48) f64, one retired record (as large)
// per worker id holding what exited generations counted, then one bitmap of open connection fds
// per slot (for thread workers: a dead thread's fds are the process's; the primary closes them).
import { unlinkSync } from "node:fs";
import { lib, runtime } from "../ffi/index.ts";
import { errnoName, SyscallError } from "../ffi/errno.ts";
import { F, SLOT_FIELDS } from "../counters.ts";

export { COUNTER_NAMES, type CounterName, F, SLOT_FIELDS } from "../counters.ts";

export const STATS_VERSION = 5;
const HEADER_FIELDS = 8;

export const HEARTBEAT_MS = 10;

export const enum SlotState {
  Free = 0,
  Starting = 1,
  Listening = 2,
  Retiring = 3,
  Exited = 4,
}

export class SharedStats {
  readonly fields: Float64Array;
  private readonly bitmaps: Uint8Array;
  private constructor(
    readonly path: string,
    readonly slotCount: number,
    readonly fdBitmapBytes: number,
    private readonly bytes: number,
    private readonly pointer: unknown,
    buffer: ArrayBuffer,
  ) {
    const fieldsBytes = SharedStats.fieldsBytesFor(slotCount);
    this.fields = new Float64Array(buffer, 0, fieldsBytes / 8);
    this.bitmaps = new Uint8Array(buffer, fieldsBytes, slotCount * fdBitmapBytes);
  }

  static bytesFor(slotCount: number, fdBitmapBytes: number): number {
    return SharedStats.fieldsBytesFor(slotCount) + slotCount * fdBitmapBytes;
  }

  /** The header and every slot and retired record: what a reader of counters needs (no fd bitmaps). */
  static fieldsBytesFor(slotCount: number): number {
    return (HEADER_FIELDS + 2 * slotCount * SLOT_FIELDS) * 8;
  }

  /** What a stats file's first 64 bytes declare, or null when they are not this layout version's header. */
  static headerOf(header: Uint8Array): { slotCount: number; fdBitmapBytes: number } | null {
    if (header.byteLength < HEADER_FIELDS * 8) return null;
    const fields = new Float64Array(header.slice(0, HEADER_FIELDS * 8).buffer);
    const [version, slotCount, fdBitmapBytes] = fields;
    if (version !== STATS_VERSION || !Number.isInteger(slotCount) || slotCount <= 0 || !Number.isInteger(fdBitmapBytes) || fdBitmapBytes < 0) return null;
    return { slotCount, fdBitmapBytes };
  }

  /** A copy of a stats file's fields (fieldsBytesFor bytes) read from outside (reuseport stats):
   * nothing is mapped, so unmap() does nothing, and it has no fd bitmaps. */
  static fromFields(path: string, slotCount: number, fields: Uint8Array): SharedStats {
    const bytes = SharedStats.fieldsBytesFor(slotCount);
    if (fields.byteLength !== bytes) throw new RangeError(`stats fields of ${slotCount} slots are ${bytes} bytes, got ${fields.byteLength}`);
    return new SharedStats(path, slotCount, 0, bytes, null, fields.slice().buffer);
  }

  /** Maps (creating when absent) the stats file; the primary creates, workers attach. */
  static map(path: string, slotCount: number, fdBitmapBytes: number): SharedStats {
    const bytes = SharedStats.bytesFor(slotCount, fdBitmapBytes);
    const pathBytes = new TextEncoder().encode(path + "\0");
    const errorOut = new Uint8Array(4);
    const pointer = lib.rp_shm_map(pathBytes, pathBytes.byteLength - 1, bytes, errorOut);
    if (pointer === null || pointer === 0) {
      const errno = -new DataView(errorOut.buffer).getInt32(0, true);
      throw new SyscallError("mmap", errno, path, `shared stats ${errnoName(errno)}`);
    }
    const stats = new SharedStats(path, slotCount, fdBitmapBytes, bytes, pointer, runtime.viewNative(pointer as never, bytes));
    const header = stats.fields;
    if (header[0] === 0) {
      header[0] = STATS_VERSION;
      header[1] = slotCount;
      header[2] = fdBitmapBytes;
    } else if (header[0] !== STATS_VERSION || header[1] !== slotCount || header[2] !== fdBitmapBytes) {
      throw new Error(`reuseport: ${path} has stats layout ${header[0]}/${header[1]}/${header[2]}, expected ${STATS_VERSION}/${slotCount}/${fdBitmapBytes}`);
    }
    return stats;
  }

  /** A view of one slot's fields (what a worker's engine counts into). */
  slot(index: number): Float64Array {
    if (!Number.isInteger(index) || index < 0 || index >= this.slotCount) throw new RangeError(`stats slot ${index} out of range`);
    const start = HEADER_FIELDS + index * SLOT_FIELDS;
    return this.fields.subarray(start, start + SLOT_FIELDS);
  }

  /** What the exited generations of worker `id` counted (the primary folds slots in here). */
  retired(id: number): Float64Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.slotCount) throw new RangeError(`worker id ${id} out of range`);
    const start = HEADER_FIELDS + (this.slotCount + id) * SLOT_FIELDS;
    return this.fields.subarray(start, start + SLOT_FIELDS);
  }

  /** The slot's bitmap of open connection fds (bit fd set while the worker holds it open). */
  fdBitmap(index: number): Uint8Array {
    return this.bitmaps.subarray(index * this.fdBitmapBytes, (index + 1) * this.fdBitmapBytes);
  }

  unmap(): void {
    if (this.pointer === null) return; // a copy (fromFields)
    lib.rp_shm_unmap(this.pointer as never, this.bytes);
  }

  /** Removes the file (primary, at exit); mappings stay valid until unmapped. */
  remove(): void {
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}
