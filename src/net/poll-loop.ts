// Integrates an epoll set with the runtime's event loop without blocking it. The runtime waits for a wake
// fd with its own async I/O; each wake runs one drain: bounded rounds that take what is ready and hand it
// to the owner, then a yield so timers stay fair. How a round reads, and how the loop goes idle, is its
// read path's driver: epoll-driver.ts, or ring-driver.ts once useRing succeeds. Why this shape:
// docs/event-loop.md.
import { lib, runtime, type WakeReader } from "../ffi/index.ts";
import { check, EBADF, SyscallError } from "../ffi/errno.ts";
import { LAYOUT } from "../ffi/symbols.ts";
import { checkIoMode, type IoMode, settings } from "../config.ts";
import { EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD } from "./constants.ts";
import { EpollDriver } from "./epoll-driver.ts";
import type { DriverHost, ReadDriver } from "./read-driver.ts";
import { type CompletionHandler, createRing, RingDriver, ringUnavailable } from "./ring-driver.ts";

export { CQE_F_MORE, probeRing, RING_BUFFER_BYTES } from "./ring-driver.ts";
export type { CompletionHandler } from "./ring-driver.ts";
export type { IoMode } from "../config.ts";

export const POLL_EVENTS_MAX = 1024;
/** Drain rounds per wake before yielding to timers and promises. */
const DRAIN_ROUNDS_MAX = 64;

export type EventHandler = (count: number, events: Uint32Array) => void;

export interface PollLoopOptions {
  /** The read path useRing takes; default REUSEPORT_IO (src/config.ts). */
  io?: IoMode;
}

/**
 * Poll loops open in this thread (this module instance is per JS thread). A loop sleeps in its ring only while
 * it is the only one: a sleep would keep another server of the same thread waiting for the tick.
 */
let openLoops = 0;

/**
 * Native memory a loop owns (the poller's event slots, the ring's completions and provided buffers): freed
 * when the loop closes outside a drain, at the end of the drain otherwise, or when a loop that was never
 * closed is collected. The views over it never leave this module, its drivers and the owner's handlers
 * (which use them only while a drain runs), so no JS reference outlives the memory.
 */
interface NativeParts {
  poller: number;
  ring: number;
}
const releaseNative = new FinalizationRegistry<NativeParts>(destroyNative);
function destroyNative(parts: NativeParts): void {
  if (parts.poller >= 0) lib.rp_poller_destroy(parts.poller);
  if (parts.ring >= 0) lib.rp_ring_destroy(parts.ring); // the kernel cancels what is still armed
  parts.poller = -1;
  parts.ring = -1;
}

const NO_EVENTS = new Uint32Array(0);

export class PollLoop {
  readonly handle: number;
  readonly epollFd: number;
  /**
   * events[2i] = epoll mask, events[2i+1] = token, for i < the count handed to the handler: valid only
   * during the handler's call (after close(), an empty array).
   */
  #eventSlots: Uint32Array;
  readonly #native: NativeParts;
  #reader: WakeReader | null = null;
  /** Resolves once the wake reader has returned for good after close() and the runtime let go of the fd. */
  ended: Promise<void> = Promise.resolve();
  #handler: EventHandler | null = null;
  #stopped = false;
  /** Date.now() when the current drain began: its rounds (at most DRAIN_ROUNDS_MAX, well under a
   * millisecond each) share one clock read for deadlines and the Date header. */
  now = 0;
  /** The io_uring handle, or -1 (epoll only). */
  ring = -1;
  /** The ring's provided buffers (a completion's bytes are at (flags >>> 16) * RING_BUFFER_BYTES). */
  ringBuffers: Uint8Array = new Uint8Array(0);
  /** Whether the thread may sleep in the ring now: false while JS work of the owner is pending (promises). */
  maySleep: () => boolean = () => false;
  /** drain() is running (its rounds reap, so queued SQEs need no drain of their own). */
  #draining = false;
  #submitScheduled = false;
  readonly #io: IoMode | undefined;
  readonly #host: DriverHost;
  #driver: ReadDriver;
  #ringDriver: RingDriver | null = null;

