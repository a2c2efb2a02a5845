// One HTTP/1.1 connection: parse heads from the bytes read, hand requests to the handler one
// at a time (pipelined ones wait their turn), feed request bodies (body.ts), write responses in order.
// Reads go into the engine's shared buffer; only bytes left over between reads are copied.
import { lib } from "../ffi/index.ts";
import { EAGAIN } from "../ffi/errno.ts";
import { EPOLLHUP, EPOLLRDHUP } from "../net/constants.ts";
import { ChunkedDecoder } from "./chunked-decoder.ts";
import { type HeadParser, ParseStatus } from "./parser.ts";
import { HeadMemo } from "./head-memo.ts";
import { HTTP_ERRORS, type HttpErrorCode } from "./errors.ts";
import { type BodySink, RequestBody } from "./body.ts";
import { LazyRequest } from "./request.ts";
import { ResponseSender, type SenderConnection, type SenderHost } from "./response-sender.ts";
import { Deadline, type Deadlines, type Timed } from "./deadlines.ts";
import type { ContextConnection } from "./handler-context.ts";
import type { EngineStats } from "./engine-stats.ts";
import type { Limits } from "./limits.ts";
import type { SocketAddress } from "../net/address.ts";
import type { Upgraded, Upgrades, UpgradeSource } from "./upgrade.ts";

/** What a connection needs of the engine that owns it (Engine implements it). */
export interface ConnectionHost extends SenderHost {
  readonly limits: Limits;
  readonly stats: EngineStats;
  /** The engine's head parser, shared by its connections (a head is parsed in one call). */
  readonly parser: HeadParser;
  /** The engine's read buffer, shared: what a connection cannot use yet is copied out of it. */
  readonly readBuffer: Uint8Array;
  readonly deadlines: Deadlines;
  /** The origin of request URLs (http://host:port). */
  readonly origin: string;
  /** A graceful stop is under way: responses close their connections. */
  readonly stopping: boolean;
  /** Sockets are read by io_uring recvs (completions), not by recv() on EPOLLIN. */
  readonly readsByRing: boolean;
  /** Completes the upgrades handlers ask for (src/ws/), or null. */
  readonly upgrades: Upgrades | null;
  /** Calls the handler for a request; its answer comes back through the connection's sender. */
  invoke(conn: Connection, request: Request): void;
  /** The connection paused or resumed reading. */
  readingChanged(conn: Connection): void;
  /** Runs conn.resume() soon, outside the current pass. */
  deferResume(conn: Connection): void;
  /** The connection closed: its fd and slot go. */
  release(conn: Connection): void;
}

const EMPTY_PAYLOAD = new Uint8Array(0);
const CONTINUE_100 = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

export class Connection implements SenderConnection, Timed, ContextConnection, UpgradeSource {
  /** Unconsumed bytes from earlier reads (a partial head, or requests queued behind a busy one). */
  leftover: Uint8Array | null = null;
  /** A request is with the handler or its response is being written. */
  busy = false;
  closed = false;
  /** Peer sent FIN: finish what is in flight, then close. */
  peerClosed = false;
  /** Close once the current response is written (Connection: close, errors, shutdown). */
  closeAfterResponse = false;
  readPaused = false;
  /** The last pass stopped at maxPipelinedRequests with requests still buffered. */
  private yielded = false;
  /** A pass is parsing: bytes after the current request are not in leftover yet. */
  private inPass = false;
  deadline = 0;
  deadlineKind = Deadline.None;
  /** When output the socket takes nothing of is cut (Deadlines.armSend); 0 while none waits. */
  sendDeadline = 0;
  /** Pipelined requests wait in leftover until the unsent output drains under maxPendingOutputBytes. */
  outputPaused = false;
  requests = 0;
  /** Ring mode: multishot recvs submitted and not yet ended (a cancelled one may overlap a new one). */
  recvsArmed = 0;
  readonly sender: ResponseSender;
  /** This connection's keep-alive idle timeout (Bun's server.timeout(request, seconds)); null: the server's. */
  idleTimeoutMs: number | null = null;
  /** Responses written out so far; HandlerContext.completed waits on it (`responded`). */
  private responsesDone = 0;
  private respondedWaiters: { request: number; settle: () => void }[] | null = null;
  /** An upgrade (server.upgrade, upgradeWebSocket) the handler asked for; completed by Upgrades.complete. */
  pendingUpgrade: unknown = null;
  /** The protocol this connection was upgraded to: every byte read goes to it (upgrade.ts). */
  upgraded: Upgraded | null = null;

