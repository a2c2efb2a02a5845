// Writes one connection's responses: the head, then a static body in the same write, or a
// stream as chunks flushed as produced (with backpressure from the socket). Bytes the socket
// does not take yet wait in `pending` until EPOLLOUT.
import { lib, runtime } from "../ffi/index.ts";
import { EAGAIN } from "../ffi/errno.ts";
import { BodyMode, ResponseHeadWriter, type ResponseHeadInput } from "./response-head.ts";
import { BareTextCache } from "./bare-text-cache.ts";
import { dateCache } from "./date-cache.ts";
import { CRLF_BYTES, LAST_CHUNK_BYTES, writeChunkHeader } from "./chunked-encoder.ts";
import type { BatchOwner, SendBatch } from "./send-batch.ts";
import { SO_LINGER, SOL_SOCKET } from "../net/constants.ts";
import { fileSourceOf, type FilePlan, type FileRequest, type FileSource, NO_REQUEST, openFailureStatus, openFile, planFile } from "./files.ts";

/** Bytes waiting for the socket before a streamed body stops being read. */
const PENDING_BYTES_MAX = 256 * 1024;
const encoder = new TextEncoder();
const headWriter = new ResponseHeadWriter();
const bareTextCache = new BareTextCache();
const EMPTY = new Uint8Array(0);
/** Bytes one sendfile(2) call may move: the socket takes what fits, the rest follows on EPOLLOUT. */
const SENDFILE_CHUNK_BYTES = 1024 * 1024;
/** struct linger {l_onoff = 1, l_linger = 0}: close() then resets the connection. */
const LINGER_RESET = new Uint8Array(new Int32Array([1, 0]).buffer);

/** Whose answer a response is: a failure to send it falls back one step (SenderHost.responseFailed). */
export const enum Answer {
  Handler = 0,
  ErrorHandler = 1,
  /** The plain 500: nothing comes after it. */
  Fallback = 2,
}

/** What a sender needs of its connection. */
export interface SenderConnection {
  readonly fd: number;
  readonly closed: boolean;
  /** Close once the current response is written; a head without keep-alive sets it. */
  closeAfterResponse: boolean;
  /** When output the socket takes nothing of is cut (Deadlines.armSend); 0 while none waits. */
  sendDeadline: number;
  /** The whole response is written (into the batch, or pending). */
  onResponseDone(): void;
  /** The unsent output went under maxPendingOutputBytes. */
  onOutputDrained(): void;
  /** Closes the socket now. */
  destroy(): void;
}

/** What a sender needs of the engine its connection belongs to. */
export interface SenderHost {
  readonly batch: SendBatch;
  readonly stats: { writeErrors: number; bytesOut: number };
  readonly limits: { readonly maxPendingOutputBytes: number };
  /** Its epoll interest follows: EPOLLOUT while bytes wait. */
  updateInterest(conn: SenderConnection): void;
  /** Output waits for the socket, or the socket took some: the send timeout runs from now. */
  armSendDeadline(conn: SenderConnection): void;
  /** A response failed before its head was written (its bytes were rolled back): answer in its place. */
  responseFailed(conn: SenderConnection, error: unknown, answer: Answer): void;
  reportError(error: unknown, what: string): void;
  /** Work goes on in promises (a streamed body) until asyncEnded: the loop must not sleep in its ring. */
  asyncBegan(): void;
  asyncEnded(): void;
}

export class ResponseSender implements BatchOwner {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private drainWaiters: (() => void)[] = [];
  /** The request being answered (Answers sets it): a file body's conditions and Range are its. */
  request: FileRequest = NO_REQUEST;
  /** A file body waits for the socket to take more (sendfile said EAGAIN with nothing pending). */
  private fileWaiter: (() => void) | null = null;
  private closing = false;
  private isHead = false;
  private versionMinor: 0 | 1 = 1;
  private readonly head: ResponseHeadInput = {
    status: 200, reason: null, headers: [], headerCount: 0, bodyLength: 0,
    requestVersionMinor: 1, requestKeepAlive: true, requestIsHead: false,
  };
  private readonly headerList: string[] = [];
  /** Where the last head was written in the batch buffer. */
  private headStart = 0;
  private readonly batch: SendBatch;

