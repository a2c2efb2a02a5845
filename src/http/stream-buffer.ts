// Where a streamed response body gathers between sends. Chunks that the handler's stream yields in
// one go (a microtask chain) are framed into one buffer and leave in one send at the next turn of the
// runtime's loop, or at once when the buffer is full or the body ends: one wake of the client per
// burst, not per chunk. The batch buffer cannot hold them, since other connections write into it
// while a stream waits for its next chunk.

/** Bytes of one stream buffer: what a burst of chunks gathers before it goes out. */
export const STREAM_BUFFER_BYTES = 64 * 1024;
/** Idle buffers kept for the next stream (more come and go as garbage). */
const POOL_BUFFERS_MAX = 16;
const pool: Uint8Array[] = [];

export class StreamBuffer {
  /** Bytes of `bytes` in use. */
  length = 0;
  private buffer: Uint8Array | null = null;

  /** The buffer (taken from the pool when the stream writes its first bytes). */
  get bytes(): Uint8Array {
    return (this.buffer ??= pool.pop() ?? new Uint8Array(STREAM_BUFFER_BYTES));
  }

  get room(): number {
    return STREAM_BUFFER_BYTES - this.length;
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

  /** Empties the buffer; `handedOver`: a pending queue keeps the memory, so the next write takes another. */
  clear(handedOver: boolean): void {
    this.length = 0;
    if (handedOver) this.buffer = null;
  }

  /** The stream ended: the buffer goes back to the pool. */
  release(): void {
    this.length = 0;
    if (this.buffer !== null && pool.length < POOL_BUFFERS_MAX) pool.push(this.buffer);
    this.buffer = null;
  }
}