  // The request in flight.
  private body: RequestBody | null = null;
  private bodyRemaining = 0;
  private chunked: ChunkedDecoder | null = null;
  private continueOwed = false;
  private versionMinor: 0 | 1 = 1;
  private discarding = false;
  /** The current body is still arriving after its head's pass: counted as async work until it settles. */
  private bodyAsync = false;
  /** What the request bodies of this connection tell it (one object for all of them). */
  private readonly bodySink: BodySink = {
    onPull: () => this.onBodyPull(),
    onCancel: () => this.onBodyCancel(),
    onSettled: () => this.onBodySettled(),
  };
  /** The current request's head; its bytes are reused when the next head repeats them (head-memo.ts). */
  private readonly head = new HeadMemo();

  constructor(
    private readonly host: ConnectionHost,
    readonly fd: number,
    readonly slot: number,
    readonly peer: SocketAddress,
    /** Ring mode: tells this connection's completions from an earlier one's in the same slot. */
    readonly generation: number = 0,
  ) {
    this.sender = new ResponseSender(this, host);
  }

  /** Nothing in flight and nothing buffered: safe to close without cutting a request. */
  get isIdle(): boolean {
    return !this.busy && !this.leftover && !this.body && !this.closed && this.upgraded === null;
  }

  /**
   * Called on an (edge-triggered) EPOLLIN: one read into the shared buffer, then parse and dispatch. A
   * read that did not fill the buffer took everything; one that did re-arms the edge for the rest.
   */
  onReadable(mask: number): void {
    const host = this.host;
    const buffer = host.readBuffer;
    let length = 0;
    if (this.leftover) {
      buffer.set(this.leftover, 0);
      length = this.leftover.byteLength;
      this.leftover = null;
    }
    if (length === buffer.byteLength) {
      // Full of bytes we cannot consume yet (a busy handler with pipelined requests behind it).
      this.leftover = buffer.slice(0, length);
      this.pauseReading();
      return;
    }
    const room = buffer.byteLength - length;
    const n = lib.rp_recv(this.fd, buffer, length, room);
    if (n > 0) {
      host.stats.bytesIn += n;
      length += n;
      // The peer's FIN came with this edge and the short read took the last bytes: no new edge will say so.
      if (n < room && mask & (EPOLLRDHUP | EPOLLHUP)) this.peerClosed = true;
    } else if (n === 0) {
      this.peerClosed = true;
    } else if (n !== -EAGAIN) {
      host.stats.readErrors++;
      this.destroy(); // ECONNRESET and friends: nothing more will come or go
      return;
    }
    this.consume(buffer, 0, length);
    if (this.peerClosed && !this.closed) this.onPeerClosed();
    else if (n === room) host.updateInterest(this);
  }

  /** Ring mode: whether a recv should be armed (Engine.onCompletions re-arms an ended one). */
  get wantsRecv(): boolean {
    return !this.closed && !this.readPaused && !this.peerClosed;
  }