  constructor(private readonly conn: SenderConnection, private readonly host: SenderHost) {
    this.batch = host.batch;
  }

  get fd(): number {
    return this.conn.fd;
  }

  begin(isHead: boolean, versionMinor: 0 | 1): void {
    this.isHead = isHead;
    this.versionMinor = versionMinor;
  }

  /**
   * Sends a Response; completes synchronously when the body is static. Never throws: a failure before the
   * head is written is rolled back and handed to SenderHost.responseFailed (a 500, or the error handler's
   * answer, takes its place); one after it cuts the connection.
   */
  send(response: Response, answer: Answer = Answer.Handler): void {
    if (this.conn.closed) return;
    const file = fileSourceOf(response);
    if (file !== null) this.sendFile(response, file, answer);
    else this.sendBody(response, answer);
  }

  private sendBody(response: Response, answer: Answer): void {
    const mark = this.batch.length;
    let written: boolean;
    try {
      written = this.writeStatic(response);
    } catch (error) {
      this.headFailed(error, answer, mark);
      return;
    }
    if (written) {
      this.finish();
      return;
    }
    const host = this.host;
    host.asyncBegan(); // the body's reads continue in promises
    void this.sendStream(response, answer).finally(() => host.asyncEnded());
  }

  /** Writes a response whose body is at hand into the batch; false when the body is a stream. */
  private writeStatic(response: Response): boolean {
    const bare = runtime.bareBody(response);
    if (bare !== undefined) {
      // `new Response(body)` with no init: status 200 and no headers, so neither is read.
      if (typeof bare === "string") this.sendBareText(bare);
      else if (this.writeHead(null, bare.byteLength) === BodyMode.ContentLength) this.append(bare);
      return true;
    }
    const body = runtime.staticBody(response);
    if (body === undefined) return false;
    if (typeof body === "string") this.sendText(response, body);
    else {
      const bytes = body === null ? EMPTY : body;
      if (this.writeHead(response, bytes.byteLength) === BodyMode.ContentLength) this.append(bytes);
    }
    return true;
  }

  /**
   * A failure before the head went out: what this response wrote into the batch since `mark` (a head cut
   * short) is dropped, so the batch stays whole, and the host answers in its place.
   */
  private headFailed(error: unknown, answer: Answer, mark: number): void {
    this.batch.rollBack(mark);
    this.host.responseFailed(this.conn, error, answer);
  }

  /**
   * A failure after the head went out cannot be told in HTTP/1.1 framing: the connection is cut (a chunked
   * body then lacks its last chunk), counted as a write error. A body that the close ends (HTTP/1.0) is
   * reset instead, or the client would take what came for the whole of it.
   */
  private cut(error: unknown, mode: BodyMode): void {
    const conn = this.conn;
    if (conn.closed) return;
    this.host.stats.writeErrors++;
    this.host.reportError(error, "response body failed after its head was sent; connection cut:");
    if (mode === BodyMode.UntilClose) lib.rp_setsockopt_bytes(conn.fd, SOL_SOCKET, SO_LINGER, LINGER_RESET, LINGER_RESET.byteLength);
    conn.destroy();
  }

  /**
   * `new Response(text)` to a keep-alive HTTP/1.1 request that is not HEAD: the whole response (head with
   * Date, and body) is the same bytes as the last one with this text in the same second, so copy those.
   */
  private sendBareText(text: string): void {
    const conn = this.conn;
    if (text.length > SHORT_TEXT_MAX || this.versionMinor !== 1 || this.isHead || conn.closeAfterResponse) {
      this.sendText(null, text);
      return;
    }
    const batch = this.batch;
    const second = Math.floor(batch.now() / 1000);
    const cached = bareTextCache.get(text, second);
    if (cached !== null) {
      this.append(cached);
      return;
    }
    this.sendText(null, text);
    // The bytes from the head's start are this response's unless a flush already sent part of them.
    if (batch.length > this.headStart && !conn.closeAfterResponse) {
      bareTextCache.set(text, dateCache.second, batch.buffer.slice(this.headStart, batch.length));
    }
  }

