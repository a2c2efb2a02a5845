// Writes one connection's responses: the head, then a static body in the same write, or a
// stream as chunks gathered per burst (with backpressure from the socket). A small body is copied
// into the send batch behind its head; a large one leaves in one writev with the head, straight
// from the handler's bytes (or from the one UTF-8 encoding of its string). Bytes the socket does
// not take yet wait in `pending` until EPOLLOUT.
import { lib, runtime } from "../ffi/index.ts";
import { EAGAIN } from "../ffi/errno.ts";
import { BodyMode, ResponseHeadWriter, type ResponseHeadInput } from "./response-head.ts";
import { BareTextCache } from "./bare-text-cache.ts";
import { dateCache } from "./date-cache.ts";
import { CRLF_BYTES, LAST_CHUNK_BYTES, writeChunkHeader } from "./chunked-encoder.ts";
import type { BatchOwner, SendBatch } from "./send-batch.ts";
import { StreamBuffer } from "./stream-buffer.ts";
import { encodeText } from "./text-scratch.ts";
import { SO_LINGER, SOL_SOCKET } from "../net/constants.ts";
import { fileSourceOf, type FilePlan, type FileRequest, type FileSource, NO_REQUEST, openFailureStatus, openFile, planFile } from "./files.ts";
import { plainResponse } from "./fast-response.ts";

/** Bytes waiting for the socket before a streamed body stops being read. */
const PENDING_BYTES_MAX = 256 * 1024;
/**
 * Bodies (and stream chunks) of at least this many bytes are not copied into a buffer of ours: they
 * leave in a writev behind the bytes before them. Below it a copy costs less than a call of its own.
 */