  /**
   * Ring mode: `length` bytes received at buffers[offset] (the ring's; ours until the next reap). Bytes
   * that come while reading is paused (before the cancel took effect) are appended to leftover.
   */
  onData(buffers: Uint8Array, offset: number, length: number): void {
    const host = this.host;
    const leftover = this.leftover;
    if (this.readPaused) {
      this.leftover = appendLeftover(leftover, buffers.subarray(offset, offset + length));
    } else if (leftover === null) {
      if (this.body !== null && this.bodyRemaining > length) this.feedBodyMiddle(buffers.subarray(offset, offset + length));
      else this.consume(buffers, offset, offset + length);
    } else {
      const total = leftover.byteLength + length;
      const joined = total <= host.readBuffer.byteLength ? host.readBuffer : new Uint8Array(total);
      joined.set(leftover, 0);
      joined.set(buffers.subarray(offset, offset + length), leftover.byteLength);
      this.leftover = null;
      this.consume(joined, 0, total);
    }
    // Buffered and not consumable yet (a busy handler with pipelined requests behind it): stop reading.
    if (this.leftover !== null && this.leftover.byteLength >= host.readBuffer.byteLength) this.pauseReading();
  }

  /** Ring mode: the peer's FIN. */
  onEnd(): void {
    this.peerClosed = true;
    if (!this.closed && !this.readPaused) this.onPeerClosed();
  }

  /** Runs the parser over buffer[start, end) and keeps what it could not use yet. */
  private consume(buffer: Uint8Array, start: number, end: number): void {
    if (this.upgraded !== null) {
      this.upgraded.onBytes(buffer, start, end);
      return;
    }
    this.yielded = false;
    this.inPass = true;
    let used: number;
    try {
      used = this.process(buffer, start, end);
    } finally {
      this.inPass = false;
    }
    if (this.closed || used >= end) return;
    this.leftover = buffer.slice(used, end);
    // Stopped at maxPipelinedRequests to give other connections a turn, or upgraded by the request before the
    // rest: it is already read, so no epoll event will come for it; schedule it ourselves.
    if (this.yielded || this.upgraded !== null) this.host.deferResume(this);
  }

  /** Parses and dispatches requests from buffer[start, end); returns the offset it stopped at. */
  private process(buffer: Uint8Array, start: number, end: number): number {
    const host = this.host;
    let pipelined = 0;
    while (start < end && !this.closed) {
      if (this.body || this.discarding) {
        start = this.feedBody(buffer, start, end);
        if (this.body || this.discarding || this.busy) break;
        continue;
      }
      if (this.busy || this.upgraded !== null) break;
      // The client is not reading its answers: answer no more of its requests until they drain (onOutputDrained).
      if (this.sender.unsentBytes > host.limits.maxPendingOutputBytes) {
        if (!this.outputPaused) {
          this.outputPaused = true;
          host.stats.outputPauses++;
        }
        break;
      }
      if (pipelined === host.limits.maxPipelinedRequests) {
        this.yielded = true;
        break;
      }
      const head = this.head;
      if (!head.matches(buffer, start, end)) {
        const parser = host.parser;
        const status = parser.parse(buffer, start, end);
        if (status === ParseStatus.Incomplete) {
          if (this.deadlineKind !== Deadline.Head) host.deadlines.set(this, Deadline.Head, host.limits.headerTimeoutMs);
          break;
        }
        if (status === ParseStatus.Error) {
          this.failRequest(parser.errorStatus, parser.errorCode as HttpErrorCode, parser.errorReason);
          return end;
        }
        head.record(parser, parser.headers.slice(0, 2 * parser.headerCount), buffer, start);
      }
      pipelined++;
      start = this.dispatch(head, buffer, start + head.headLength, end);
    }
    // (afterResponse already set it when the last response went out in this pass)
    if (start >= end && !this.busy && !this.body && !this.discarding && !this.closed && this.upgraded === null && this.deadlineKind !== Deadline.Idle) {
      host.deadlines.set(this, Deadline.Idle, this.idleTimeoutMs ?? host.limits.idleTimeoutMs);
    }
    this.sender.flush();
    return start;
  }