  /**
   * A string body, encoded as UTF-8 straight into the batch (no Uint8Array per response): a short
   * ASCII string is copied code unit by code unit behind the head; a longer one is encoded into a
   * scratch area first (its byte length goes into the head); only a huge one is encoded on its own.
   */
  private sendText(response: Response | null, text: string): void {
    const length = text.length;
    if (length <= SHORT_TEXT_MAX && isAscii(text)) {
      if (this.writeHead(response, length, true) === BodyMode.ContentLength) this.appendAscii(text);
      return;
    }
    if (length * 3 <= textScratch.byteLength) {
      const written = encoder.encodeInto(text, textScratch).written;
      // The head is written into the batch buffer, never into textScratch, so the bytes stay put.
      if (this.writeHead(response, written, true) === BodyMode.ContentLength) this.append(textScratch.subarray(0, written));
      return;
    }
    const bytes = encoder.encode(text);
    if (this.writeHead(response, bytes.byteLength, true) === BodyMode.ContentLength) this.append(bytes);
  }

  /** append() for a string whose code units are all < 0x80 (so one byte each). */
  private appendAscii(text: string): void {
    const batch = this.batch;
    const out = batch.buffer;
    const start = batch.length;
    const length = text.length;
    if (length > out.byteLength - start) {
      this.append(encoder.encode(text));
      return;
    }
    for (let i = 0; i < length; i++) out[start + i] = text.charCodeAt(i);
    batch.length = start + length;
  }

  /** A protocol-level error answer (the connection closes after it). */
  sendError(status: number, code: string, reason: string, versionMinor: 0 | 1): void {
    this.versionMinor = versionMinor;
    this.isHead = false;
    const text = encoder.encode(`${status} ${reason} (${code})\n`);
    this.fillHead(status, null, text.byteLength);
    this.headerList.push("Content-Type", "text/plain;charset=utf-8");
    this.head.headerCount = 1;
    this.encodeHead();
    this.append(text);
    this.finish();
  }

  /** The whole head + body now sit in the batch buffer or in pending. */
  private finish(): void {
    if (!this.conn.closed) this.conn.onResponseDone();
  }

  private fillHead(status: number, reason: string | null, bodyLength: number): void {
    const head = this.head;
    head.status = status;
    head.reason = reason;
    head.bodyLength = bodyLength;
    head.requestVersionMinor = this.versionMinor;
    head.requestKeepAlive = !this.conn.closeAfterResponse;
    head.requestIsHead = this.isHead;
    this.headerList.length = 0;
    head.headers = this.headerList;
    head.headerCount = 0;
  }

  /**
   * Writes the head into the batch; returns how the body must be framed. `text`: the body was given as a
   * string, which the Fetch standard types text/plain;charset=UTF-8 unless the handler said otherwise
   * (a runtime's Response may or may not show that header before it is sent: it is added when missing).
   */
  private writeHead(response: Response | null, bodyLength: number, text = false): BodyMode {
    const list = this.headerList;
    if (response === null) {
      this.fillHead(200, null, bodyLength); // a bare Response (runtime.bareBody)
    } else {
      this.fillHead(response.status, response.statusText || null, bodyLength);
      headerSink = list;
      response.headers.forEach(collectHeader);
      headerSink = NO_SINK;
    }
    if (text && !hasContentType(list)) list.push("content-type", "text/plain;charset=utf-8");
    this.head.headerCount = list.length >> 1;
    return this.encodeHead();
  }

  private encodeHead(): BodyMode {
    const batch = this.batch;
    const nowMs = batch.roundNow || undefined; // the round's clock for the Date header
    this.headStart = batch.length;
    let end = headWriter.write(batch.buffer, this.headStart, this.head, nowMs);
    if (end < 0) {
      this.flushNow();
      this.headStart = batch.length;
      end = headWriter.write(batch.buffer, this.headStart, this.head, nowMs);
      if (end < 0) throw new RangeError("response head is larger than the write buffer");
    }
    batch.length = end;
    if (!headWriter.keepAlive) this.conn.closeAfterResponse = true;
    return headWriter.bodyMode;
  }

