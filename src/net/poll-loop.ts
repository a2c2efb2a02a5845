// Integrates an epoll set with the runtime's event loop without blocking it.
// A native wake thread watches the epoll fd and writes a byte to a pipe when it becomes
// readable; the runtime reads that pipe with its own async I/O, we drain epoll_wait(0)
// synchronously (bounded rounds, then yield so timers stay fair) and re-arm the thread.
// With io_uring (useRing), sockets are read by multishot recvs into provided buffers and the
// epoll set is itself polled by the ring, so one reap per round covers both; the ring's eventfd
// then wakes us, with no thread of ours (Bun polls it in its own loop, Deno waits on its pool).
// While traffic is dense the loop sleeps in the ring itself between rounds, for at most a tick.
// Why this shape, with numbers: docs/event-loop.md.
import process from "node:process";
import { lib, runtime, type WakeReader } from "../ffi/index.ts";
import { check, EBADF, EINVAL, ENOSYS, EPERM, SyscallError } from "../ffi/errno.ts";
import { ConfigError } from "../errors.ts";
import { EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD } from "./constants.ts";

export const POLL_EVENTS_MAX = 1024;
/** Drain rounds per wake before yielding to timers and promises. */
const DRAIN_ROUNDS_MAX = 64;
/**
 * Epoll path: empty epoll_wait(0) results tolerated after a busy round before the wake thread is re-armed:
 * each one yields a setImmediate turn (promises, timers) and polls again. Under keep-alive load the next
 * requests often arrive within that turn, which saves the wake-thread -> runtime -> JS hand-off (2 % of
 * the CPU per request on both runtimes); idle, a wake costs at most this many extra polls. The ring path
 * goes idle at once: its wake needs no thread of ours, and there the spins cost more than they saved
 * (docs/event-loop.md, "The io_uring read path").
 */
const IDLE_SPINS_MAX = 2;
/** Read once: a lazy global getter on Deno. */
const schedule: (callback: () => void) => unknown = globalThis.setImmediate;

export type EventHandler = (count: number, events: Uint32Array) => void;
/** completions[4i .. 4i+3] = token, generation, result (as u32), flags; for i < count. */
export type CompletionHandler = (count: number, completions: Uint32Array) => void;

/**
 * Provided receive buffers of a ring: how many, and how large (a request head usually fits one; a longer one
 * arrives in several). The kernel hands them out in ring order, so every one is touched in turn: 512 KiB
 * in all kept CPU per request 1.3 % lower than 4 MiB (256 of 16 KiB) on Deno, no worse on Bun.
 */
const RING_BUFFERS = 128;
export const RING_BUFFER_BYTES = 4096;
const RING_ENTRIES = 512;
const RING_COMPLETIONS_MAX = 1024;
/** The token of the ring's poll of the epoll fd; never a connection's. */
const EPOLL_READY_TOKEN = 0xffff_fff1;
/** The token of the ring's tick (see tickMicros); never a connection's. */
const TICK_TOKEN = 0xffff_fff2;
/**
 * Ring path, while traffic is dense: an empty round sleeps in io_uring_enter until the next completion instead
 * of handing the thread back to the runtime, and a tick (a ring timeout, REUSEPORT_TICK_US) ends that sleep so
 * that the runtime's timers, I/O and promises still get a turn at least that often. A tick with no traffic
 * since it was armed ends the stretch: the runtime's own wait takes over again. Why (docs/event-loop.md):
 * the runtime's wake costs more than a sleep in the ring, on Deno a blocking-pool round trip; and the sleep
 * sets no timer of its own, since arming one per sleep cost 12 % of the CPU per request here.
 */
const TICK_US_DEFAULT = 1000;

/** REUSEPORT_TICK_US: how long (µs) the loop may keep the thread in the ring; 0: never sleeps there. */
function tickMicros(): number {
  const value = process.env.REUSEPORT_TICK_US;
  if (value === undefined || value === "") return TICK_US_DEFAULT;
  const micros = Number(value);
  if (!Number.isInteger(micros) || micros < 0 || micros > 1_000_000) {
    throw new ConfigError("REUSEPORT_TICK_US", `must be an integer from 0 to 1000000 (µs), got ${JSON.stringify(value)}`);
  }
  return micros;
}
export const CQE_F_MORE = 2;

/**
 * Poll loops open in this thread (this module instance is per JS thread). A loop sleeps in its ring only while
 * it is the only one: a sleep would keep another server of the same thread waiting for the tick.
 */
