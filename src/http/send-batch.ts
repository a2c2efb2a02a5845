// The responses of one poll round, sent together: connections write their bytes into one shared
// buffer, each connection's stretch becomes an entry {fd, offset, length, result}, and one
// rp_send_batch call at the round's end sends them back to back (one FFI crossing per round); it writes each
// entry's result (bytes taken, or -errno).
import { lib } from "../ffi/index.ts";
import { LAYOUT } from "../ffi/symbols.ts";

const BUFFER_BYTES = 64 * 1024;
/** Sends a round may hold before they go out early (each is one entry of LAYOUT.sendEntryBytes). */
const ENTRIES_MAX = 512;

/** Whose bytes an entry is: told what the socket took when the batch goes out. */
export interface BatchOwner {
  readonly fd: number;
  /** A send of buffer[offset, offset + length) returned `result` (bytes taken, or -errno). */
  afterSend(result: number, buffer: Uint8Array, offset: number, length: number): void;
}

export class SendBatch {
  readonly buffer: Uint8Array = new Uint8Array(BUFFER_BYTES);
  /**
   * Bytes of buffer in use: the round's queued responses, then from segmentStart those of the connection now
   * producing output (its ResponseSender.flush queues them). 0 between rounds.
   */
  length = 0;
  segmentStart = 0;
  /**
   * The poll round's clock (PollLoop.now; 0 outside a round): deadlines and the Date header of the round's
   * responses use it instead of reading the clock per request, and sends wait in the batch while it is set.
   * Work outside a round (async handlers, timers) reads the clock itself, so a stale value never reaches a
   * deadline.
   */
  roundNow = 0;
  private readonly entryBytes = new Uint8Array(LAYOUT.sendEntryBytes * ENTRIES_MAX);
  private readonly entries = new Int32Array(this.entryBytes.buffer);
  private readonly owners: (BatchOwner | undefined)[] = new Array(ENTRIES_MAX).fill(undefined);
  private count = 0;

  /** @param onSent counts the bytes that went out whole (a short send's bytes are its owner's to count). */
  constructor(private readonly onSent: (bytes: number) => void) {}

  /** The clock of the round (Date.now() outside one). */
  now(): number {
    return this.roundNow || Date.now();
  }

  beginRound(now: number): void {
    this.roundNow = now;
  }

  endRound(): void {
    this.roundNow = 0;
    this.flush();
  }

  /**
   * Adds buffer[start, end) for owner. Inside a poll round the batch leaves at the round's end; outside one,
   * or when full, it leaves now.
   */
  queue(owner: BatchOwner, start: number, end: number): void {
    const i = this.count;
    const entries = this.entries;
    // The same owner's bytes right behind its last entry (WebSocket frames written one by one) join it: one send.
    if (i > 0 && this.owners[i - 1] === owner && entries[4 * i - 3] + entries[4 * i - 2] === start) {
      entries[4 * i - 2] += end - start;
      this.segmentStart = end;
      if (this.roundNow === 0) this.flush();
      return;
    }
    entries[4 * i] = owner.fd;
    entries[4 * i + 1] = start;
    entries[4 * i + 2] = end - start;
    this.owners[i] = owner;
    this.count = i + 1;
    this.segmentStart = end;
    if (this.roundNow === 0 || i + 1 === ENTRIES_MAX) this.flush();
  }

  /**
   * Sends the batch in one call; a short send or an error goes to its owner (ResponseSender.afterSend). Bytes of
   * a connection still producing output (after segmentStart) move to the buffer's start.
   */
  flush(): void {
    const count = this.count;
    if (count === 0) return;
    this.count = 0;
    const entries = this.entries;
    const owners = this.owners;
    lib.rp_send_batch(this.buffer, this.entryBytes, count);
    let sent = 0;
    for (let i = 0; i < count; i++) {
      const owner = owners[i]!;
      owners[i] = undefined;
      const length = entries[4 * i + 2]!;
      const result = entries[4 * i + 3]!;
      if (result === length) sent += length;
      else owner.afterSend(result, this.buffer, entries[4 * i + 1]!, length);
    }
    this.onSent(sent);
    const open = this.length - this.segmentStart;
    if (open > 0 && this.segmentStart > 0) this.buffer.copyWithin(0, this.segmentStart, this.length);
    this.segmentStart = 0;
    this.length = open;
  }

  /** Whether owner has bytes queued that have not gone out yet (its later bytes must not pass them). */
  holds(owner: BatchOwner): boolean {
    const owners = this.owners;
    for (let i = this.count - 1; i >= 0; i--) if (owners[i] === owner) return true;
    return false;
  }

  /** Drops what was written since `mark` (a head cut short by a failure), if it is still in the open segment. */
  rollBack(mark: number): void {
    if (mark >= this.segmentStart && mark < this.length) this.length = mark;
  }
}