  /** Adds bytes after what the batch holds; large bodies go straight out behind it. */
  private append(bytes: Uint8Array): void {
    const batch = this.batch;
    const room = batch.buffer.byteLength - batch.length;
    if (bytes.byteLength <= room) {
      batch.buffer.set(bytes, batch.length);
      batch.length += bytes.byteLength;
      return;
    }
    this.flush();
    this.write(bytes);
  }

  /**
   * Ends this connection's output for now: what it wrote since its segment began (every response of one
   * pass) joins the send batch, which leaves at the end of the poll round (at once outside one).
   */
  flush(): void {
    const batch = this.batch;
    const start = batch.segmentStart;
    const end = batch.length;
    if (end === start) return;
    if (this.conn.closed || this.pendingBytes > 0) {
      if (!this.conn.closed) this.queue(batch.buffer.slice(start, end)); // behind what waits already
      batch.length = start;
      return;
    }
    batch.queue(this, start, end);
  }

  /** flush(), and the batch goes out now: the buffer is free again, and nothing batched is behind later bytes. */
  private flushNow(): void {
    this.flush();
    this.batch.flush();
  }

  /**
   * A send of bytes[offset, offset + length) returned `result`: all of it went, or the rest waits in the
   * pending queue for EPOLLOUT, or (an error: the client left) the connection closes, and only it pays.
   */
  afterSend(result: number, bytes: Uint8Array, offset: number, length: number): void {
    const conn = this.conn;
    if (conn.closed) return;
    if (result < 0 && result !== -EAGAIN) {
      this.host.stats.writeErrors++;
      conn.destroy(); // EPIPE/ECONNRESET
      return;
    }
    const written = Math.max(result, 0);
    this.host.stats.bytesOut += written;
    if (written < length) this.queue(bytes.slice(offset + written, offset + length));
  }

  /** Bytes outside the batch, e.g. "100 Continue" while the handler runs. */
  writeRaw(bytes: Uint8Array): void {
    this.flush();
    this.write(bytes);
  }

  /** Sends bytes[0, length) after the batch; what the socket does not take is copied into the pending queue. */
  private write(bytes: Uint8Array, length = bytes.byteLength): void {
    this.batch.flush();
    if (this.conn.closed) return;
    if (this.pendingBytes > 0) {
      this.queue(bytes.slice(0, length));
      return;
    }
    this.afterSend(lib.rp_send(this.conn.fd, bytes, 0, length), bytes, 0, length);
  }

  private queue(bytes: Uint8Array): void {
    this.pending.push(bytes);
    this.pendingBytes += bytes.byteLength;
    if (this.pending.length === 1) {
      this.host.updateInterest(this.conn);
      this.host.armSendDeadline(this.conn); // output waits now: the send timeout runs
    }
  }

  get wantsWritable(): boolean {
    return this.pendingBytes > 0 || this.fileWaiter !== null;
  }

  /** Bytes written for this connection that the socket has not taken yet. */
  get unsentBytes(): number {
    return this.pendingBytes;
  }

  /** EPOLLOUT: push pending bytes; wake streams waiting for room; close if that was owed. */
  onWritable(): void {
    if (this.pending.length === 0) {
      this.wakeFile();
      return; // else a stale event: nothing waits
    }
    const conn = this.conn;
    const host = this.host;
    let progressed = false;
    while (this.pending.length > 0) {
      const chunk = this.pending[0];
      const n = lib.rp_send(conn.fd, chunk, 0, chunk.byteLength);
      if (n === -EAGAIN) break;
      if (n < 0) {
        host.stats.writeErrors++;
        conn.destroy(); // EPIPE/ECONNRESET
        return;
      }
      progressed = true;
      host.stats.bytesOut += n;
      this.pendingBytes -= n;
      if (n < chunk.byteLength) {
        this.pending[0] = chunk.subarray(n);
        break;
      }
      this.pending.shift();
    }
    if (this.pending.length > 0) {
      if (progressed) host.armSendDeadline(conn); // the socket took bytes: the client is reading
      if (this.pendingBytes <= host.limits.maxPendingOutputBytes) conn.onOutputDrained();
      return;
    }
    conn.sendDeadline = 0;
    host.updateInterest(conn);
    this.wakeFile();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
    if (this.closing) conn.destroy();
    else conn.onOutputDrained();
  }

