// A request body. The connection feeds it the bytes as they arrive; it gathers them in memory and hands
// them whole to a body reader (text(), json(), ...) once the body ends, with no ReadableStream between.
// What came with the head is fed before the handler runs, so a body that arrived whole is answered at once;
// the handler is never held back waiting for a body (a slow sender delays only the reader's promise, within
// bodyTimeoutMs per gap). A stream with backpressure is made only when the handler takes request.body.

/** Bytes held for a body that no consumer has taken yet, and the stream's queue: above it the socket stops being read. */
export const BODY_QUEUE_BYTES_MAX = 256 * 1024;
/** What one queued chunk costs beyond its bytes (the Uint8Array and the queue's entry): counted against the
 * queue, so many tiny chunks stop the reading as surely as a few big ones. */
export const BODY_CHUNK_OVERHEAD_BYTES = 64;
/**
 * A Content-Length body up to this size is gathered into one array of its exact length, made when its first
 * bytes come: one copy out of the read buffer, and arrayBuffer() hands that array over as it is. Larger or
 * chunked bodies are gathered chunk by chunk, so a client that declares much and sends little holds only
 * what it sent; this bound is what a declared length alone can make a connection allocate (the read buffer's size).
 */
export const BODY_WHOLE_BYTES_MAX = 64 * 1024;

export interface BodySink {
  /** The consumer wants more: resume reading the socket (and send 100 Continue if owed). */
  onPull(): void;
  /** The consumer cancelled the stream: discard the rest. */
  onCancel(): void;
  /** The body ended or failed (called once): nothing of it waits for JS any more. */
  onSettled(): void;
}

/** A body reader waiting for the body's end: it gets the bytes through its decode. */
interface PendingRead {
  decode: (bytes: Uint8Array) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

const NO_SINK: BodySink = { onPull() {}, onCancel() {}, onSettled() {} };

export class RequestBody {
  /** Bytes received so far. */
  received = 0;
  finished = false;
  cancelled = false;
  readonly #sink: BodySink;
  /** The declared Content-Length, or -1 (chunked). */
  readonly #length: number;
  /** The body in one array of #length bytes (BODY_WHOLE_BYTES_MAX), filled up to `received`. */
  #whole: Uint8Array | null = null;
  #chunks: Uint8Array[] | null = null;
  #chunkBytes = 0;
  #error: unknown = null;
  /** A body reader took the bytes (bodyUsed). */
  #taken = false;
  #pending: PendingRead | null = null;
  #stream: ReadableStream<Uint8Array> | null = null;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;

  constructor(sink: BodySink, length: number) {
    this.#sink = sink;
    this.#length = length;
  }

  /** A body that is a stream already (the second branch of a clone's tee). */
  static ofStream(stream: ReadableStream<Uint8Array>): RequestBody {
    const body = new RequestBody(NO_SINK, -1);
    body.#stream = stream;
    body.finished = true;
    return body;
  }