  /**
   * Builds the Request for the parsed head and calls the handler. What of the body is in buffer[start, end)
   * goes into it first, so a body that came whole with its head is read from memory at once. Returns the new start.
   */
  private dispatch(head: HeadMemo, buffer: Uint8Array, start: number, end: number): number {
    const host = this.host;
    host.deadlines.clear(this);
    this.busy = true;
    this.requests++;
    host.stats.requests++;
    this.versionMinor = head.versionMinor;
    const contentLength = head.contentLength;
    if (contentLength > host.limits.maxBodyBytes) {
      this.failRequest(413, "BODY_TOO_LARGE", HTTP_ERRORS.BODY_TOO_LARGE.reason);
      return start;
    }
    let body: RequestBody | null = null;
    if (head.chunked || contentLength > 0) {
      body = this.body = new RequestBody(this.bodySink, head.chunked ? -1 : contentLength);
      this.bodyRemaining = head.chunked ? -1 : contentLength;
      if (head.chunked) (this.chunked ??= new ChunkedDecoder(host.limits.maxBodyBytes)).reset();
      this.continueOwed = head.expectContinue && head.versionMinor === 1;
      if (start < end) start = this.feedBody(buffer, start, end);
      if (body.failed || this.closed) return start; // answered already (413, a bad chunk) or gone
      if (this.body !== null) {
        // The rest is read by JS in promises: while it streams, the loop does not sleep in the ring.
        host.asyncBegan();
        this.bodyAsync = true;
        this.awaitBody();
      }
    }
    const keepAlive = head.keepAlive && !host.stopping;
    if (!keepAlive) this.closeAfterResponse = true;
    const request = new LazyRequest(
      head.method, head.host, host.origin, head.target, head.headers, body, this,
    );
    this.sender.begin(head.method === "HEAD", head.versionMinor);
    host.invoke(this, request as unknown as Request);
    return start;
  }

  /** Moves body bytes from buffer[start, end) into the body stream; returns the new start. */
  private feedBody(buffer: Uint8Array, start: number, end: number): number {
    const from = start;
    start = this.bodyRemaining >= 0 ? this.feedFixed(buffer, start, end) : this.feedChunked(buffer, start, end);
    // Bytes came: the client gets bodyTimeoutMs again for the next ones.
    if (start > from && (this.body || this.discarding) && !this.closed) this.awaitBody();
    return start;
  }

  /**
   * Ring mode: bytes from the middle of a Content-Length body (more than these are still to come), which a
   * 64 KiB body brings in 16 completions: straight into the body, without a parsing pass each.
   */
  private feedBodyMiddle(bytes: Uint8Array): void {
    this.bodyRemaining -= bytes.byteLength;
    this.pushBody(bytes, false);
    if (this.body !== null && !this.closed) this.awaitBody();
    this.sender.flush(); // a pull the bytes caused may have owed a 100 Continue
  }

  private feedFixed(buffer: Uint8Array, start: number, end: number): number {
    const take = Math.min(this.bodyRemaining, end - start);
    this.bodyRemaining -= take;
    this.pushBody(buffer.subarray(start, start + take), false);
    start += take;
    if (this.bodyRemaining === 0) this.endBody();
    return start;
  }

  private feedChunked(buffer: Uint8Array, start: number, end: number): number {
    const decoder = this.chunked!;
    while (start < end) {
      const used = decoder.decode(buffer, start, end);
      if (decoder.spanCount > 0) this.pushBody(joinSpans(buffer, decoder.spans, decoder.spanCount), true);
      start += used;
      if (decoder.status === ParseStatus.Error) {
        const error = new Error(`chunked body: ${decoder.errorReason}`);
        this.body?.fail(error);
        this.body = null;
        this.discarding = false;
        this.failRequest(decoder.errorStatus, decoder.errorCode as HttpErrorCode, decoder.errorReason);
        return end;
      }
      if (decoder.status === ParseStatus.Done) {
        this.endBody();
        break;
      }
      if (used === 0) break;
    }
    return start;
  }

