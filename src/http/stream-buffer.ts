// Where a streamed response body gathers between sends. Chunks that the handler's stream yields in
// one go (a microtask chain) are framed into one buffer and leave in one send at the next turn of the
// runtime's loop, or at once when the buffer is full or the body ends: one wake of the client per
// burst, not per chunk. The batch buffer cannot hold them, since other connections write into it
// while a stream waits for its next chunk.

/**
 * Bytes of a stream buffer: what a burst of chunks gathers before it goes out. Twice the batch buffer, so
 * a burst of 64 KiB and its framing leave in one send.
 */
const BUFFER_BYTES = 128 * 1024;
/**
 * Streams of a thread that gather into a full buffer at once (a round that starts many streams has them
 * all gathering together). Beyond that, a stream gathers into a small buffer of its own: more sends, and
 * memory that stays bounded per stream.
 */
const BUFFERS_IN_USE_MAX = 128;
/** A stream beyond BUFFERS_IN_USE_MAX gathers this much between sends. */
const SMALL_BUFFER_BYTES = 8 * 1024;
/** Idle full buffers kept for the next streams (zeroing a fresh one costs more than its bytes' copy). */
const POOL_BUFFERS_MAX = 64;
const pool: Uint8Array[] = [];
let buffersInUse = 0;

export class StreamBuffer {
  /** Bytes of `bytes` in use. */
  length = 0;
  private buffer: Uint8Array | null = null;

  /** The buffer (taken when the stream writes its first bytes). */
  get bytes(): Uint8Array {
    return (this.buffer ??= take());
  }

  get room(): number {
    return this.bytes.byteLength - this.length;
  }

  /** Copies `data` behind what the buffer holds; the caller checked room. */
  append(data: Uint8Array): void {
    this.bytes.set(data, this.length);
    this.length += data.byteLength;
  }

  /** The bytes so far (a view: valid until the next write). */
  get contents(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  /**
   * Whether a pending queue should keep the buffer itself rather than a copy of its bytes: only when they
   * fill most of it, so that what the queue counts is about what it holds.
   */
  get worthKeeping(): boolean {
    return this.length * 2 >= this.bytes.byteLength;
  }

  /** Empties the buffer; `handedOver`: a pending queue keeps the memory, so the next write takes another. */
  clear(handedOver: boolean): void {
    this.length = 0;
    if (!handedOver) return;
    if (this.buffer !== null && this.buffer.byteLength === BUFFER_BYTES) buffersInUse--;
    this.buffer = null;
  }

  /** The stream ended: a full buffer goes back to the pool. */
  release(): void {
    this.length = 0;
    const buffer = this.buffer;
    this.buffer = null;
    if (buffer === null || buffer.byteLength !== BUFFER_BYTES) return;
    buffersInUse--;
    if (pool.length < POOL_BUFFERS_MAX) pool.push(buffer);
  }
}

function take(): Uint8Array {
  if (buffersInUse >= BUFFERS_IN_USE_MAX) return new Uint8Array(SMALL_BUFFER_BYTES);
  buffersInUse++;
  return pool.pop() ?? new Uint8Array(BUFFER_BYTES);
}