let openLoops = 0;

/** 0 when this kernel (and seccomp policy) lets an engine read through io_uring, else the -errno of the attempt. */
export function probeRing(): number {
  const ring = lib.rp_ring_create(8, 1, 4096, 8);
  if (ring < 0) return ring;
  lib.rp_ring_destroy(ring);
  return 0;
}

/** REUSEPORT_IO: "auto" (io_uring where the kernel allows it), "epoll" or "io_uring" (required). */
function ioMode(): "auto" | "epoll" | "io_uring" {
  const value = process.env.REUSEPORT_IO ?? "auto";
  if (value === "auto" || value === "epoll" || value === "io_uring") return value;
  throw new ConfigError("REUSEPORT_IO", `must be "auto", "epoll" or "io_uring", got ${JSON.stringify(value)}`);
}

/**
 * Native memory a loop owns (the poller's event slots, the ring's completions and provided buffers): freed
 * when the loop closes outside a drain, at the end of the drain otherwise, or when a loop that was never
 * closed is collected. The views over it never leave this module and the engine's handlers (which use them
 * only while a drain runs), so no JS reference outlives the memory.
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
  private eventSlots: Uint32Array;
  private readonly native: NativeParts;
  private reader: WakeReader | null = null;
  /** Resolves once the wake reader has returned for good after close() and the runtime let go of the fd. */
  ended: Promise<void> = Promise.resolve();
  private handler: EventHandler | null = null;
  private stopped = false;
  /** Date.now() when the current drain began: its rounds (at most DRAIN_ROUNDS_MAX, well under a
   * millisecond each) share one clock read for deadlines and the Date header. */
  now = 0;
  /** Empty polls since the last round that had events (see IDLE_SPINS_MAX). */
  private idleSpins = 0;
  /** The io_uring handle, or -1 (epoll only). */
  ring = -1;
  /** The ring's provided buffers (a completion's bytes are at (flags >>> 16) * RING_BUFFER_BYTES). */
  ringBuffers: Uint8Array = new Uint8Array(0);
  private completions: Uint32Array = new Uint32Array(0);
  private completionHandler: CompletionHandler | null = null;
  /** The eventfd the kernel signals when the ring has work (the runtime watches it: no wake thread). */
  private ringEventFd = -1;
  /** drain() is running (its rounds reap, so queued SQEs need no drain of their own). */
  private draining = false;
  private submitScheduled = false;
  /** The ring reported the epoll fd readable and epoll_wait has not come back empty since. */
  private epollReady = false;
  /** A tick is armed: a sleep in io_uring_enter ends by itself. */
  private ticking = false;
  /** Work came since the tick was armed. */
  private busy = false;
  /** The last round reaped a tick that ended a busy stretch: yield to the runtime before going on. */
  private ticked = false;
  /** A whole tick passed without work: go idle through the runtime until work comes again. */
  private quiet = true;
  /** Sleeps in the ring so far (tests, diagnostics). */
  sleeps = 0;
  /** REUSEPORT_TICK_US, read when the ring is set up (0: no sleeps in the ring). */
  private tickUs = 0;
  /** Whether the thread may sleep in the ring now: false while JS work of the owner is pending (promises). */
  maySleep: () => boolean = () => false;

  constructor(readonly eventsMax: number = POLL_EVENTS_MAX) {
    this.handle = check(lib.rp_poller_create(eventsMax), "epoll_create1");
    this.native = { poller: this.handle, ring: -1 };
    releaseNative.register(this, this.native, this);
    this.epollFd = check(lib.rp_poller_fd(this.handle), "epoll_create1");
    this.eventSlots = new Uint32Array(runtime.viewNative(lib.rp_poller_events(this.handle), eventsMax * 8));
    openLoops++;
  }

  add(fd: number, mask: number, token: number): void {
    if (this.stopped) return; // the epoll fd is closed, and its number may already be another's
    const rc = lib.rp_epoll_ctl(this.epollFd, EPOLL_CTL_ADD, fd, mask >>> 0, token); // >>> 0: EPOLLET is bit 31
    if (rc < 0) throw new SyscallError("epoll_ctl(ADD)", -rc, `fd ${fd}`);
  }

  modify(fd: number, mask: number, token: number): void {
    if (this.stopped) return;
    const rc = lib.rp_epoll_ctl(this.epollFd, EPOLL_CTL_MOD, fd, mask >>> 0, token);
    if (rc < 0) throw new SyscallError("epoll_ctl(MOD)", -rc, `fd ${fd}`);
  }

  /** Removes fd; closing an fd removes it too, so callers about to close may skip this. */
  remove(fd: number): void {
    if (this.stopped) return;
    lib.rp_epoll_ctl(this.epollFd, EPOLL_CTL_DEL, fd, 0, 0);
  }

  /** One synchronous epoll_wait; returns the number of events (read them with eventToken/eventMask). */
  wait(timeoutMs = 0): number {
    if (this.stopped) return 0;
    return check(lib.rp_poller_wait(this.handle, timeoutMs), "epoll_wait");
  }

  /** The token of the last wait's event i (i below its count). */
  eventToken(i: number): number {
    return this.eventSlots[2 * i + 1];
  }

  /** The epoll mask of the last wait's event i. */
  eventMask(i: number): number {
    return this.eventSlots[2 * i];
  }

  /**
   * Reads sockets through io_uring from now on (before start; REUSEPORT_IO decides): returns false
   * where the kernel or a seccomp policy does not allow it, and the loop stays epoll-only.
   */
  useRing(onCompletions: CompletionHandler): boolean {
    const mode = ioMode();
    if (mode === "epoll") return false;
    const tickUs = tickMicros(); // before the ring exists: a bad value then leaves nothing to close
    const ring = lib.rp_ring_create(RING_ENTRIES, RING_BUFFERS, RING_BUFFER_BYTES, RING_COMPLETIONS_MAX);
    if (ring < 0) {
      if (mode === "auto" && (ring === -ENOSYS || ring === -EPERM || ring === -EINVAL)) return false;
      throw new SyscallError("io_uring_setup", -ring);
    }
    this.ring = ring;
    this.native.ring = ring;
    this.tickUs = tickUs;
    this.ringBuffers = new Uint8Array(runtime.viewNative(lib.rp_ring_buffers(ring), RING_BUFFERS * RING_BUFFER_BYTES));
    this.completions = new Uint32Array(runtime.viewNative(lib.rp_ring_completions(ring), RING_COMPLETIONS_MAX * 16));
    this.completionHandler = onCompletions;
    this.ringEventFd = check(lib.rp_ring_fd(ring), "io_uring_register");
    check(lib.rp_ring_poll(ring, this.epollFd, EPOLL_READY_TOKEN), "io_uring_enter");
    return true;
  }

  /** Queues a multishot recv of fd; its completions carry token and generation. 0 or -errno. */
  recv(fd: number, token: number, generation: number): number {
    if (this.stopped) return -EBADF;
    const rc = lib.rp_ring_recv(this.ring, fd, token, generation);
    this.submitSoon();
    return rc;
  }

  /**
   * Cancels fd's recvs; `now` for an fd about to be closed (see zig/src/ring.zig). 0, or -errno when the
   * cancel could not be queued or submitted (the recv may then still hold the socket).
   */
  cancel(fd: number, now: boolean): number {
    if (this.stopped) return 0; // the ring is closed or closing: the kernel cancels everything with it
    const rc = lib.rp_ring_cancel(this.ring, fd, now ? 1 : 0);
    if (!now) this.submitSoon();
    return rc;
  }

  /**
   * Queued SQEs go to the kernel with the next reap. Inside a drain that comes by itself (the next round,
   * or rp_ring_idle reporting them); queued from elsewhere (a body reader resuming, a response finishing
   * in a promise) while the loop sleeps, nothing would reap: a drain is scheduled for them.
   */
  private submitSoon(): void {
    if (this.draining || this.submitScheduled || this.stopped) return;
    this.submitScheduled = true;
    schedule(this.submitQueued);
  }

  private submitQueued = (): void => {
    this.submitScheduled = false;
    if (!this.draining) this.drain();
  };

  /** Handles what is ready now (one drain), outside the runtime's wake: for a caller about to act on idleness. */
  pollNow(): void {
    if (!this.draining && this.reader) this.drain();
  }

  /** Starts delivering events to handler from the runtime's event loop. */
  start(handler: EventHandler): void {
    if (this.reader) throw new Error("PollLoop already started");
    this.handler = handler;
    const wakeFd = this.ring >= 0 ? this.ringEventFd : check(lib.rp_poller_wake_fd(this.handle), "pipe");
    this.reader = runtime.openWakeReader(wakeFd);
    this.ended = this.readWakes();
  }

  private async readWakes(): Promise<void> {
    while (!this.stopped && this.reader && (await this.reader.next())) {
      if (this.stopped) return;
      this.drain();
    }
  }

  /** Drains ready events; re-arms the wake thread only once epoll reports nothing. */
  private drain = (): void => {
    if (this.stopped) return;
    this.now = Date.now();
    this.draining = true;
    try {
      this.drainRounds();
    } finally {
      this.draining = false;
      if (this.stopped) this.releaseNative(); // close() came from a handler of this drain
    }
  };

  private drainRounds(): void {
    let workRounds = 0;
    for (let round = 0; round < DRAIN_ROUNDS_MAX; round++) {
      const count = this.ring >= 0 ? this.pollRing() : this.wait(0);
      if (this.stopped) return;
      if (this.ticked) {
        this.ticked = false;
        schedule(this.drain); // still busy: the runtime's timers and I/O first, then go on
        return;
      }
      if (count === 0) {
        if (this.ring >= 0) {
          if (this.tickUs > 0 && !this.quiet && openLoops === 1 && this.maySleep()) {
            if (!this.ticking) this.armTick();
            this.sleeps++;
            const rc = lib.rp_ring_wait(this.ring);
            if (rc < 0) throw new SyscallError("io_uring_enter", -rc);
            this.now = Date.now();
            continue;
          }
          if (lib.rp_ring_idle(this.ring) > 0) continue; // work came between the last reap and the eventfd's re-enabling
          return; // the re-enabled eventfd wakes the reader
        }
        if (this.idleSpins < IDLE_SPINS_MAX) {
          this.idleSpins++;
          schedule(this.drain);
          return;
        }
        this.idleSpins = 0;
        lib.rp_poller_arm(this.handle);
        return;
      }
      this.idleSpins = 0;
      if (++workRounds === 2) this.quiet = false; // work came while we handled work: traffic is dense
      if (this.ring < 0) this.handler!(count, this.eventSlots);
      if (this.stopped) return;
    }
    // Still busy: let timers, promises and I/O callbacks run, then go on without a wake.
    schedule(this.drain);
  }

  /**
   * One round in ring mode: a reap (no syscall when the kernel has nothing for us), its completions
   * to the handler, and epoll_wait(0) while the ring says the epoll fd is readable. Returns how
   * many completions and events were handled.
   */
  private pollRing(): number {
    const reaped = lib.rp_ring_reap(this.ring);
    if (reaped < 0) throw new SyscallError("io_uring_enter", -reaped);
    const completions = this.completions;
    let tick = false;
    for (let i = 0; i < reaped; i++) {
      const token = completions[4 * i];
      if (token === TICK_TOKEN) tick = true; // the completion handler skips this token too
      if (token !== EPOLL_READY_TOKEN) continue;
      this.epollReady = true; // the completion handler skips this token
      if (!(completions[4 * i + 3] & CQE_F_MORE)) lib.rp_ring_poll(this.ring, this.epollFd, EPOLL_READY_TOKEN);
    }
    if (reaped > 0) this.completionHandler!(reaped, completions);
    let work = tick ? reaped - 1 : reaped;
    if (this.epollReady && !this.stopped) {
      const count = this.wait(0);
      if (count === 0) this.epollReady = false;
      else this.handler!(count, this.eventSlots);
      work += count;
    }
    if (work > 0) this.busy = true;
    if (tick) {
      this.ticking = false;
      if (this.busy) this.ticked = true;
      else this.quiet = true;
    }
    return work;
  }

  private armTick(): void {
    check(lib.rp_ring_tick(this.ring, TICK_TOKEN, this.tickUs), "io_uring_enter");
    this.ticking = true;
    this.busy = false;
  }

  /**
   * Stops the wake thread (joined natively) and closes the epoll fd and the ring; registered fds stay open.
   * Called from a handler, inside a drain, the native side goes at the end of that drain: the drain's
   * caller may still be reading this round's events, completions and buffers.
   */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    openLoops--;
    if (this.reader) {
      const released = this.reader.close();
      this.ended = Promise.all([this.ended, released]).then(() => {});
    }
    if (!this.draining) this.releaseNative();
  }

  private releaseNative(): void {
    releaseNative.unregister(this);
    this.eventSlots = NO_EVENTS;
    this.completions = NO_EVENTS;
    this.ringBuffers = new Uint8Array(0);
    this.ring = -1;
    destroyNative(this.native);
  }
}