  /** bytes: owned (the body may keep it) or a view of the read buffer (copied if kept). */
  private pushBody(bytes: Uint8Array, owned: boolean): void {
    if (this.discarding || !this.body) {
      if (this.discarding && this.body === null) this.host.stats.bytesDiscarded += bytes.byteLength;
      return;
    }
    if (this.body.received + bytes.byteLength > this.host.limits.maxBodyBytes) {
      this.body.fail(new Error("request body exceeds maxBodyBytes"));
      this.body = null;
      this.failRequest(413, "BODY_TOO_LARGE", HTTP_ERRORS.BODY_TOO_LARGE.reason);
      return;
    }
    if (!this.body.push(bytes, owned)) this.pauseReading();
  }

  /**
   * A body is still to come: while the server waits for it, no byte for bodyTimeoutMs ends it (onDeadline);
   * while reading is paused (the handler has not taken what came) the wait is ours, not the client's.
   */
  private awaitBody(): void {
    if (!this.readPaused) this.host.deadlines.set(this, Deadline.Body, this.host.limits.bodyTimeoutMs);
    else if (this.deadlineKind === Deadline.Body) this.host.deadlines.clear(this);
  }

  /** A deadline passed (Deadlines' sweep): 408 for a head or a body that takes too long, a quiet close when idle. */
  onDeadline(kind: Deadline): void {
    if (kind === Deadline.Body) {
      this.onBodyTimeout();
      return;
    }
    this.host.stats.timeouts++;
    if (kind === Deadline.Head) this.failRequest(408, "TIMEOUT", `request head not received within ${this.host.limits.headerTimeoutMs} ms`);
    else this.destroy();
  }

  /** Output waited for sendTimeoutMs without the socket taking a byte: the client is not reading. */
  onSendTimeout(): void {
    this.host.stats.sendTimeouts++;
    this.destroy();
  }

  /** An answer is still leaving: an idle deadline waits until it is sent (onOutputDrained starts it then). */
  get isSending(): boolean {
    return this.sender.wantsWritable;
  }

  /** No body byte came for bodyTimeoutMs while one was awaited. */
  private onBodyTimeout(): void {
    this.host.stats.bodyTimeouts++;
    // Answered already (the rest was awaited only to be discarded): a second answer would be out of turn.
    if (!this.busy) this.destroy();
    else this.failRequest(408, "TIMEOUT", `request body not received within ${this.host.limits.bodyTimeoutMs} ms`);
  }

  private endBody(): void {
    if (this.deadlineKind === Deadline.Body) this.host.deadlines.clear(this);
    this.body?.finish();
    this.body = null;
    if (this.discarding) {
      this.discarding = false;
      if (!this.busy) this.afterResponse();
    }
  }

  private onBodySettled(): void {
    if (!this.bodyAsync) return;
    this.bodyAsync = false;
    this.host.asyncEnded();
  }

  private onBodyPull(): void {
    if (this.continueOwed) {
      this.continueOwed = false;
      this.sender.writeRaw(CONTINUE_100);
    }
    this.resumeReading();
    if (this.body && this.deadlineKind !== Deadline.Body && !this.closed) this.awaitBody();
  }

  private onBodyCancel(): void {
    this.discarding = true;
    this.resumeReading();
    if (!this.closed) this.awaitBody();
  }

  pauseReading(): void {
    if (this.readPaused || this.closed) return;
    this.readPaused = true;
    this.host.readingChanged(this);
  }

  resumeReading(): void {
    if (!this.readPaused || this.closed) return;
    this.readPaused = false;
    this.host.readingChanged(this);
    // Ring mode reports a FIN even while paused (onEnd); with nothing left to parse, act on it now.
    if (this.host.readsByRing && this.peerClosed && this.leftover === null) this.onPeerClosed();
    // Bytes already read may be waiting; epoll only reports new ones.
    if (this.leftover && !this.busy) this.host.deferResume(this);
    else if (this.leftover && this.body) this.host.deferResume(this);
  }

