// The HTTP engine of one worker: its listener and PollLoop (epoll, reads through io_uring where allowed), the
// connection table, accepts, the poll rounds (events or ring completions to connections) and graceful stop.
// What it holds for its connections (ConnectionHost): the shared read buffer and head parser, the send batch
// (send-batch.ts), deadlines (deadlines.ts), what answers a request (answers.ts) and the counters.
import { lib } from "../ffi/index.ts";
import { EAGAIN, ECANCELED, ENOBUFS } from "../ffi/errno.ts";
import { decodeSockaddr, type SocketAddress } from "../net/address.ts";
import { EPOLLET, EPOLLIN, EPOLLOUT, EPOLLRDHUP, IPPROTO_TCP, TCP_NODELAY } from "../net/constants.ts";
import type { Listener } from "../net/listener.ts";
import { CQE_F_MORE, PollLoop, RING_BUFFER_BYTES } from "../net/poll-loop.ts";
import { LISTENER_TOKEN } from "../net/tokens.ts";
import type { IoMode } from "../config.ts";
import { Connection, type ConnectionHost } from "./connection.ts";
import { type Limits, readBufferBytes, sweepIntervalMs } from "./limits.ts";
import { HeadParser } from "./parser.ts";
import { requestOwner } from "./request.ts";
import { Answer } from "./response-sender.ts";
import { SendBatch } from "./send-batch.ts";
import { Answers, type ErrorHandler, type Handler } from "./answers.ts";
import { EngineStats } from "./engine-stats.ts";
import { Deadline, Deadlines } from "./deadlines.ts";
import type { Upgrades } from "./upgrade.ts";

const SHUT_RDWR = 2;
/** Connections accepted per listener wake before other events get a turn. */
const ACCEPTS_PER_WAKE_MAX = 256;
/** accept4 errors that say the process or the kernel is out of something: EMFILE, ENFILE, ENOBUFS, ENOMEM. */
const ACCEPT_RESOURCE_ERRORS = new Set([24, 23, 105, 12]);
/** After such an error the listener rests this long (it stays readable, so epoll would spin). */
const ACCEPT_PAUSE_MS = 100;
/** A graceful stop takes at most this many connections from the accept queue (the rest, the kernel migrates or resets). */
const RETIRE_ACCEPTS_MAX = 4096;
/** A graceful stop waits this long for the first request of a connection accepted just before it. */
const FIRST_REQUEST_GRACE_MS = 1000;


export interface EngineOptions {
  limits: Limits;
  fetch: Handler;
  error: ErrorHandler | null;
  /** The read path (default: REUSEPORT_IO, else io_uring where the kernel allows it). */
  io?: IoMode;
}

export class Engine implements ConnectionHost {
  readonly loop: PollLoop;
  readonly parser: HeadParser;
  readonly readBuffer: Uint8Array;
  readonly stats: EngineStats;
  readonly batch: SendBatch;
  readonly deadlines: Deadlines;
  /** Calls the handler (or the error handler) for each request; Server sets its surface and swaps handlers. */
  readonly answers: Answers;
  /** The connection a request came from (server.requestIP): the request carries it, no map per request. */
  readonly requestOwners: { get(request: unknown): Connection | undefined } = {
    get(request: unknown): Connection | undefined {
      const owner = requestOwner(request);
      return owner instanceof Connection ? owner : undefined;
    },
  };
  readonly origin: string;
  stopping = false;
  /**
   * Handler and error-handler promises, streamed response bodies and request bodies not yet settled: while
   * any is pending the loop does not sleep in the ring, since they go on in promises (PollLoop.maySleep).
   */
  private pendingAsync = 0;
  /** Called for every connection that ends (least-connections steering counts them down). */
  onConnectionClosed: (() => void) | null = null;
  /** Called right before the engine closes its listener, then its loop (a cluster worker clears its slot's record of them). */
  onClosing: ((what: "listener" | "loop") => void) | null = null;
  /** Open connection fds as bits (a thread worker's, so the primary can close them if it dies). */
  fdBitmap: Uint8Array | null = null;
  /** Sockets are read through io_uring (PollLoop.useRing); otherwise recv() on EPOLLIN. */
  readonly readsByRing: boolean;
  /** Tells a connection's ring completions from those of an earlier one in the same slot. */
  private generation = 0;
  private readonly connections: (Connection | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private readonly resumeQueue: Connection[] = [];
  private resumeScheduled = false;
  private readonly peerScratch = new Uint8Array(128);
  private listenerOpen = true;
  /** The graceful stop's idle-close timers. */
  private readonly stopTimers: ReturnType<typeof setTimeout>[] = [];
  private loopClosed = false;
  private closedResolve!: () => void;
  readonly closed: Promise<void> = new Promise((resolve) => (this.closedResolve = resolve));

  readonly limits: Limits;

  /** @param statsFields the counters' slot (a cluster worker's, in shared memory); a private one by default */
  constructor(readonly listener: Listener, options: EngineOptions, statsFields?: Float64Array) {
    const { limits } = options;
    this.limits = limits;
    this.stats = new EngineStats(statsFields);
    this.answers = new Answers(options.fetch, options.error, this.stats, this);
    this.batch = new SendBatch((bytes) => (this.stats.bytesOut += bytes));
    this.deadlines = new Deadlines(this.connections, sweepIntervalMs(limits), limits.sendTimeoutMs, () => this.batch.now());
    this.parser = new HeadParser({ maxHeaderBytes: limits.maxHeaderBytes, maxHeaderCount: limits.maxHeaderCount });
    this.readBuffer = new Uint8Array(readBufferBytes(limits));
    const { address } = listener;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    this.origin = address.family === "unix" ? "http://localhost" : `http://${host === "0.0.0.0" || host === "[::]" ? "localhost" : host}:${address.port}`;
    this.loop = new PollLoop(undefined, { io: options.io });
    this.loop.maySleep = () => this.pendingAsync === 0 && !this.resumeScheduled;
    try {
      this.readsByRing = this.loop.useRing((count, completions) => this.onCompletions(count, completions));
    } catch (failure) {
      this.loop.close();
      throw failure;
    }
    this.loop.add(listener.fd, EPOLLIN, LISTENER_TOKEN);
    this.loop.start((count, events) => this.onEvents(count, events));
  }

  /** Ring mode: received bytes, ends of stream and ends of a multishot recv, per connection. */
  private onCompletions(count: number, completions: Uint32Array): void {
    this.batch.beginRound(this.loop.now);
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
      this.batch.endRound();
    }
  }