  /**
   * Takes bytes (copied unless `owned`: the caller's view is only valid during the call); returns false when
   * nobody consumes them and the queue is full (stop reading).
   */
  push(bytes: Uint8Array, owned: boolean): boolean {
    const at = this.received;
    this.received += bytes.byteLength;
    if (this.cancelled || this.finished) return true;
    const controller = this.#controller;
    if (controller !== null) {
      controller.enqueue(owned ? bytes : bytes.slice());
      return (controller.desiredSize ?? 1) > 0;
    }
    if (this.#length >= 0 && this.#length <= BODY_WHOLE_BYTES_MAX) {
      if (at === 0 && bytes.byteLength === this.#length) this.#whole = owned ? bytes : bytes.slice();
      else (this.#whole ??= new Uint8Array(this.#length)).set(bytes, at);
      return true;
    }
    (this.#chunks ??= []).push(owned ? bytes : bytes.slice());
    this.#chunkBytes += BODY_CHUNK_OVERHEAD_BYTES + bytes.byteLength;
    return this.#pending !== null || this.#chunkBytes < BODY_QUEUE_BYTES_MAX;
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const pending = this.#pending;
    if (this.#controller !== null) {
      if (!this.cancelled) this.#controller.close();
    } else if (pending !== null) {
      this.#pending = null;
      settle(pending, this.#takeBytes());
    }
    this.#sink.onSettled();
  }

  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.#error = error;
    this.#whole = null;
    this.#chunks = null;
    const pending = this.#pending;
    if (this.#controller !== null) {
      if (!this.cancelled) this.#controller.error(error);
    } else if (pending !== null) {
      this.#pending = null;
      pending.reject(error);
    }
    this.#sink.onSettled();
  }

  /** The body ended in an error (cut, too large, a bad chunk), not at its end. */
  get failed(): boolean {
    return this.#error !== null;
  }

  /** The handler took request.body, or a reader took the bytes. */
  get used(): boolean {
    return this.#stream !== null ? this.#stream.locked : this.#taken;
  }

  /** request.body was taken: readers go through the stream. */
  get streamed(): boolean {
    return this.#stream !== null;
  }

  /** The bytes, decoded, once the body has ended: one reader, once (a second is a TypeError, as bodyUsed). */
  read<T>(decode: (bytes: Uint8Array) => T): Promise<T> {
    if (this.#taken || this.#stream !== null) return Promise.reject(new TypeError("Body already used"));
    this.#taken = true;
    if (this.finished) {
      if (this.#error !== null) return Promise.reject(this.#error);
      try {
        return Promise.resolve(decode(this.#takeBytes()));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const promise = new Promise<T>((resolve, reject) => {
      this.#pending = { decode, resolve: resolve as (value: unknown) => void, reject };
    });
    this.#sink.onPull();
    return promise;
  }

  /** The whole body if it has ended and nothing took it (a native Request can hold it as bytes), else null. */
  bytesIfWhole(): Uint8Array | null {
    if (!this.finished || this.#error !== null || this.#taken || this.#stream !== null) return null;
    this.#taken = true;
    return this.#takeBytes();
  }

  /** request.body: a stream made on first use, holding what came so far and then the rest, with backpressure. */
  get stream(): ReadableStream<Uint8Array> {
    return (this.#stream ??= this.#taken ? usedStream() : this.#openStream());
  }

  #openStream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          if (this.#whole !== null) controller.enqueue(this.#whole.subarray(0, this.received));
          for (const chunk of this.#chunks ?? []) controller.enqueue(chunk);
          this.#whole = null;
          this.#chunks = null;
          if (this.#error !== null) controller.error(this.#error);
          else if (this.finished) controller.close();
          else this.#controller = controller;
        },
        pull: () => this.#sink.onPull(),
        cancel: () => {
          this.cancelled = true;
          this.#sink.onCancel();
        },
      },
      { highWaterMark: BODY_QUEUE_BYTES_MAX, size: (chunk) => BODY_CHUNK_OVERHEAD_BYTES + (chunk?.byteLength ?? 0) },
    );
  }

  /** What was gathered, as one array (dropped here: its taker owns it). */
  #takeBytes(): Uint8Array {
    const whole = this.#whole;
    const chunks = this.#chunks;
    this.#whole = null;
    this.#chunks = null;
    if (whole !== null) return whole;
    if (chunks === null) return new Uint8Array(0);
    if (chunks.length === 1) return chunks[0];
    const joined = new Uint8Array(this.received);
    let at = 0;
    for (const chunk of chunks) {
      joined.set(chunk, at);
      at += chunk.byteLength;
    }
    return joined;
  }
}

function settle(pending: PendingRead, bytes: Uint8Array): void {
  let value: unknown;
  try {
    value = pending.decode(bytes);
  } catch (error) {
    pending.reject(error);
    return;
  }
  pending.resolve(value);
}

/** request.body after a reader took the bytes: locked, as the platform's is (reading it is a TypeError). */
function usedStream(): ReadableStream<Uint8Array> {
  const stream = new ReadableStream<Uint8Array>();
  stream.getReader();
  return stream;
}