  /** Re-runs parsing over leftover bytes (after a response finished or a body pull). */
  resume(): void {
    if (this.closed || !this.leftover) return;
    const leftover = this.leftover;
    this.leftover = null;
    this.consume(leftover, 0, leftover.byteLength); // what it cannot use is sliced off again
    if (this.peerClosed && !this.closed) this.onPeerClosed();
  }

  /** The response for the current request is fully written. */
  onResponseDone(): void {
    this.busy = false;
    this.responsesDone++;
    if (this.respondedWaiters) this.settleResponded();
    if (this.closed) return;
    if (this.body) {
      // The handler answered without reading the whole body: discard a little, else close.
      const remaining = this.bodyRemaining >= 0 ? this.bodyRemaining : Infinity;
      if (remaining > this.host.limits.maxDiscardBytes || this.continueOwed) {
        this.closeAfterResponse = true;
      } else {
        this.body.fail(new Error("response sent before the request body was read"));
        this.body = null;
        this.discarding = true;
        this.resumeReading();
        this.awaitBody();
        if (this.leftover) this.host.deferResume(this);
        return;
      }
    }
    this.afterResponse();
  }

  private afterResponse(): void {
    // After a FIN, close once nothing is left to answer (within a pass, its caller sees to it: onPeerClosed).
    if (this.closeAfterResponse || (this.peerClosed && !this.leftover && !this.inPass)) {
      // What is left of a body no longer matters; only the send timeout governs the flush.
      if (this.deadlineKind === Deadline.Body) this.host.deadlines.clear(this);
      this.sender.closeWhenFlushed();
      return;
    }
    if (this.leftover) this.host.deferResume(this);
    else this.host.deadlines.set(this, Deadline.Idle, this.idleTimeoutMs ?? this.host.limits.idleTimeoutMs);
    if (this.readPaused) this.resumeReading();
  }

  private onPeerClosed(): void {
    if (this.upgraded !== null) {
      this.upgraded.onPeerClosed();
      return;
    }
    if (this.body) {
      this.body.fail(new Error("client closed the connection before the body ended"));
      this.body = null;
      if (this.deadlineKind === Deadline.Body) this.host.deadlines.clear(this);
    }
    // Requests already read and waiting their turn (an output backlog, a yielded pass) are answered first.
    if (!this.busy && !this.outputPaused && !this.yielded) {
      this.sender.closeWhenFlushed();
    }
  }

  /** The unsent output went under maxPendingOutputBytes (ResponseSender.onWritable). */
  onOutputDrained(): void {
    if (this.closed) return;
    if (this.upgraded !== null) {
      this.upgraded.onDrained();
      return;
    }
    // All of it sent: an idle wait starts now, not while the last answer was still leaving.
    if (this.sender.unsentBytes === 0 && this.deadlineKind === Deadline.Idle) {
      this.host.deadlines.set(this, Deadline.Idle, this.idleTimeoutMs ?? this.host.limits.idleTimeoutMs);
    }
    if (!this.outputPaused) return;
    this.outputPaused = false;
    if (this.readPaused) this.resumeReading(); // also schedules resume() for the leftover
    else if (this.leftover) this.host.deferResume(this);
  }

  /** Answers a protocol error (400/408/413/431/...) and closes: the stream can't be trusted. */
  failRequest(status: number, code: HttpErrorCode | "TIMEOUT", reason: string): void {
    this.host.stats.protocolErrors++;
    this.closeAfterResponse = true;
    this.busy = true;
    this.body?.fail(new Error(reason));
    this.body = null;
    this.discarding = false;
    this.sender.sendError(status, code, reason, this.versionMinor);
  }

  /** Closes the socket now; an in-flight handler's response is dropped. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.body?.fail(new Error("connection closed"));
    this.body = null;
    this.leftover = null;
    this.sender.abort();
    this.host.release(this);
    if (this.respondedWaiters) this.settleResponded();
    this.upgraded?.onClosed();
  }

  get upgrades(): Upgrades | null {
    return this.host.upgrades;
  }

  /** Output not taken by the socket yet (UpgradedConnection). */
  get unsentBytes(): number {
    return this.sender.unsentBytes;
  }

