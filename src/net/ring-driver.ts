// The io_uring read path: sockets are read by multishot recvs into provided buffers, and the ring polls the
// loop's epoll fd, so one reap per round covers both. Idle, the ring's eventfd wakes the runtime (no thread
// of ours): arriving data wakes this thread to run the recv's task work, and the completion that posts
// signals the eventfd. While traffic is dense, an empty round sleeps in the ring instead, for at most a tick.
// The exact ring setup, and why, is in zig/src/ring.zig; the design in docs/event-loop.md.
import { lib, runtime } from "../ffi/index.ts";
import { check, EINVAL, ENOSYS, EPERM, SyscallError } from "../ffi/errno.ts";
import { LAYOUT } from "../ffi/symbols.ts";
import type { DriverHost, ReadDriver, RoundEnd } from "./read-driver.ts";
import { EPOLL_READY_TOKEN, TICK_TOKEN } from "./tokens.ts";

/** completions[4i .. 4i+3] = token, generation, result (as u32), flags; for i < count. */
export type CompletionHandler = (count: number, completions: Uint32Array) => void;

/**
 * Provided receive buffers of a ring: how many, and how large. A request head fills only the start of one (the
 * kernel writes what came, so a larger buffer costs a small request nothing); a request body arrives in few
 * completions rather than one per 4 KiB page. The kernel hands them out in ring order, so every one is
 * touched in turn: a small ring keeps that memory warm.
 */
const RING_BUFFERS = 128;
export const RING_BUFFER_BYTES = 16 * 1024;
const RING_ENTRIES = 512;
const RING_COMPLETIONS_MAX = 1024;
/** IORING_CQE_F_MORE: the multishot request goes on after this completion. */
export const CQE_F_MORE = 2;

/** A new ring's handle, or -errno (ENOSYS, EPERM, EINVAL: this kernel or its policy does not allow it). */
export function createRing(): number {
  return lib.rp_ring_create(RING_ENTRIES, RING_BUFFERS, RING_BUFFER_BYTES, RING_COMPLETIONS_MAX);
}

/** Whether a failed createRing means "not here" (fall back to epoll) rather than a failure. */
export function ringUnavailable(errno: number): boolean {
  return errno === ENOSYS || errno === EPERM || errno === EINVAL;
}

/** 0 when this kernel (and seccomp policy) lets an engine read through io_uring, else the -errno of the attempt. */
export function probeRing(): number {
  const ring = lib.rp_ring_create(8, 1, 4096, 8);
  if (ring < 0) return ring;
  lib.rp_ring_destroy(ring);
  return 0;
}

const NO_COMPLETIONS = new Uint32Array(0);

/**
 * Ring path, while traffic is dense: once a drain had work in two rounds, an empty round sleeps in
 * io_uring_enter until the next completion instead of handing the thread back to the runtime; a tick (a
 * one-shot ring timeout of tickUs, armed when a sleep begins) ends the sleep, so the runtime's timers, I/O
 * and promises still get a turn at least that often. A tick with no traffic since it was armed ends the
 * stretch: the runtime's own wait takes over again. One tick per period, not a timer per sleep: arming and
 * cancelling one per sleep costs more than the sleep saves (docs/event-loop.md).
 */
export class RingDriver implements ReadDriver {
  /** The provided buffers (a completion's bytes are at (flags >>> 16) * RING_BUFFER_BYTES). */
  buffers: Uint8Array;
  /** Sleeps in the ring so far (tests, diagnostics). */
  sleeps = 0;
  #completions: Uint32Array;
  /** The eventfd the kernel signals when it posts completions while the loop is idle (reaps turn that off). */
  readonly #eventFd: number;
  /** The ring reported the epoll fd readable and epoll_wait has not come back empty since. */
  #epollReady = false;
  /** A tick is armed: a sleep in io_uring_enter ends by itself. */
  #ticking = false;
  /** Work came since the tick was armed. */
  #busy = false;
  /** The last round reaped a tick that ended a busy stretch: yield to the runtime before going on. */
  #ticked = false;
  /** A whole tick passed without work: go idle through the runtime until work comes again. */
  #quiet = true;
  /** Rounds of this drain that had work. */
  #workRounds = 0;