  constructor(readonly eventsMax: number = POLL_EVENTS_MAX, options: PollLoopOptions = {}) {
    this.#io = options.io === undefined ? undefined : checkIoMode(options.io); // before anything native exists
    this.handle = check(lib.rp_poller_create(eventsMax), "epoll_create1");
    this.#native = { poller: this.handle, ring: -1 };
    releaseNative.register(this, this.#native, this);
    this.epollFd = check(lib.rp_poller_fd(this.handle), "epoll_create1");
    this.#eventSlots = new Uint32Array(runtime.viewNative(lib.rp_poller_events(this.handle), eventsMax * LAYOUT.epollEventSlotBytes));
    this.#host = this.#driverHost();
    this.#driver = new EpollDriver(this.#host, this.handle);
    openLoops++;
  }

  /** What the drivers use of this loop, without widening its public API. */
  #driverHost(): DriverHost {
    const loop = this;
    return {
      get now() {
        return loop.now;
      },
      set now(value: number) {
        loop.now = value;
      },
      get stopped() {
        return loop.#stopped;
      },
      dispatchEpoll: () => {
        const count = this.wait(0);
        if (count > 0) this.#handler!(count, this.#eventSlots);
        return count;
      },
      maySleep: () => openLoops === 1 && this.maySleep(),
    };
  }