  /** An upgraded connection's output: header[0, headerLength) then payload. */
  write(header: Uint8Array, headerLength: number, payload: Uint8Array): void {
    this.sender.writeUpgraded(header, headerLength, payload);
  }

  closeWhenFlushed(): void {
    this.sender.closeWhenFlushed();
  }

  /**
   * The handler's answer upgraded this connection: the 101 head goes out, and from now on every byte read
   * (those already buffered behind the request first) goes to `upgraded`. The request counts as answered.
   */
  takeOver(head: Uint8Array, upgraded: Upgraded): void {
    this.host.deadlines.clear(this);
    this.pendingUpgrade = null;
    this.upgraded = upgraded;
    this.sender.writeUpgraded(head, head.byteLength, EMPTY_PAYLOAD);
    this.busy = false;
    this.responsesDone++;
    if (this.respondedWaiters) this.settleResponded();
    if (this.readPaused) this.resumeReading();
    if (this.leftover !== null) this.host.deferResume(this);
    if (this.peerClosed && this.leftover === null) upgraded.onPeerClosed();
  }

  /** Settles once response number `request` of this connection is written out, or the connection ends. */
  responded(request: number): Promise<void> {
    if (this.responsesDone >= request || this.closed) return Promise.resolve();
    return new Promise((settle) => (this.respondedWaiters ??= []).push({ request, settle }));
  }

  private settleResponded(): void {
    const waiters = this.respondedWaiters!;
    const due = this.closed ? waiters : waiters.filter((w) => w.request <= this.responsesDone);
    this.respondedWaiters = this.closed ? null : waiters.filter((w) => w.request > this.responsesDone);
    if (this.respondedWaiters?.length === 0) this.respondedWaiters = null;
    for (const waiter of due) waiter.settle();
  }
}

/** The arrays appendLeftover made: only behind these is the room past a leftover's end ours to write. */
const grownLeftovers = new WeakSet<ArrayBufferLike>();

/**
 * leftover followed by bytes: written in place while the array behind leftover has room, else into a new one
 * twice as large (the first exactly as large). While reading is paused, the completions already in flight keep
 * coming (how many depends on when the kernel ran the recv's task work); copying the whole leftover for each
 * would make garbage quadratic in what they carry.
 */
function appendLeftover(leftover: Uint8Array | null, bytes: Uint8Array): Uint8Array {
  const used = leftover === null ? 0 : leftover.byteLength;
  const total = used + bytes.byteLength;
  if (leftover !== null && grownLeftovers.has(leftover.buffer) && leftover.byteOffset + total <= leftover.buffer.byteLength) {
    const grown = new Uint8Array(leftover.buffer, leftover.byteOffset, total);
    grown.set(bytes, used);
    return grown;
  }
  const backing = new Uint8Array(Math.max(total, 2 * used));
  grownLeftovers.add(backing.buffer);
  if (leftover !== null) backing.set(leftover, 0);
  backing.set(bytes, used);
  return backing.subarray(0, total);
}

/** Spans shorter than this many bytes are copied byte by byte (a subarray per span would be garbage per chunk). */
const SPAN_LOOP_COPY_BYTES_MAX = 64;

/** The data spans one decode call found, as one chunk: a body of tiny chunks queues far fewer objects. */
function joinSpans(buffer: Uint8Array, spans: Uint32Array, count: number): Uint8Array {
  if (count === 1) return buffer.slice(spans[0], spans[1]);
  let length = 0;
  for (let i = 0; i < count; i++) length += spans[2 * i + 1] - spans[2 * i];
  const joined = new Uint8Array(length);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const start = spans[2 * i];
    const end = spans[2 * i + 1];
    if (end - start < SPAN_LOOP_COPY_BYTES_MAX) for (let j = start; j < end; j++) joined[at++] = buffer[j];
    else {
      joined.set(buffer.subarray(start, end), at);
      at += end - start;
    }
  }
  return joined;
}