  /** Takes over `ring` (a createRing handle; the loop destroys it) and arms its poll of epollFd. */
  constructor(
    private readonly host: DriverHost,
    private readonly ring: number,
    private readonly epollFd: number,
    /** How long (µs) a sleep in the ring may last (REUSEPORT_TICK_US); 0: no sleeps. */
    private readonly tickUs: number,
    private readonly onCompletions: CompletionHandler,
  ) {
    this.buffers = new Uint8Array(runtime.viewNative(lib.rp_ring_buffers(ring), RING_BUFFERS * RING_BUFFER_BYTES));
    this.#completions = new Uint32Array(runtime.viewNative(lib.rp_ring_completions(ring), RING_COMPLETIONS_MAX * LAYOUT.ringCompletionBytes));
    this.#eventFd = check(lib.rp_ring_fd(ring), "io_uring_register");
    check(lib.rp_ring_poll(ring, epollFd, EPOLL_READY_TOKEN), "io_uring_enter");
  }

  wakeFd(): number {
    return this.#eventFd;
  }

  /** Queues a multishot recv of fd (submitted by the next reap). 0 or -errno. */
  recv(fd: number, token: number, generation: number): number {
    return lib.rp_ring_recv(this.ring, fd, token, generation);
  }

  /** Cancels fd's recvs, at once when `now` (see zig/src/ring.zig). 0 or -errno. */
  cancel(fd: number, now: boolean): number {
    return lib.rp_ring_cancel(this.ring, fd, now ? 1 : 0);
  }

  beginDrain(): void {
    this.#workRounds = 0;
  }

  round(): RoundEnd {
    const work = this.#reap();
    if (this.host.stopped) return "idle";
    if (this.#ticked) {
      this.#ticked = false;
      return "yield"; // still busy: the runtime's timers and I/O first, then go on
    }
    if (work > 0) {
      if (++this.#workRounds === 2) this.#quiet = false; // work came while we handled work: traffic is dense
      return "next";
    }
    if (this.tickUs > 0 && !this.#quiet && this.host.maySleep()) {
      this.#sleep();
      return "next";
    }
    // Work that came between the last reap and the eventfd's re-enabling: reap again.
    if (lib.rp_ring_idle(this.ring) > 0) return "next";
    return "idle"; // the re-enabled eventfd wakes the reader
  }

  /** Drops the views of the ring's memory; the loop destroys the ring right after. */
  detach(): void {
    this.buffers = new Uint8Array(0);
    this.#completions = NO_COMPLETIONS;
  }

  /**
   * A reap (no syscall when the kernel has nothing for us), its completions to the handler, and epoll_wait(0)
   * while the ring says the epoll fd is readable. Returns how many completions and events were handled.
   */
  #reap(): number {
    const reaped = lib.rp_ring_reap(this.ring);
    if (reaped < 0) throw new SyscallError("io_uring_enter", -reaped);
    const completions = this.#completions;
    let tick = false;
    for (let i = 0; i < reaped; i++) {
      const token = completions[4 * i]; // 4 u32s per completion (LAYOUT.ringCompletionBytes)
      if (token === TICK_TOKEN) tick = true; // the completion handler skips this token too
      if (token !== EPOLL_READY_TOKEN) continue;
      this.#epollReady = true; // the completion handler skips this token
      if (!(completions[4 * i + 3] & CQE_F_MORE)) lib.rp_ring_poll(this.ring, this.epollFd, EPOLL_READY_TOKEN);
    }
    if (reaped > 0) this.onCompletions(reaped, completions);
    let work = tick ? reaped - 1 : reaped;
    if (this.#epollReady && !this.host.stopped) {
      const count = this.host.dispatchEpoll();
      if (count === 0) this.#epollReady = false;
      work += count;
    }
    if (work > 0) this.#busy = true;
    if (tick) {
      this.#ticking = false;
      if (this.#busy) this.#ticked = true;
      else this.#quiet = true;
    }
    return work;
  }

  /** Sleeps in io_uring_enter until the next completion; the tick, armed first, bounds the sleep. */
  #sleep(): void {
    if (!this.#ticking) {
      check(lib.rp_ring_tick(this.ring, TICK_TOKEN, this.tickUs), "io_uring_enter");
      this.#ticking = true;
      this.#busy = false;
    }
    this.sleeps++;
    const rc = lib.rp_ring_wait(this.ring);
    if (rc < 0) throw new SyscallError("io_uring_enter", -rc);
    this.host.now = Date.now();
  }
}
