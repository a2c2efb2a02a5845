// Integrates an epoll set with the runtime's event loop without blocking it.
// A native wake thread watches the epoll fd and writes a byte to a pipe when it becomes
// readable; the runtime reads that pipe with its own async I/O, we drain epoll_wait(0)
// synchronously (bounded rounds, then yield so timers stay fair) and re-arm the thread.
// Why this shape, with numbers: docs/event-loop.md.
import { lib, runtime, type WakeReader } from "../ffi/index.ts";
import { check, SyscallError } from "../ffi/errno.ts";
import { EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD } from "./constants.ts";

export const POLL_EVENTS_MAX = 1024;
/** Drain rounds per wake before yielding to timers and promises. */
const DRAIN_ROUNDS_MAX = 64;
/**
 * Empty epoll_wait(0) results tolerated after a busy round before the wake thread is re-armed: each one
 * yields a setImmediate turn (promises, timers) and polls again. Under keep-alive load the next requests
 * usually arrive within that turn, which saves the wake-thread -> runtime -> JS hand-off; idle, a wake
 * costs at most this many extra polls.
 */
const IDLE_SPINS_MAX = 2;
/** Read once: a lazy global getter on Deno. */
const schedule: (callback: () => void) => unknown = globalThis.setImmediate;

export type EventHandler = (count: number, events: Uint32Array) => void;

export class PollLoop {
  readonly handle: number;
  readonly epollFd: number;
  /** events[2i] = epoll mask, events[2i+1] = token, for i < the count handed to the handler. */
  readonly events: Uint32Array;
  private reader: WakeReader | null = null;
  private handler: EventHandler | null = null;
  private stopped = false;
  /** Empty polls since the last round that had events (see IDLE_SPINS_MAX). */
  private idleSpins = 0;

  constructor(readonly eventsMax: number = POLL_EVENTS_MAX) {
    this.handle = check(lib.rp_poller_create(eventsMax), "epoll_create1");
    this.epollFd = check(lib.rp_poller_fd(this.handle), "epoll_create1");
    this.events = new Uint32Array(runtime.viewNative(lib.rp_poller_events(this.handle), eventsMax * 8));
  }

  add(fd: number, mask: number, token: number): void {
    const rc = lib.rp_epoll_ctl(this.epollFd, EPOLL_CTL_ADD, fd, mask >>> 0, token); // >>> 0: EPOLLET is bit 31
    if (rc < 0) throw new SyscallError("epoll_ctl(ADD)", -rc, `fd ${fd}`);
  }

  modify(fd: number, mask: number, token: number): void {
    const rc = lib.rp_epoll_ctl(this.epollFd, EPOLL_CTL_MOD, fd, mask >>> 0, token);
    if (rc < 0) throw new SyscallError("epoll_ctl(MOD)", -rc, `fd ${fd}`);
  }

  /** Removes fd; closing an fd removes it too, so callers about to close may skip this. */
  remove(fd: number): void {
    lib.rp_epoll_ctl(this.epollFd, EPOLL_CTL_DEL, fd, 0, 0);
  }

  /** One synchronous epoll_wait; returns the number of events in `events`. */
  wait(timeoutMs = 0): number {
    return check(lib.rp_poller_wait(this.handle, timeoutMs), "epoll_wait");
  }

  /** Starts delivering events to handler from the runtime's event loop. */
  start(handler: EventHandler): void {
    if (this.reader) throw new Error("PollLoop already started");
    this.handler = handler;
    const wakeFd = check(lib.rp_poller_wake_fd(this.handle), "pipe");
    this.reader = runtime.openWakeReader(wakeFd);
    void this.readWakes();
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
    for (let round = 0; round < DRAIN_ROUNDS_MAX; round++) {
      const count = this.wait(0);
      if (count === 0) {
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
      this.handler!(count, this.events);
      if (this.stopped) return;
    }
    // Still busy: let timers, promises and I/O callbacks run, then go on without a wake.
    schedule(this.drain);
  };

  /** Stops the wake thread (joined natively) and closes the epoll fd; registered fds stay open. */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.reader?.close();
    lib.rp_poller_destroy(this.handle);
  }
}