  /**
   * A connection paused or resumed reading: its epoll interest, or in ring mode its recv cancelled, or armed
   * again (a cancelled recv still counted ends with ECANCELED, and onCompletions re-arms it then).
   */
  readingChanged(conn: Connection): void {
    if (!this.readsByRing) this.updateInterest(conn);
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
    this.batch.beginRound(this.loop.now);
    try {
      this.dispatchEvents(count, events);
    } finally {
      this.batch.endRound();
    }
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
      if (conn.closed || this.readsByRing) continue; // ring mode: the recv reports HUP and ERR
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
    if (this.readsByRing) {
      this.loop.add(fd, EPOLLET, slot); // for EPOLLOUT later
      this.armRecv(conn);
    } else this.loop.add(fd, EPOLLIN | EPOLLRDHUP | EPOLLET, slot);
    this.deadlines.set(conn, Deadline.Idle, this.limits.idleTimeoutMs);
  }

  /**
   * Epoll interest follows the connection: IN unless reading is paused, OUT while bytes wait. Connections are
   * edge-triggered (epoll_wait does not re-check a socket we already read); a MOD re-reports what is still
   * ready, so calling this after a read that filled the buffer also re-arms the edge.
   */
  updateInterest(conn: Connection): void {
    if (conn.closed) return;
    const reading = !conn.readPaused && !this.readsByRing; // ring mode: reads are recvs (Connection.pauseReading)
    const mask = (reading ? EPOLLIN | EPOLLRDHUP : 0) | (conn.sender.wantsWritable ? EPOLLOUT : 0) | EPOLLET;
    this.loop.modify(conn.fd, mask, conn.slot);
  }

  get upgrades(): Upgrades | null {
    return this.answers.upgrades;
  }

  invoke(conn: Connection, request: Request): void {
    this.answers.invoke(conn, request);
  }

  responseFailed(conn: Connection, error: unknown, answer: Answer): void {
    this.answers.responseFailed(conn, error, answer);
  }

  reportError(error: unknown, what: string): void {
    this.answers.reportError(error, what);
  }

  asyncBegan(): void {
    this.pendingAsync++;
  }

  asyncEnded(): void {
    this.pendingAsync--;
  }

  /** Requests with the handler or being answered now (Bun's server.pendingRequests). */
  get pendingRequests(): number {
    let busy = 0;
    for (const conn of this.connections) if (conn !== undefined && conn.busy) busy++;
    return busy;
  }

  /** Handler promises, streamed bodies and request bodies not settled yet. */
  get asyncPending(): number {
    return this.pendingAsync;
  }

  /** Output began to wait for the socket, or the socket took some: cut if it takes nothing for sendTimeoutMs. */
  armSendDeadline(conn: Connection): void {
    this.deadlines.armSend(conn);
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
    this.batch.flush(); // the batch may hold this fd's last bytes, and the fd number is reused once closed
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
      // A socket that stays open elsewhere (a successor's, systemd's) only loses our fd: no retire filter on it.
      if (graceful && open && !handedOver && !this.listener.external && this.listener.transport === "tcp") {
        const accepted = new Int32Array(RETIRE_ACCEPTS_MAX);
        const count = this.listener.retire(accepted);
        for (let i = 0; i < count; i++) {
          if (lib.rp_getpeername(accepted[i], this.peerScratch) >= 0) this.take(accepted[i]);
          else {
            // Reset by its client since it was queued (ENOTCONN): counted like any accept that failed.
            this.stats.acceptErrors++;
            lib.rp_close(accepted[i]);
            this.onConnectionClosed?.();
          }
        }
      } else this.listener.close();
    }
    for (const conn of this.connections) {
      if (conn === undefined) continue;
      if (conn.upgraded !== null) conn.upgraded.onStop(graceful); // a WebSocket: its close handshake, or gone now
      else if (!graceful) conn.destroy();
      else {
        conn.closeAfterResponse = true;
        if (idleGraceMs === 0 && conn.isIdle && conn.requests > 0) conn.destroy();
      }
    }
    // Once per stop, and only while connections remain: the last one closing above already closed the loop.
    if (graceful && !this.loopClosed && this.stopTimers.length === 0) {
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
    this.stopTimers.push(timer); // cleared when the loop closes: none outlives the engine
  }

  private shutdownLoop(): void {
    if (this.loopClosed) return;
    this.loopClosed = true;
    this.deadlines.stop();
    for (const timer of this.stopTimers.splice(0)) clearTimeout(timer);
    this.answers.summarize(); // what the rate limit left out is told before the engine goes
    this.onClosing?.("loop");
    this.loop.close();
    void this.loop.ended.then(this.closedResolve, this.closedResolve);
  }
}