  private waitForRoom(): Promise<void> {
    if (this.pendingBytes < PENDING_BYTES_MAX || this.conn.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Closes once everything written so far reached the socket. */
  closeWhenFlushed(): void {
    this.flushNow();
    if (this.conn.closed) return;
    if (this.pendingBytes === 0) this.conn.destroy();
    else this.closing = true;
  }

  /** The connection is gone: release stream waiters. */
  abort(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.wakeFile();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * A file body (files.ts): opened now, answered by the request's conditions (304, 206, 416) when the
   * response is a 200, its head written into the batch, its bytes sent by sendfile(2) from the page cache
   * to the socket. A file that cannot be opened is 404 (403 when it may not be read).
   */
  private sendFile(response: Response, source: FileSource, answer: Answer): void {
    const opened = openFile(source);
    if (typeof opened === "number") {
      const status = openFailureStatus(-opened);
      const text = status === 404 ? "Not Found" : "Forbidden";
      this.send(new runtime.FastResponse(text, { status, headers: { "content-type": "text/plain;charset=utf-8" } }), answer);
      return;
    }
    if (source.size !== undefined && source.size !== opened.size) {
      lib.rp_close(opened.fd); // a slice of the file: its bytes come through the body's stream
      this.sendBody(response, answer);
      return;
    }
    const plan: FilePlan = response.status === 200
      ? planFile(opened, this.request, response.headers.get("content-type"), source.path)
      : { status: response.status as 200, headers: [], offset: 0, length: opened.size };
    const mark = this.batch.length;
    let mode: BodyMode;
    try {
      mode = this.writeFileHead(response, plan);
    } catch (error) {
      lib.rp_close(opened.fd);
      this.headFailed(error, answer, mark);
      return;
    }
    if (mode !== BodyMode.ContentLength || plan.length === 0) {
      lib.rp_close(opened.fd);
      this.finish();
      return;
    }
    const host = this.host;
    host.asyncBegan();
    void this.streamFile(opened.fd, plan.offset, plan.length).finally(() => {
      lib.rp_close(opened.fd);
      host.asyncEnded();
    });
  }

  private writeFileHead(response: Response, plan: FilePlan): BodyMode {
    const list = this.headerList;
    this.fillHead(plan.status, plan.status === response.status ? response.statusText || null : null, plan.length);
    headerSink = list;
    response.headers.forEach(collectHeader);
    headerSink = NO_SINK;
    for (const [name, value] of plan.headers) if (!hasHeader(list, name)) list.push(name, value);
    this.head.headerCount = list.length >> 1;
    return this.encodeHead();
  }

  /** The head goes out, then the file's bytes straight from the file; EAGAIN waits for EPOLLOUT. */
  private async streamFile(fd: number, offset: number, length: number): Promise<void> {
    const conn = this.conn;
    const host = this.host;
    this.flushNow();
    while (length > 0 && !conn.closed) {
      if (this.pendingBytes > 0) {
        await new Promise<void>((resolve) => this.drainWaiters.push(resolve)); // the head, or a part of it, waits
        continue;
      }
      const sent = lib.rp_sendfile(conn.fd, fd, Math.floor(offset / 2 ** 32), offset >>> 0, Math.min(length, SENDFILE_CHUNK_BYTES));
      if (sent > 0) {
        offset += sent;
        length -= sent;
        host.stats.bytesOut += sent;
        continue;
      }
      if (sent === -EAGAIN) {
        host.armSendDeadline(conn);
        await new Promise<void>((resolve) => {
          this.fileWaiter = resolve;
          host.updateInterest(conn);
        });
        continue;
      }
      // 0: the file shrank under us; < 0: the client left, or the file failed. Either way the body is cut.
      host.stats.writeErrors++;
      conn.destroy();
      return;
    }
    conn.sendDeadline = 0;
    if (!conn.closed) this.finish();
  }

  private wakeFile(): void {
    const wake = this.fileWaiter;
    if (wake === null) return;
    this.fileWaiter = null;
    if (!this.conn.closed) this.host.updateInterest(this.conn);
    wake();
  }

  /** A body of unknown length: one chunk then end means a fixed length, otherwise chunked. */
  private async sendStream(response: Response, answer: Answer): Promise<void> {
    const conn = this.conn;
    const batch = this.batch;
    let reader: ReadableStreamDefaultReader<unknown> | null = null;
    let mark = batch.length;
    /** The head is in the batch: from here on a failure can only cut the connection. */
    let headOut = false;
    let mode = BodyMode.None;
    try {
      reader = response.body!.getReader(); // throws for a locked stream (and Bun's file streams, for a missing file)
      const first = await reader.read();
      const firstBytes = first.done ? EMPTY : toBytes(first.value);
      const second = first.done ? first : await reader.read();
      if (conn.closed) {
        cancel(reader);
        return;
      }
      mark = batch.length;
      if (second.done || this.isHead) {
        // One chunk then end: a fixed length. A HEAD answer of unknown length: headers only.
        if (!second.done) cancel(reader);
        const bytes = second.done ? firstBytes : null;
        mode = this.writeHead(response, bytes ? bytes.byteLength : -1);
        headOut = true;
        if (mode === BodyMode.ContentLength && bytes) this.append(bytes);
        this.flush();
        this.finish();
        return;
      }
      const secondBytes = toBytes(second.value);
      mode = this.writeHead(response, -1);
      headOut = true;
      this.writeBodyChunk(mode, firstBytes);
      this.writeBodyChunk(mode, secondBytes);
      this.flush();
      while (!conn.closed) {
        await this.waitForRoom();
        if (conn.closed) break;
        const next = await reader.read();
        if (next.done || conn.closed) break;
        this.writeBodyChunk(mode, toBytes(next.value));
        this.flush();
      }
      if (conn.closed) {
        cancel(reader);
        return;
      }
      if (mode === BodyMode.Chunked) this.append(LAST_CHUNK_BYTES);
      this.flush();
      this.finish();
    } catch (error) {
      if (reader !== null) cancel(reader, error);
      if (headOut) this.cut(error, mode);
      else this.headFailed(error, answer, mark);
    }
  }

  private writeBodyChunk(mode: BodyMode, bytes: Uint8Array): void {
    if (bytes.byteLength === 0 || mode === BodyMode.None) return;
    if (mode === BodyMode.Chunked) {
      const batch = this.batch;
      if (batch.buffer.byteLength - batch.length < 32) this.flushNow();
      batch.length = writeChunkHeader(batch.buffer, batch.length, bytes.byteLength);
      this.append(bytes);
      this.append(CRLF_BYTES);
      return;
    }
    this.append(bytes); // UntilClose (HTTP/1.0): raw bytes, the close ends the body
  }
}

/** Strings up to this length are checked for ASCII and copied by a loop (cheaper than a native encode call). */
const SHORT_TEXT_MAX = 256;
/** encodeInto target for longer strings (UTF-8 needs at most 3 bytes per UTF-16 code unit). */
const textScratch = new Uint8Array(64 * 1024);

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Header names from forEach are lower case. */
function hasContentType(list: string[]): boolean {
  return hasHeader(list, "content-type");
}

function hasHeader(list: string[], name: string): boolean {
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return true;
  return false;
}

// response.headers.forEach's callback, allocated once: it appends to the list writeHead points it at.
const NO_SINK: string[] = [];
let headerSink: string[] = NO_SINK;
function collectHeader(value: string, name: string): void {
  headerSink.push(name, value);
}

/** Cancels a body we stop reading; a cancel that rejects is of no further interest. */
function cancel(reader: ReadableStreamDefaultReader<unknown>, reason?: unknown): void {
  reader.cancel(reason).catch(() => {});
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === "string") return encoder.encode(chunk);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`response body chunks must be bytes or strings, got ${typeof chunk}`);
}
