// A request body as a ReadableStream with backpressure: the connection pushes bytes as they
// arrive and stops reading the socket while the stream's queue is full; a pull resumes it.

/** Bytes queued in a body stream before the socket stops being read. */
export const BODY_QUEUE_BYTES_MAX = 256 * 1024;
/** What one queued chunk costs beyond its bytes (the Uint8Array and the queue's entry): counted against the
 * queue, so many tiny chunks stop the reading as surely as a few big ones. */
export const BODY_CHUNK_OVERHEAD_BYTES = 64;

export interface BodySink {
  /** The consumer wants more: resume reading the socket (and send 100 Continue if owed). */
  onPull(): void;
  /** The consumer cancelled the stream: discard the rest. */
  onCancel(): void;
  /** The body ended or failed (called once): nothing of it waits for JS any more. */
  onSettled(): void;
}

export class RequestBody {
  readonly stream: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  /** Bytes received so far. */
  received = 0;
  finished = false;
  cancelled = false;
  pulled = false;

  constructor(private readonly sink: BodySink) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: () => {
          this.pulled = true;
          this.sink.onPull();
        },
        cancel: () => {
          this.cancelled = true;
          this.sink.onCancel();
        },
      },
      { highWaterMark: BODY_QUEUE_BYTES_MAX, size: (chunk) => BODY_CHUNK_OVERHEAD_BYTES + (chunk?.byteLength ?? 0) },
    );
  }

  /** Queues a copy of bytes; returns false when the consumer is saturated (stop reading). */
  push(bytes: Uint8Array): boolean {
    this.received += bytes.byteLength;
    if (this.cancelled || this.finished) return true;
    this.controller.enqueue(bytes);
    return (this.controller.desiredSize ?? 1) > 0;
  }

  wantsMore(): boolean {
    return this.cancelled || (this.controller.desiredSize ?? 1) > 0;
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.cancelled) this.controller.close();
    this.sink.onSettled();
  }

  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.cancelled) this.controller.error(error);
    this.sink.onSettled();
  }
}
