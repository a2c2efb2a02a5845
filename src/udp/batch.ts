// A reusable recvmmsg/sendmmsg batch over one buffer that JS owns (layout in zig/src/udp_batch.zig):
// per slot a 48-byte meta {u32 length, u32 address length, u32 flags, u32 pad, sockaddr (28), pad},
// then room where each call rebuilds its mmsghdrs and iovecs, then the slots' data. The native side
// keeps nothing between calls, so `data` and every view of it stay readable memory, closed or not.
import { lib } from "../ffi/index.ts";
import { EAGAIN, EBADF, SyscallError } from "../ffi/errno.ts";
import { LAYOUT } from "../ffi/symbols.ts";
import { ConfigError } from "../errors.ts";
import { decodeSockaddr, encodeSockaddr, type SocketAddress } from "../net/address.ts";
import { type DatagramPayload, payloadBytes } from "./payload.ts";

const META_BYTES = LAYOUT.udpSlotMetaBytes;
const ADDRESS_OFFSET = 16;
export const UDP_BATCH_COUNT_MAX = 1024;
export const UDP_SLOT_BYTES_MAX = 65536;
const encoder = new TextEncoder();

export class DatagramBatch {
  /** The slots' bytes: slot i at [i * slotBytes, (i + 1) * slotBytes). */
  readonly data: Uint8Array;
  /** The whole buffer, as the native calls take it. */
  private readonly buffer: Uint8Array;
  private readonly meta: DataView;
  private readonly metaBytes: Uint8Array;
  private readonly scratch = new Uint8Array(128);
  private closed = false;

  constructor(readonly count = 64, readonly slotBytes = 2048) {
    if (!Number.isInteger(count) || count <= 0 || count > UDP_BATCH_COUNT_MAX) {
      throw new ConfigError("udpBatchCount", `must be an integer from 1 to ${UDP_BATCH_COUNT_MAX}, got ${count}`);
    }
    if (!Number.isInteger(slotBytes) || slotBytes <= 0 || slotBytes > UDP_SLOT_BYTES_MAX) {
      throw new ConfigError("udpSlotBytes", `must be an integer from 1 to ${UDP_SLOT_BYTES_MAX}, got ${slotBytes}`);
    }
    const buffer = new ArrayBuffer(count * (LAYOUT.udpSlotHeaderBytes + slotBytes));
    this.buffer = new Uint8Array(buffer);
    this.meta = new DataView(buffer, 0, count * META_BYTES);
    this.metaBytes = new Uint8Array(buffer, 0, count * META_BYTES);
    this.data = new Uint8Array(buffer, count * LAYOUT.udpSlotHeaderBytes, count * slotBytes);
  }

  /** Receives up to max datagrams (never blocks); returns how many arrived. */
  receive(fd: number, max = this.count): number {
    if (this.closed) throw new SyscallError("recvmmsg", EBADF, "the batch is closed");
    const n = lib.rp_udp_receive(fd, this.buffer, this.count, this.slotBytes, Math.min(max, this.count));
    if (n === -EAGAIN) return 0;
    if (n < 0) throw new SyscallError("recvmmsg", -n);
    return n;
  }

  /** Sends slots 0..n-1; returns how many the kernel took (0 when it would block). */
  send(fd: number, n: number): number {
    if (this.closed) throw new SyscallError("sendmmsg", EBADF, "the batch is closed");
    const sent = lib.rp_udp_send(fd, this.buffer, this.count, this.slotBytes, Math.min(n, this.count));
    if (sent === -EAGAIN) return 0;
    if (sent < 0) throw new SyscallError("sendmmsg", -sent);
    return sent;
  }

  length(slot: number): number {
    return this.meta.getUint32(slot * META_BYTES, true);
  }

  /** Slot bytes after a receive (a view: the next receive overwrites it). */
  payload(slot: number): Uint8Array {
    const start = slot * this.slotBytes;
    return this.data.subarray(start, start + this.length(slot));
  }

  /**
   * Copies of slots 0..count-1 after a receive, the caller's to keep: views of one fresh buffer, so a
   * batch costs one allocation (on V8 a slice per datagram costs several times a view).
   */
  copies(count: number): Uint8Array[] {
    let total = 0;
    for (let slot = 0; slot < count; slot++) total += this.length(slot);
    const copy = new Uint8Array(total);
    const views: Uint8Array[] = new Array(count);
    let offset = 0;
    for (let slot = 0; slot < count; slot++) {
      const length = this.length(slot);
      const start = slot * this.slotBytes;
      copy.set(this.data.subarray(start, start + length), offset);
      views[slot] = copy.subarray(offset, offset + length);
      offset += length;
    }
    return views;
  }

  peer(slot: number): SocketAddress {
    const base = slot * META_BYTES;
    const length = this.meta.getUint32(base + 4, true);
    return decodeSockaddr(this.metaBytes.subarray(base + ADDRESS_OFFSET, base + META_BYTES), length);
  }

  /**
   * Fills a slot for send: a string (as UTF-8) or any BufferSource's bytes, and a destination (null on a
   * connected socket). Returns the byte length; anything else is a TypeError, a payload over slotBytes a ConfigError.
   */
  set(slot: number, payload: DatagramPayload, to: SocketAddress | null, what = "payload"): number {
    const start = slot * this.slotBytes;
    let length: number;
    if (typeof payload === "string") {
      const { read, written } = encoder.encodeInto(payload, this.data.subarray(start, start + this.slotBytes));
      if (read < payload.length) this.tooLong(encoder.encode(payload).byteLength, what);
      length = written;
    } else {
      const bytes = payloadBytes(payload, what);
      if (bytes.byteLength > this.slotBytes) this.tooLong(bytes.byteLength, what);
      this.data.set(bytes, start);
      length = bytes.byteLength;
    }
    this.meta.setUint32(slot * META_BYTES, length, true);
    this.setPeer(slot, to);
    return length;
  }

  private tooLong(byteLength: number, what: string): never {
    throw new ConfigError(what, `is ${byteLength} bytes, the slot holds ${this.slotBytes} (slotBytes)`);
  }

  /** Sets only the destination, e.g. to echo a received slot back to its sender. */
  setPeer(slot: number, to: SocketAddress | null): void {
    const base = slot * META_BYTES;
    const length = to ? encodeSockaddr(to, this.scratch) : 0;
    this.metaBytes.set(this.scratch.subarray(0, 28), base + ADDRESS_OFFSET);
    this.meta.setUint32(base + 4, length, true);
  }

  /** Ends sends and receives; the memory is the garbage collector's, so views of it stay readable. */
  close(): void {
    this.closed = true;
  }
}
