// The HTTP engine of one worker: a listener, a PollLoop (epoll, reads through io_uring where allowed), the connection
// table, shared read/write buffers, deadlines (408, idle), counters, and graceful stop.
import { lib, runtime } from "../ffi/index.ts";
import { EAGAIN, ECANCELED, ENOBUFS } from "../ffi/errno.ts";
import { decodeSockaddr, type SocketAddress } from "../net/address.ts";
import { EPOLLET, EPOLLIN, EPOLLOUT, EPOLLRDHUP, IPPROTO_TCP, TCP_NODELAY } from "../net/constants.ts";
import type { Listener } from "../net/listener.ts";
import { CQE_F_MORE, PollLoop, RING_BUFFER_BYTES } from "../net/poll-loop.ts";
import { Connection, Deadline } from "./connection.ts";
import { type Limits, readBufferBytes, sweepIntervalMs } from "./limits.ts";
import { HeadParser } from "./parser.ts";
import { requestOwner } from "./request.ts";
import { Answer } from "./response-sender.ts";
import { ErrorLog } from "./error-log.ts";
import { COUNTER_NAMES, type CounterName, F, SLOT_FIELDS } from "../cluster/shared-stats.ts";

const LISTENER_TOKEN = 0xffff_fff0;
const SHUT_RDWR = 2;
/** Connections accepted per listener wake before other events get a turn. */
const ACCEPTS_PER_WAKE_MAX = 256;
const WRITE_BUFFER_BYTES = 64 * 1024;
/** Sends a round may hold before they go out early (each is 16 bytes of entry). */
const SEND_BATCH_MAX = 512;
/** accept4 errors that say the process or the kernel is out of something: EMFILE, ENFILE, ENOBUFS, ENOMEM. */
const ACCEPT_RESOURCE_ERRORS = new Set([24, 23, 105, 12]);
/** After such an error the listener rests this long (it stays readable, so epoll would spin). */
const ACCEPT_PAUSE_MS = 100;
/** A graceful stop takes at most this many connections from the accept queue (the rest, the kernel migrates or resets). */
const RETIRE_ACCEPTS_MAX = 4096;
/** A graceful stop waits this long for the first request of a connection accepted just before it. */
const FIRST_REQUEST_GRACE_MS = 1000;

export type Handler = (request: Request, info: Connection["info"]) => Response | Promise<Response>;
export type ErrorHandler = (error: unknown) => Response | Promise<Response>;

/** The engine's counters, stored in a Float64Array: a private one, or a worker's slot in the
 * cluster's shared memory (src/cluster/shared-stats.ts), so the primary reads them live. */
export class EngineStats {
  constructor(readonly fields: Float64Array = new Float64Array(SLOT_FIELDS)) {}
  get accepted(): number { return this.fields[F.accepted]; }
  set accepted(v: number) { this.fields[F.accepted] = v; }
  get active(): number { return this.fields[F.active]; }
  set active(v: number) { this.fields[F.active] = v; }
  get requests(): number { return this.fields[F.requests]; }
  set requests(v: number) { this.fields[F.requests] = v; }
  get bytesIn(): number { return this.fields[F.bytesIn]; }
  set bytesIn(v: number) { this.fields[F.bytesIn] = v; }
  get bytesOut(): number { return this.fields[F.bytesOut]; }
  set bytesOut(v: number) { this.fields[F.bytesOut] = v; }
  /** Handler throws/rejections and invalid handler results (answered 500). */
  get handlerErrors(): number { return this.fields[F.handlerErrors]; }
  set handlerErrors(v: number) { this.fields[F.handlerErrors] = v; }
  /** Malformed requests and limit violations (answered 4xx and closed). */
  get protocolErrors(): number { return this.fields[F.protocolErrors]; }
  set protocolErrors(v: number) { this.fields[F.protocolErrors] = v; }
  /** Connections refused for maxConnections, shutdown or fd exhaustion. */
  get rejectedConnections(): number { return this.fields[F.rejectedConnections]; }
  set rejectedConnections(v: number) { this.fields[F.rejectedConnections] = v; }
  get acceptErrors(): number { return this.fields[F.acceptErrors]; }
  set acceptErrors(v: number) { this.fields[F.acceptErrors] = v; }
  get readErrors(): number { return this.fields[F.readErrors]; }
  set readErrors(v: number) { this.fields[F.readErrors] = v; }
  get writeErrors(): number { return this.fields[F.writeErrors]; }
  set writeErrors(v: number) { this.fields[F.writeErrors] = v; }
  get timeouts(): number { return this.fields[F.timeouts]; }
  set timeouts(v: number) { this.fields[F.timeouts] = v; }
  get bytesDiscarded(): number { return this.fields[F.bytesDiscarded]; }
  set bytesDiscarded(v: number) { this.fields[F.bytesDiscarded] = v; }
  get sendTimeouts(): number { return this.fields[F.sendTimeouts]; }
  set sendTimeouts(v: number) { this.fields[F.sendTimeouts] = v; }
  get bodyTimeouts(): number { return this.fields[F.bodyTimeouts]; }
  set bodyTimeouts(v: number) { this.fields[F.bodyTimeouts] = v; }
  get outputPauses(): number { return this.fields[F.outputPauses]; }
  set outputPauses(v: number) { this.fields[F.outputPauses] = v; }