  add(fd: number, mask: number, token: number): void {
    if (this.#stopped) return; // the epoll fd is closed, and its number may already be another's
    const rc = lib.rp_epoll_ctl(this.epollFd, EPOLL_CTL_ADD, fd, mask >>> 0, token); // >>> 0: EPOLLET is bit 31
    if (rc < 0) throw new SyscallError("epoll_ctl(ADD)", -rc, `fd ${fd}`);
  }

  modify(fd: number, mask: number, token: number): void {
    if (this.#stopped) return;
    const rc = lib.rp_epoll_ctl(this.epollFd, EPOLL_CTL_MOD, fd, mask >>> 0, token);
    if (rc < 0) throw new SyscallError("epoll_ctl(MOD)", -rc, `fd ${fd}`);
  }

  /** Removes fd; closing an fd removes it too, so callers about to close may skip this. */
  remove(fd: number): void {
    if (this.#stopped) return;
    lib.rp_epoll_ctl(this.epollFd, EPOLL_CTL_DEL, fd, 0, 0);
  }

  /** One synchronous epoll_wait; returns the number of events (read them with eventToken/eventMask). */
  wait(timeoutMs = 0): number {
    if (this.#stopped) return 0;
    return check(lib.rp_poller_wait(this.handle, timeoutMs), "epoll_wait");
  }

  /** The token of the last wait's event i (i below its count). */
  eventToken(i: number): number {
    return this.#eventSlots[2 * i + 1];
  }

  /** The epoll mask of the last wait's event i. */
  eventMask(i: number): number {
    return this.#eventSlots[2 * i];
  }

  /** Sleeps in the ring so far (tests, diagnostics). */
  get sleeps(): number {
    return this.#ringDriver?.sleeps ?? 0;
  }

  /**
   * Reads sockets through io_uring from now on (before start). `io` (default: the constructor's option, else
   * REUSEPORT_IO) decides: "epoll" returns false; "auto" returns false where the kernel or a seccomp policy
   * does not allow a ring, and the loop stays epoll-only; "io_uring" throws a SyscallError there.
   */
  useRing(onCompletions: CompletionHandler, io?: IoMode): boolean {
    const mode = io === undefined ? (this.#io ?? settings.io.read()) : checkIoMode(io);
    if (mode === "epoll") return false;
    const tickUs = settings.tickUs.read(); // before the ring exists: a bad value then leaves nothing to close
    const ring = createRing();
    if (ring < 0) {
      if (mode === "auto" && ringUnavailable(-ring)) return false;
      throw new SyscallError("io_uring_setup", -ring);
    }
    this.ring = ring;
    this.#native.ring = ring; // from here on the loop destroys it, even if the driver's set-up throws
    const driver = new RingDriver(this.#host, ring, this.epollFd, tickUs, onCompletions);
    this.ringBuffers = driver.buffers;
    this.#ringDriver = driver;
    this.#driver = driver;
    return true;
  }

  /** Queues a multishot recv of fd; its completions carry token and generation. 0 or -errno. */
  recv(fd: number, token: number, generation: number): number {
    if (this.#stopped || this.#ringDriver === null) return -EBADF;
    const rc = this.#ringDriver.recv(fd, token, generation);
    this.#submitSoon();
    return rc;
  }

  /**
   * Cancels fd's recvs; `now` for an fd about to be closed (see zig/src/ring.zig). 0, or -errno when the
   * cancel could not be queued or submitted (the recv may then still hold the socket).
   */
  cancel(fd: number, now: boolean): number {
    if (this.#stopped) return 0; // the ring is closed or closing: the kernel cancels everything with it
    if (this.#ringDriver === null) return -EBADF;
    const rc = this.#ringDriver.cancel(fd, now);
    if (!now) this.#submitSoon();
    return rc;
  }

  /**
   * Queued SQEs go to the kernel with the next reap. Inside a drain that comes by itself (the next round,
   * or rp_ring_idle reporting them); queued from elsewhere (a body reader resuming, a response finishing
   * in a promise) while the loop sleeps, nothing would reap: a drain is scheduled for them.
   */
  #submitSoon(): void {
    if (this.#draining || this.#submitScheduled || this.#stopped) return;
    this.#submitScheduled = true;
    runtime.schedule(this.#submitQueued);
  }

  #submitQueued = (): void => {
    this.#submitScheduled = false;
    if (!this.#draining) this.#drain();
  };

  /** Handles what is ready now (one drain), outside the runtime's wake: for a caller about to act on idleness. */
  pollNow(): void {
    if (!this.#draining && this.#reader) this.#drain();
  }

  /** Starts delivering events to handler from the runtime's event loop. */
  start(handler: EventHandler): void {
    if (this.#reader) throw new Error("PollLoop already started");
    this.#handler = handler;
    this.#reader = runtime.openWakeReader(this.#driver.wakeFd());
    this.ended = this.#readWakes();
  }

  async #readWakes(): Promise<void> {
    while (!this.#stopped && this.#reader && (await this.#reader.next())) {
      if (this.#stopped) return;
      this.#drain();
    }
  }

  /** One drain: at most DRAIN_ROUNDS_MAX rounds, until the driver goes idle or yields to the runtime. */
  #drain = (): void => {
    if (this.#stopped) return;
    this.now = Date.now();
    this.#draining = true;
    try {
      this.#drainRounds();
    } finally {
      this.#draining = false;
      if (this.#stopped) this.#releaseNative(); // close() came from a handler of this drain
    }
  };

  #drainRounds(): void {
    const driver = this.#driver;
    driver.beginDrain();
    for (let round = 0; round < DRAIN_ROUNDS_MAX; round++) {
      const end = driver.round();
      if (this.#stopped || end === "idle") return;
      if (end === "yield") break;
    }
    // Still busy, or the driver yields: timers, promises and I/O callbacks run, then the next drain goes on without a wake.
    runtime.schedule(this.#drain);
  }

  /**
   * Stops the wake thread (joined natively) and closes the epoll fd and the ring; registered fds stay open.
   * Called from a handler, inside a drain, the native side goes at the end of that drain: the drain's
   * caller may still be reading this round's events, completions and buffers.
   */
  close(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    openLoops--;
    if (this.#reader) {
      const released = this.#reader.close();
      this.ended = Promise.all([this.ended, released]).then(() => {});
    }
    if (!this.#draining) this.#releaseNative();
  }

  #releaseNative(): void {
    releaseNative.unregister(this);
    this.#eventSlots = NO_EVENTS;
    this.#ringDriver?.detach();
    this.ringBuffers = new Uint8Array(0);
    this.ring = -1;
    destroyNative(this.#native);
  }
}