const DIRECT_BODY_BYTES_MIN = 8 * 1024;
/** Room a chunk's framing needs: hex size and CRLF before the data, CRLF after (or the last chunk). */
const CHUNK_FRAMING_BYTES_MAX = 32;
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
  /** A streamed body's bytes since its last send (see stream-buffer.ts). */
  private readonly stream = new StreamBuffer();
  private streamSendScheduled = false;

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
      else if (this.writeHead(null, bare.byteLength, runtime.impliedContentType(response)) === BodyMode.ContentLength) this.append(bare);
      return true;
    }
    const body = runtime.staticBody(response);
    if (body === undefined) return false;
    if (typeof body === "string") this.sendText(response, body);
    else {
      const bytes = body === null ? EMPTY : body;
      if (this.writeHead(response, bytes.byteLength, runtime.impliedContentType(response)) === BodyMode.ContentLength) this.append(bytes);
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
   * A string body, encoded as UTF-8 once: a short ASCII string is copied code unit by code unit behind the
   * head; a longer one below DIRECT_BODY_BYTES_MIN is encoded straight into the batch when it is ASCII;
   * any other is encoded into the text scratch (its byte length goes into the head) and sent from there.
   */
  private sendText(response: Response | null, text: string): void {
    const length = text.length;
    if (length <= SHORT_TEXT_MAX && isAscii(text)) {
      if (this.writeHead(response, length, TEXT_PLAIN) === BodyMode.ContentLength) this.appendAscii(text);
      return;
    }
    if (length < DIRECT_BODY_BYTES_MIN && this.sendAsciiInBatch(response, text)) return;
    const bytes = encodeText(text);
    if (this.writeHead(response, bytes.byteLength, TEXT_PLAIN) === BodyMode.ContentLength) this.append(bytes);
  }

  /**
   * Writes the head as for an ASCII body, then encodes the string right behind it, into exactly its length:
   * encodeInto reads all of it only when every code unit took one byte. False (nothing written) when the
   * string is not ASCII or does not fit, and for a head without a body (whose length then needs the UTF-8).
   */
  private sendAsciiInBatch(response: Response | null, text: string): boolean {
    const batch = this.batch;
    const length = text.length;
    if (this.isHead) return false; // its Content-Length is the UTF-8 length, whether or not the string is ASCII
    if (batch.buffer.byteLength - batch.length < length + HEAD_BYTES_TYPICAL) this.flushNow(); // the buffer is free again
    const mode = this.writeHead(response, length, TEXT_PLAIN);
    const start = batch.length;
    if (mode === BodyMode.ContentLength && batch.buffer.byteLength - start >= length) {
      const result = encoder.encodeInto(text, batch.buffer.subarray(start, start + length));
      if (result.read === length) {
        batch.length = start + length;
        return true;
      }
    }
    batch.rollBack(this.headStart); // the head's own start: writing it may have flushed the batch
    return false;
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
   * Writes the head into the batch; returns how the body must be framed. `implied`: the Content-Type the body
   * kind has unless the handler said otherwise (a string is text/plain;charset=UTF-8 by the Fetch standard;
   * runtime.impliedContentType says what the runtime's own server sends for the rest): a runtime's Response
   * may or may not show that header before it is sent, so it is added when missing.
   */
  private writeHead(response: Response | null, bodyLength: number, implied: string | null = null): BodyMode {
    const list = this.headerList;
    if (response === null) {
      this.fillHead(200, null, bodyLength); // a bare Response (runtime.bareBody)
    } else {
      this.fillHead(response.status, response.statusText || null, bodyLength);
      headerSink = list;
      response.headers.forEach(collectHeader);
      headerSink = NO_SINK;
    }
    if (implied !== null && !hasContentType(list)) list.push("content-type", implied);
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

  /** Bytes behind what the batch holds: copied into it when small, else sent from where they are. */
  private append(bytes: Uint8Array): void {
    const batch = this.batch;
    if (bytes.byteLength < DIRECT_BODY_BYTES_MIN && bytes.byteLength <= batch.buffer.byteLength - batch.length) {
      batch.buffer.set(bytes, batch.length);
      batch.length += bytes.byteLength;
      return;
    }
    this.sendAfterSegment(bytes);
  }

  /**
   * This connection's bytes in the batch since its segment began (the head, and earlier responses of this
   * pass) and then `body`, in one writev now. Bytes of ours still queued in the batch go out first.
   */
  private sendAfterSegment(body: Uint8Array): void {
    const batch = this.batch;
    if (batch.holds(this)) batch.flush(); // the open segment moves to the buffer's start
    const start = batch.segmentStart;
    const end = batch.length;
    batch.length = start;
    this.sendPair(batch.buffer.subarray(start, end), body, true);
  }

  /**
   * Sends `first` then `second` in one writev; what the socket does not take waits in the pending queue, as
   * a copy (the bytes are the batch's, the scratch's or the handler's, and may change), except that
   * `first` is kept as it is when `copyFirst` is false (the caller hands its memory over). Returns whether
   * part of `first` was kept. writev has no MSG_NOSIGNAL; Bun and Deno ignore SIGPIPE, so a peer that left
   * is EPIPE here as it is for send().
   */
  private sendPair(first: Uint8Array, second: Uint8Array, copyFirst: boolean): boolean {
    const conn = this.conn;
    if (conn.closed) return false;
    const firstLength = first.byteLength;
    let written = 0;
    if (this.pendingBytes === 0) {
      const result = firstLength === 0
        ? lib.rp_send(conn.fd, second, 0, second.byteLength)
        : lib.rp_writev2(conn.fd, first, firstLength, second, second.byteLength);
      if (result < 0 && result !== -EAGAIN) {
        this.host.stats.writeErrors++;
        conn.destroy(); // EPIPE/ECONNRESET
        return false;
      }
      written = Math.max(result, 0);
      this.host.stats.bytesOut += written;
    }
    let kept = false;
    if (written < firstLength) {
      this.queue(copyFirst ? first.slice(written) : first.subarray(written));
      kept = !copyFirst;
    }
    const secondWritten = Math.max(written - firstLength, 0);
    if (secondWritten < second.byteLength) this.queue(second.slice(secondWritten));
    return kept;
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

  /**
   * An upgraded connection's output (a WebSocket frame: its header, then its payload), behind what was written
   * before: copied into the send batch when small, else one writev of what the batch holds and the payload.
   */
  writeUpgraded(header: Uint8Array, headerLength: number, payload: Uint8Array): void {
    if (this.conn.closed) return;
    const batch = this.batch;
    const room = batch.buffer.byteLength - batch.length;
    if (headerLength <= room) {
      batch.buffer.set(headerLength === header.byteLength ? header : header.subarray(0, headerLength), batch.length);
      batch.length += headerLength;
    } else this.sendAfterSegment(header.slice(0, headerLength));
    if (payload.byteLength > 0) this.append(payload);
    this.flush();
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
      this.send(plainResponse(text, status), answer);
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
      let next: ReturnType<typeof reader.read> | null = first.done ? null : reader.read();
      // A second chunk (or the end) at hand within one turn of the loop: a body that ends there gets a
      // Content-Length. Not yet: the first chunk goes now, chunked (an event stream's first event must not
      // wait for its second).
      const second = next === null ? first : await withinTurn(next);
      if (conn.closed) {
        cancel(reader);
        return;
      }
      mark = batch.length;
      if (this.isHead || second?.done) {
        // One chunk then end: a fixed length. A HEAD answer of unknown length: headers only.
        if (!second?.done) cancel(reader);
        const bytes = second?.done ? firstBytes : null;
        mode = this.writeHead(response, bytes ? bytes.byteLength : -1, runtime.impliedContentType(response));
        headOut = true;
        if (mode === BodyMode.ContentLength && bytes) this.append(bytes);
        this.flush();
        this.finish();
        return;
      }
      mode = this.writeHead(response, -1, runtime.impliedContentType(response));
      headOut = true;
      this.beginStreamBody();
      this.streamChunk(mode, firstBytes);
      if (second !== null) {
        this.streamChunk(mode, toBytes(second.value));
        next = null;
      }
      this.streamSoon();
      while (!conn.closed) {
        await this.waitForRoom();
        if (conn.closed) break;
        const chunk = await (next ?? reader.read());
        next = null;
        if (chunk.done || conn.closed) break;
        this.streamChunk(mode, toBytes(chunk.value));
        this.streamSoon();
      }
      if (conn.closed) {
        cancel(reader);
        return;
      }
      if (mode === BodyMode.Chunked) this.streamBytes(LAST_CHUNK_BYTES);
      this.streamOut();
      this.finish();
    } catch (error) {
      if (reader !== null) cancel(reader, error);
      if (headOut) {
        this.streamOut(); // what the stream gave before it failed, as it would have gone without gathering
        this.cut(error, mode);
      } else this.headFailed(error, answer, mark);
    } finally {
      this.stream.release();
    }
  }

  /** The stream's head (and whatever this connection has in the batch) moves into the stream buffer. */
  private beginStreamBody(): void {
    const batch = this.batch;
    if (batch.holds(this)) batch.flush(); // the open segment moves to the buffer's start
    const start = batch.segmentStart;
    const end = batch.length;
    batch.length = start;
    const segment = batch.buffer.subarray(start, end);
    if (segment.byteLength <= this.stream.room) this.stream.append(segment);
    else this.sendPair(segment, EMPTY, true);
  }

  /** One chunk of a streamed body, framed, into the stream buffer; a large one goes out behind what gathered. */
  private streamChunk(mode: BodyMode, bytes: Uint8Array): void {
    const size = bytes.byteLength;
    if (size === 0 || mode === BodyMode.None) return;
    const stream = this.stream;
    if (stream.room < CHUNK_FRAMING_BYTES_MAX) this.streamOut();
    if (mode === BodyMode.Chunked) stream.length = writeChunkHeader(stream.bytes, stream.length, size);
    if (size >= DIRECT_BODY_BYTES_MIN || size > stream.room - CHUNK_FRAMING_BYTES_MAX) this.streamOut(bytes);
    else stream.append(bytes);
    if (mode === BodyMode.Chunked) stream.append(CRLF_BYTES); // UntilClose (HTTP/1.0): raw bytes, the close ends the body
  }

  /** Small framing bytes into the stream buffer. */
  private streamBytes(bytes: Uint8Array): void {
    if (this.stream.room < bytes.byteLength) this.streamOut();
    this.stream.append(bytes);
  }

  /** What the stream buffer holds, then `data`, goes out now (one writev). */
  private streamOut(data: Uint8Array = EMPTY): void {
    const stream = this.stream;
    if (stream.length === 0 && data.byteLength === 0) return;
    if (this.batch.holds(this)) this.batch.flush(); // bytes of ours queued in the batch go first
    const kept = this.sendPair(stream.contents, data, !stream.worthKeeping);
    stream.clear(kept);
  }

  /** The gathered bytes leave at the next turn of the runtime's loop, after the chunks the stream has ready. */
  private streamSoon(): void {
    if (this.streamSendScheduled || this.stream.length === 0) return;
    this.streamSendScheduled = true;
    gatheredSenders.push(this);
    if (gatheredSenders.length === 1) runtime.schedule(sendGathered);
  }

  /** sendGathered's turn for this sender. */
  sendGatheredNow(): void {
    this.streamSendScheduled = false;
    try {
      if (!this.conn.closed) this.streamOut();
    } catch (error) {
      this.host.reportError(error, "sending a streamed body failed:"); // the other senders of the turn still go
    }
  }
}

// Senders whose streams gathered bytes since the last turn of the runtime's loop: one scheduled call sends
// them all (a setImmediate costs microseconds on Deno, more than a send's share of a burst).
let gatheredSenders: ResponseSender[] = [];
function sendGathered(): void {
  const senders = gatheredSenders;
  gatheredSenders = [];
  for (const sender of senders) sender.sendGatheredNow();
}

/** What a string body is, unless the handler said otherwise (the Fetch standard). */
const TEXT_PLAIN = "text/plain;charset=utf-8";
/** Strings up to this length are checked for ASCII and copied by a loop (cheaper than a native encode call). */
const SHORT_TEXT_MAX = 256;
/** Head bytes that sendAsciiInBatch makes room for before writing one (a longer head still fits, or falls back). */
const HEAD_BYTES_TYPICAL = 512;

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

/** The read's result if it settles within one turn of the event loop, else null (the read goes on). */
function withinTurn<T>(read: Promise<T>): Promise<T | null> {
  return Promise.race([read, new Promise<null>((resolve) => runtime.schedule(() => resolve(null)))]);
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