  snapshot(): Record<"active" | CounterName, number> {
    const out = { active: this.active } as Record<"active" | CounterName, number>;
    for (const name of COUNTER_NAMES) out[name] = this.fields[F[name]];
    return out;
  }
}

export class Engine {
  readonly loop: PollLoop;
  readonly parser: HeadParser;
  readonly readBuffer: Uint8Array;
  readonly writeBuffer: Uint8Array = new Uint8Array(WRITE_BUFFER_BYTES);
  /**
   * Bytes of writeBuffer in use: the round's batched responses, then from segmentStart those of the connection
   * now producing output (ResponseSender.flush closes its segment). 0 between rounds.
   */
  writeLength = 0;
  segmentStart = 0;
  /** The batch: {fd, offset, length, result} per send over writeBuffer (see rp_send_batch), and whose. */
  private readonly sendEntryBytes = new Uint8Array(16 * SEND_BATCH_MAX);
  private readonly sendEntries = new Int32Array(this.sendEntryBytes.buffer);
  private readonly sendOwners: (Connection | undefined)[] = new Array(SEND_BATCH_MAX).fill(undefined);
  private sendCount = 0;
  readonly stats: EngineStats;
  /** The connection a request came from (server.requestIP): the request carries it, no map per request. */
  readonly requestOwners: { get(request: unknown): Connection | undefined } = {
    get(request: unknown): Connection | undefined {
      const owner = requestOwner(request);
      return owner instanceof Connection ? owner : undefined;
    },
  };
  /**
   * The poll round's clock (PollLoop.now; 0 outside a round): deadlines and the Date header of the round's
   * responses use it instead of reading the clock per request, and sends wait in the batch while it is set.
   * Work outside a round (async handlers, timers) reads the clock itself, so a stale value never reaches a
   * deadline.
   */
  batchNow = 0;
  readonly origin: string;
  stopping = false;
  /**
   * Handler and error-handler promises, streamed response bodies and request bodies not yet settled: while
   * any is pending the loop does not sleep in the ring, since they go on in promises (PollLoop.maySleep).
   */
  asyncPending = 0;
  /** Called for every connection that ends (least-connections steering counts them down). */
  onConnectionClosed: (() => void) | null = null;
  /** Called right before the engine closes its listener, then its loop (a cluster worker clears its slot's record of them). */
  onClosing: ((what: "listener" | "loop") => void) | null = null;
  /** Open connection fds as bits (a thread worker's, so the primary can close them if it dies). */
  fdBitmap: Uint8Array | null = null;
  /** Sockets are read through io_uring (PollLoop.useRing); otherwise recv() on EPOLLIN. */
  readonly ring: boolean;
  /** Tells a connection's ring completions from those of an earlier one in the same slot. */
  private generation = 0;
  private readonly connections: (Connection | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private readonly resumeQueue: Connection[] = [];
  private resumeScheduled = false;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private readonly sweepEveryMs: number;
  private readonly peerScratch = new Uint8Array(128);
  private listenerOpen = true;
  /** The graceful stop's idle-close timers. */
  private readonly stopTimers: ReturnType<typeof setTimeout>[] = [];
  private loopClosed = false;
  private closedResolve!: () => void;
  readonly closed: Promise<void> = new Promise((resolve) => (this.closedResolve = resolve));

  constructor(
    readonly listener: Listener,
    readonly limits: Limits,
    private readonly handler: Handler,
    private readonly errorHandler: ErrorHandler | null,
    statsFields?: Float64Array,
  ) {
    this.stats = new EngineStats(statsFields);
    this.parser = new HeadParser({ maxHeaderBytes: limits.maxHeaderBytes, maxHeaderCount: limits.maxHeaderCount });
    this.readBuffer = new Uint8Array(readBufferBytes(limits));
    const { address } = listener;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    this.origin = address.family === "unix" ? "http://localhost" : `http://${host === "0.0.0.0" || host === "[::]" ? "localhost" : host}:${address.port}`;
    this.sweepEveryMs = sweepIntervalMs(limits);
    this.loop = new PollLoop();
    this.loop.maySleep = () => this.asyncPending === 0 && !this.resumeScheduled;
    try {
      this.ring = this.loop.useRing((count, completions) => this.onCompletions(count, completions));
    } catch (failure) {
      this.loop.close();
      throw failure;
    }
    this.loop.add(listener.fd, EPOLLIN, LISTENER_TOKEN);
    this.loop.start((count, events) => this.onEvents(count, events));
  }

  /** Ring mode: received bytes, ends of stream and ends of a multishot recv, per connection. */
  private onCompletions(count: number, completions: Uint32Array): void {
    this.batchNow = this.loop.now;
    let received = 0;
    try {
      const buffers = this.loop.ringBuffers;
      for (let i = 0; i < count; i++) {
        const token = completions[4 * i]!;
        const conn = token < this.connections.length ? this.connections[token] : undefined;
        if (conn === undefined || conn.generation !== completions[4 * i + 1]) continue; // closed since, or not a socket
        const result = completions[4 * i + 2]! | 0;
        const flags = completions[4 * i + 3]!;
        if (!(flags & CQE_F_MORE)) conn.recvsArmed--;
        if (result > 0) {
          received += result;
          conn.onData(buffers, (flags >>> 16) * RING_BUFFER_BYTES, result);
        } else if (result === 0) conn.onEnd();
        else if (result !== -ENOBUFS && result !== -ECANCELED) {
          this.stats.readErrors++;
          conn.destroy(); // ECONNRESET and friends
        }
        if (conn.recvsArmed === 0 && conn.wantsRecv) this.armRecv(conn); // ENOBUFS, or the kernel ended it
        if (this.loopClosed) break; // the last connection closed in a stop: nothing else of this round matters
      }
    } finally {
      this.stats.bytesIn += received;
      this.endRound();
    }
  }

  /**
   * A connection paused or resumed reading: its epoll interest, or in ring mode its recv cancelled, or armed
   * again (a cancelled recv still counted ends with ECANCELED, and onCompletions re-arms it then).
   */
  readingChanged(conn: Connection): void {
    if (!this.ring) this.updateInterest(conn);
    else if (conn.readPaused) {
      if (conn.recvsArmed > 0 && this.loop.cancel(conn.fd, false) < 0) {
        this.stats.readErrors++; // the ring took no cancel: reading cannot pause, and unpaused it would buffer without bound
        conn.destroy();
      }
    } else if (conn.recvsArmed === 0 && conn.wantsRecv) this.armRecv(conn);
  }

  private armRecv(conn: Connection): void {
    if (this.loop.recv(conn.fd, conn.slot, conn.generation) < 0) {
      this.stats.readErrors++; // the submission queue could not take it (EBUSY): this connection cannot be read
      conn.destroy();
      return;
    }
    conn.recvsArmed++;
  }

  private onEvents(count: number, events: Uint32Array): void {
    this.batchNow = this.loop.now;
    try {
      this.dispatchEvents(count, events);
    } finally {
      this.endRound();
    }
  }

  private endRound(): void {
    this.batchNow = 0;
    this.flushSends();
  }

  /**
   * Adds writeBuffer[start, end) for conn to the batch. Inside a poll round (batchNow set) the batch leaves at
   * the round's end, one FFI call with the sends back to back; outside one, or when full, it leaves now.
   */
  queueSend(conn: Connection, start: number, end: number): void {
    const i = this.sendCount;
    const entries = this.sendEntries;
    entries[4 * i] = conn.fd;
    entries[4 * i + 1] = start;
    entries[4 * i + 2] = end - start;
    this.sendOwners[i] = conn;
    this.sendCount = i + 1;
    this.segmentStart = end;
    if (this.batchNow === 0 || i + 1 === SEND_BATCH_MAX) this.flushSends();
  }

  /**
   * Sends the batch in one call; a short send leaves the rest to its connection's pending queue, an error
   * closes that connection. Bytes of a connection still producing output move to the buffer's start.
   */
  flushSends(): void {
    const count = this.sendCount;
    if (count === 0) return;
    this.sendCount = 0;
    const entries = this.sendEntries;
    const owners = this.sendOwners;
    lib.rp_send_batch(this.writeBuffer, this.sendEntryBytes, count);
    let sent = 0;
    for (let i = 0; i < count; i++) {
      const conn = owners[i]!;
      owners[i] = undefined;
      const length = entries[4 * i + 2]!;
      const result = entries[4 * i + 3]!;
      if (result === length) sent += length;
      else conn.sender.afterSend(result, this.writeBuffer, entries[4 * i + 1]!, length);
    }
    this.stats.bytesOut += sent;
    const open = this.writeLength - this.segmentStart;
    if (open > 0) this.writeBuffer.copyWithin(0, this.segmentStart, this.writeLength);
    this.segmentStart = 0;
    this.writeLength = open;
  }

  private dispatchEvents(count: number, events: Uint32Array): void {
    for (let i = 0; i < count && !this.loopClosed; i++) {
      const mask = events[2 * i];
      const token = events[2 * i + 1];
      if (token === LISTENER_TOKEN) {
        this.acceptBatch();
        continue;
      }
      const conn = this.connections[token];
      if (conn === undefined) continue;
      if (mask & EPOLLOUT) conn.sender.onWritable();
      if (conn.closed || this.ring) continue; // ring mode: the recv reports HUP and ERR
      if (mask & ~EPOLLOUT) conn.onReadable(mask); // IN, RDHUP, HUP, ERR: the read tells which
    }
  }

  private acceptBatch(): void {
    if (!this.listenerOpen) return;
    for (let i = 0; i < ACCEPTS_PER_WAKE_MAX; i++) {
      const fd = lib.rp_accept(this.listener.fd, this.peerScratch);
      if (fd === -EAGAIN) return;
      if (fd < 0) {
        this.stats.acceptErrors++;
        // Out of fds or kernel memory: the listener stays readable, so rest instead of spinning. Anything else
        // (ECONNABORTED, EPROTO, a firewall's EPERM) was that one connection's: go on with the next.
        if (ACCEPT_RESOURCE_ERRORS.has(-fd)) {
          this.pauseAccepting();
          return;
        }
        continue;
      }
      this.take(fd);
    }
  }

  /** An accepted fd (its peer's address in peerScratch): a connection, or rejected when the engine is full. */
  private take(fd: number): void {
    if (this.stats.active >= this.limits.maxConnections) {
      this.stats.rejectedConnections++;
      lib.rp_close(fd);
      this.onConnectionClosed?.(); // least-connections counted it when it chose this worker
      return;
    }
    const peer = decodeSockaddr(this.peerScratch, 128);
    // No Nagle: a streamed body's next small chunk would wait for the client's (delayed, up to 40 ms) ACK.
    if (peer.family !== "unix") lib.rp_setsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    this.adopt(fd, peer);
  }

  /** The connections wait in the accept queue meanwhile (what overflows it is the kernel's listen drops). */
  private pauseAccepting(): void {
    this.loop.remove(this.listener.fd);
    setTimeout(() => {
      if (this.listenerOpen) this.loop.add(this.listener.fd, EPOLLIN, LISTENER_TOKEN);
    }, ACCEPT_PAUSE_MS);
  }

  private adopt(fd: number, peer: SocketAddress): void {
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.connections.length;
    const conn = new Connection(this, fd, slot, peer, this.generation = (this.generation + 1) >>> 0);
    this.connections[slot] = conn;
    const bitmap = this.fdBitmap;
    if (bitmap !== null && fd >> 3 < bitmap.byteLength) bitmap[fd >> 3] |= 1 << (fd & 7);
    this.stats.accepted++;
    this.stats.active++;
    if (this.ring) {
      this.loop.add(fd, EPOLLET, slot); // for EPOLLOUT later
      this.armRecv(conn);
    } else this.loop.add(fd, EPOLLIN | EPOLLRDHUP | EPOLLET, slot);
    this.setDeadline(conn, Deadline.Idle, this.limits.idleTimeoutMs);
  }

  /**
   * Epoll interest follows the connection: IN unless reading is paused, OUT while bytes wait. Connections are
   * edge-triggered (epoll_wait does not re-check a socket we already read); a MOD re-reports what is still
   * ready, so calling this after a read that filled the buffer also re-arms the edge.
   */
  updateInterest(conn: Connection): void {
    if (conn.closed) return;
    const reading = !conn.readPaused && !this.ring; // ring mode: reads are recvs (Connection.pauseReading)
    const mask = (reading ? EPOLLIN | EPOLLRDHUP : 0) | (conn.sender.wantsWritable ? EPOLLOUT : 0) | EPOLLET;
    this.loop.modify(conn.fd, mask, conn.slot);
  }

  /**
   * Calls the handler; a throw, a rejection, a non-Response or a Response that fails before its head is
   * written becomes a 500 (or the error handler's answer). Nothing a handler does escapes into the round.
   */
  invoke(conn: Connection, request: Request): void {
    let result: Response | Promise<Response>;
    try {
      result = this.handler(request, conn.info);
    } catch (error) {
      this.answerError(conn, error);
      return;
    }
    if (runtime.isResponse(result)) {
      conn.sender.send(result, Answer.Handler);
      return;
    }
    this.whenSettled(
      result,
      (response) => {
        if (runtime.isResponse(response)) this.complete(conn, response, Answer.Handler);
        else this.answerError(conn, new TypeError(`fetch handler must return a Response, got ${describe(response)}`));
      },
      (error) => this.answerError(conn, error),
    );
  }

  /** Promise.resolve(value).then(onValue, onError), counted in asyncPending until it settles. */
  private whenSettled<T>(value: T | Promise<T>, onValue: (value: T) => void, onError: (error: unknown) => void): void {
    this.asyncPending++;
    Promise.resolve(value).then(
      (settled) => {
        this.asyncPending--;
        onValue(settled);
      },
      (error) => {
        this.asyncPending--;
        onError(error);
      },
    );
  }

  /** Sends a response that arrived outside the handler's call (a promise, an error answer), then flushes it. */
  private complete(conn: Connection, response: Response, answer: Answer): void {
    if (conn.closed) return;
    conn.sender.send(response, answer); // a failure comes back through responseFailed, never as a throw
    conn.sender.flush();
  }

  /**
   * A response failed before its head was written (ResponseSender.send rolled its bytes back): the handler's
   * is answered like a throw; a failed error answer falls back to the plain 500.
   */
  responseFailed(conn: Connection, error: unknown, answer: Answer): void {
    if (answer === Answer.Handler) {
      this.answerError(conn, error);
      return;
    }
    this.reportError(error, answer === Answer.ErrorHandler ? "the error handler's response failed:" : "the 500 failed:");
    if (answer === Answer.ErrorHandler) this.complete(conn, internalError(), Answer.Fallback);
    else conn.destroy(); // the plain 500 itself failed: nothing is left to answer with
  }

  private answerError(conn: Connection, error: unknown): void {
    this.stats.handlerErrors++;
    if (conn.closed) return;
    const fallback = () => this.complete(conn, internalError(), Answer.Fallback);
    if (!this.errorHandler) {
      this.reportError(error);
      fallback();
      return;
    }
    let answer: Response | Promise<Response>;
    try {
      answer = this.errorHandler(error);
    } catch (secondary) {
      this.reportError(secondary, "the error handler threw:");
      fallback();
      return;
    }
    this.whenSettled(
      answer,
      (response) => {
        if (runtime.isResponse(response)) this.complete(conn, response, Answer.ErrorHandler);
        else {
          this.reportError(new TypeError(`error handler must return a Response, got ${describe(response)}`));
          fallback();
        }
      },
      (secondary) => {
        this.reportError(secondary, "the error handler threw:");
        fallback();
      },
    );
  }

  /** This worker's error lines, rate-limited (a flood of failing handlers must not flood stderr). */
  private readonly errorLog = new ErrorLog();

  reportError(error: unknown, what = "handler error:"): void {
    this.errorLog.report(`reuseport: ${what}`, error);
  }

  setDeadline(conn: Connection, kind: Deadline, afterMs: number): void {
    conn.deadlineKind = kind;
    conn.deadline = (this.batchNow || Date.now()) + afterMs;
    this.startSweep();
  }

  clearDeadline(conn: Connection): void {
    conn.deadlineKind = Deadline.None;
  }

  /** Output began to wait for the socket, or the socket took some: cut if it takes nothing for sendTimeoutMs. */
  armSendDeadline(conn: Connection): void {
    conn.sendDeadline = (this.batchNow || Date.now()) + this.limits.sendTimeoutMs;
    this.startSweep();
  }

  private startSweep(): void {
    if (this.sweepTimer !== null) return;
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepEveryMs);
    // deno-lint-ignore no-explicit-any
    (this.sweepTimer as any).unref?.();
  }

