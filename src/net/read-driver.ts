// The read path of a PollLoop behind one small interface, one file per path (as libxev keeps one file
// per backend): epoll-driver.ts (epoll_wait, and the poller's wake thread when idle) and ring-driver.ts
// (io_uring completions, the ring's eventfd when idle, sleeps in the ring while traffic is dense).
// The loop keeps what both share: the epoll set, the bounded drain, the wake reader and the native memory.

/** How a round ends: "next" polls again in the same drain, "yield" lets the runtime run before the next drain
 * (timers, promises, other I/O), "idle" ends the drain until the wake fd has input. */
export type RoundEnd = "next" | "yield" | "idle";

/** What a driver uses of its loop. */
export interface DriverHost {
  /** The drain's clock (Date.now() when it began); a driver that slept in the kernel reads the clock anew. */
  now: number;
  /** The loop closed during this drain (a handler closed it): the round must not touch the kernel again. */
  readonly stopped: boolean;
  /** epoll_wait(0), then the loop's event handler for what it found; returns how many events (0 once stopped). */
  dispatchEpoll(): number;
  /** Whether the thread may sleep in the kernel now: no JS work of the owner pending, no other loop in this thread. */
  maySleep(): boolean;
}

export interface ReadDriver {
  /** The fd the runtime's wake reader watches; called once, when the loop starts. */
  wakeFd(): number;
  /** A drain begins: its rounds follow. */
  beginDrain(): void;
  /** One round of a drain: what is ready goes to the loop's handlers. */
  round(): RoundEnd;
}
