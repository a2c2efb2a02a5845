// The epoll read path: one epoll_wait(0) per round; when rounds come back empty, a few turns of the runtime
// first, then the poller's wake thread is re-armed and writes to its pipe once the epoll fd is readable.
// Used where io_uring is not available or not wanted, and by UDP servers (docs/event-loop.md).
import { lib } from "../ffi/index.ts";
import { check } from "../ffi/errno.ts";
import type { DriverHost, ReadDriver, RoundEnd } from "./read-driver.ts";

/**
 * Empty rounds after a busy one before the wake thread is re-armed: each yields a runtime turn (promises,
 * timers) and polls again. Under keep-alive load the next requests often arrive within that turn, which
 * saves the hand-off from the wake thread through the runtime to JS; idle, a wake costs at most this many
 * extra polls. Two measured best (docs/event-loop.md, "Why not something else").
 */
const IDLE_SPINS_MAX = 2;

export class EpollDriver implements ReadDriver {
  /** Empty rounds since the last one that had events (see IDLE_SPINS_MAX). */
  #idleSpins = 0;

  constructor(private readonly host: DriverHost, private readonly poller: number) {}

  /** The wake pipe's read end; the first call starts the wake thread. */
  wakeFd(): number {
    return check(lib.rp_poller_wake_fd(this.poller), "pipe");
  }

  beginDrain(): void {}

  round(): RoundEnd {
    if (this.host.dispatchEpoll() > 0) {
      this.#idleSpins = 0;
      return "next";
    }
    if (this.#idleSpins < IDLE_SPINS_MAX) {
      this.#idleSpins++;
      return "yield";
    }
    this.#idleSpins = 0;
    // The one-shot re-arm wakes no thread unless an event is already there, and then it reports it at once.
    lib.rp_poller_arm(this.poller);
    return "idle";
  }
}