  /**
   * Enforces deadlines: a cut for output the client does not take, 408 for a head or a body that takes too long
   * (a quiet close for a body already answered), a quiet close for idle keep-alive.
   */
  private sweep(): void {
    const now = Date.now();
    for (const conn of this.connections) {
      if (conn === undefined) continue;
      if (conn.sendDeadline !== 0 && conn.sendDeadline <= now) {
        this.stats.sendTimeouts++;
        conn.destroy();
        continue;
      }
      if (conn.deadlineKind === Deadline.None || conn.deadline > now) continue;
      // An answer is still leaving: the idle wait starts once it is sent (Connection.onOutputDrained).
      if (conn.deadlineKind === Deadline.Idle && conn.sender.wantsWritable) continue;
      if (conn.deadlineKind === Deadline.Body) {
        conn.deadlineKind = Deadline.None;
        conn.onBodyTimeout();
        continue;
      }
      this.stats.timeouts++;
      if (conn.deadlineKind === Deadline.Head) {
        conn.deadlineKind = Deadline.None;
        conn.failRequest(408, "TIMEOUT", `request head not received within ${this.limits.headerTimeoutMs} ms`);
      } else conn.destroy();
    }
    if (this.stats.active === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  /** Runs conn.resume() soon, outside the current pass (its leftover bytes wait their turn). */
  deferResume(conn: Connection): void {
    this.resumeQueue.push(conn);
    if (this.resumeScheduled) return;
    this.resumeScheduled = true;
    queueMicrotask(() => {
      this.resumeScheduled = false;
      const queue = this.resumeQueue.splice(0);
      for (const c of queue) c.resume();
    });
  }

  release(conn: Connection): void {
    this.onConnectionClosed?.();
    const bitmap = this.fdBitmap;
    if (bitmap !== null && conn.fd >> 3 < bitmap.byteLength) bitmap[conn.fd >> 3] &= ~(1 << (conn.fd & 7));
    this.connections[conn.slot] = undefined;
    this.freeSlots.push(conn.slot);
    this.stats.active--;
    this.flushSends(); // the batch may hold this fd's last bytes, and the fd number is reused once closed
    // An armed recv holds the socket open past close(): cancel it while the fd still names it, or, where the
    // ring takes no cancel, shut the socket down so that the recv ends and lets go of it.
    if (conn.recvsArmed > 0 && this.loop.cancel(conn.fd, true) < 0) lib.rp_shutdown(conn.fd, SHUT_RDWR);
    lib.rp_close(conn.fd); // closing removes it from the epoll set
    if (this.stopping && this.stats.active === 0) this.shutdownLoop();
  }

  /**
   * Stops accepting. Graceful: the listener retires (Listener.retire: what its accept queue holds is taken
   * and served, and no handshake under way is reset as it closes); handedOver: a successor serves the same
   * socket, so this fd just closes and the socket stays in the group (ClusterServer.copyListener). In-flight requests finish and are answered with Connection: close; idle connections get idleGraceMs
   * to send one more request (answered with close), then close, and one that has not sent its first
   * request yet gets FIRST_REQUEST_GRACE_MS. Not graceful: everything closes now.
   */
  stop(graceful: boolean, idleGraceMs = 0, handedOver = false): void {
    if (!this.stopping) {
      this.stopping = true;
      const open = this.listenerOpen;
      this.listenerOpen = false;
      this.loop.remove(this.listener.fd);
      this.onClosing?.("listener");
      if (graceful && open && !handedOver && this.listener.transport === "tcp") {
        const accepted = new Int32Array(RETIRE_ACCEPTS_MAX);
        const count = this.listener.retire(accepted);
        for (let i = 0; i < count; i++) {
          lib.rp_getpeername(accepted[i], this.peerScratch);
          this.take(accepted[i]);
        }
      } else this.listener.close();
    }
    for (const conn of this.connections) {
      if (conn === undefined) continue;
      if (!graceful) conn.destroy();
      else {
        conn.closeAfterResponse = true;
        if (idleGraceMs === 0 && conn.isIdle && conn.requests > 0) conn.destroy();
      }
    }
    if (graceful) {
      if (idleGraceMs > 0) this.closeIdleAfter(idleGraceMs, (conn) => conn.requests > 0);
      // A connection accepted just before the stop whose first request is not here yet is no idle keep-alive:
      // its client sent (or is sending) a request it expects an answer to. It gets a little longer.
      this.closeIdleAfter(Math.max(idleGraceMs, FIRST_REQUEST_GRACE_MS), () => true);
    }
    if (this.stats.active === 0) this.shutdownLoop();
  }

  /** In afterMs, closes the idle connections that `which` picks, once what the kernel holds for them was read. */
  private closeIdleAfter(afterMs: number, which: (conn: Connection) => boolean): void {
    const timer = setTimeout(() => {
      // A request already in a socket but not yet read would look idle: read what the kernel holds first.
      this.loop.pollNow();
      for (const conn of this.connections) if (conn?.isIdle && which(conn)) conn.destroy();
    }, afterMs);
    this.stopTimers.push(timer); // cleared when the loop closes (Deno's timers cannot be unref'd)
  }

  private shutdownLoop(): void {
    if (this.loopClosed) return;
    this.loopClosed = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const timer of this.stopTimers.splice(0)) clearTimeout(timer);
    this.errorLog.summarize(); // what the rate limit left out is told before the engine goes
    this.onClosing?.("loop");
    this.loop.close();
    void this.loop.ended.then(this.closedResolve, this.closedResolve);
  }
}

function internalError(): Response {
  return new Response("Internal Server Error", { status: 500, headers: { "content-type": "text/plain;charset=utf-8" } });
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return (value as object).constructor?.name ?? "object";
  return typeof value;
}
