// A reusable recvmmsg/sendmmsg batch: natively allocated slots viewed once from JS.
// Meta per slot (48 bytes): u32 length, u32 address length, u32 flags, u32 pad, sockaddr (28), pad.
import { lib, runtime } from "../ffi/index.ts";
import { check, EAGAIN, SyscallError } from "../ffi/errno.ts";
import { ConfigError } from "../errors.ts";
import { decodeSockaddr, encodeSockaddr, type SocketAddress } from "../net/address.ts";

const META_BYTES = 48;
const ADDRESS_OFFSET = 16;
export const UDP_BATCH_COUNT_MAX = 1024;
export const UDP_SLOT_BYTES_MAX = 65536;

export class DatagramBatch {
  readonly handle: number;
  readonly data: Uint8Array;
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
    this.handle = check(lib.rp_udp_batch_create(count, slotBytes), "udp batch");
    this.data = new Uint8Array(runtime.viewNative(lib.rp_udp_batch_data(this.handle), count * slotBytes));
    const metaBuffer = runtime.viewNative(lib.rp_udp_batch_meta(this.handle), count * META_BYTES);
    this.meta = new DataView(metaBuffer);
    this.metaBytes = new Uint8Array(metaBuffer);
  }

  /** Receives up to max datagrams (never blocks); returns how many arrived. */
  receive(fd: number, max = this.count): number {
    const n = lib.rp_udp_recvmmsg(this.handle, fd, Math.min(max, this.count));
    if (n === -EAGAIN) return 0;
    if (n < 0) throw new SyscallError("recvmmsg", -n);
    return n;
  }

  /** Sends slots 0..n-1; returns how many the kernel took (0 when it would block). */
  send(fd: number, n: number): number {
    const sent = lib.rp_udp_sendmmsg(this.handle, fd, Math.min(n, this.count));
    if (sent === -EAGAIN) return 0;
    if (sent < 0) throw new SyscallError("sendmmsg", -sent);
    return sent;
  }

  length(slot: number): number {
    return this.meta.getUint32(slot * META_BYTES, true);
  }

  /** Slot bytes after a receive (a view: copy it to keep it past the next receive). */
  payload(slot: number): Uint8Array {
    const start = slot * this.slotBytes;
    return this.data.subarray(start, start + this.length(slot));
  }

  peer(slot: number): SocketAddress {
    const base = slot * META_BYTES;
    const length = this.meta.getUint32(base + 4, true);
    return decodeSockaddr(this.metaBytes.subarray(base + ADDRESS_OFFSET, base + META_BYTES), length);
  }

  /** Fills a slot for send: payload bytes and a destination (null on a connected socket). */
  set(slot: number, payload: Uint8Array, to: SocketAddress | null): void {
    if (payload.byteLength > this.slotBytes) throw new ConfigError("payload", `is ${payload.byteLength} bytes, the slot holds ${this.slotBytes}`);
    this.data.set(payload, slot * this.slotBytes);
    const base = slot * META_BYTES;
    this.meta.setUint32(base, payload.byteLength, true);
    this.setPeer(slot, to);
  }

  /** Sets only the destination, e.g. to echo a received slot back to its sender. */
  setPeer(slot: number, to: SocketAddress | null): void {
    const base = slot * META_BYTES;
    const length = to ? encodeSockaddr(to, this.scratch) : 0;
    this.metaBytes.set(this.scratch.subarray(0, 28), base + ADDRESS_OFFSET);
    this.meta.setUint32(base + 4, length, true);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    lib.rp_udp_batch_destroy(this.handle);
  }
}
