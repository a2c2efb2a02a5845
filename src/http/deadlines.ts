// Per-connection deadlines, enforced by one sweep timer per engine: a head or a body that takes too
// long (408), a keep-alive connection idle too long, output the client takes nothing of. Each
// connection holds its own deadline fields; the sweep only runs while there are connections.
import { runtime } from "../ffi/index.ts";

export const enum Deadline {
  None = 0,
  /** A head has started arriving: 408 when it does not complete in time. */
  Head = 1,
  /** Nothing in flight: close quietly. */
  Idle = 2,
  /** A request body is awaited from the client: 408 (or, once answered, a quiet close) when no byte comes in time. */
  Body = 3,
}

/** What the sweep needs of a connection. */
export interface Timed {
  deadline: number;
  deadlineKind: Deadline;
  /** When output the socket takes nothing of is cut; 0 while none waits. */
  sendDeadline: number;
  /** Its deadline (deadlineKind, now reset to None) passed. */
  onDeadline(kind: Deadline): void;
  /** Its output made no progress for sendTimeoutMs. */
  onSendTimeout(): void;
  /** An idle deadline waits while an answer is still leaving (the wait starts once it is sent). */
  readonly isSending: boolean;
}

export class Deadlines {
  private timer: ReturnType<typeof setInterval> | null = null;

  /**
   * @param connections what to sweep (the engine's table, holes included)
   * @param now the round's clock (SendBatch.now)
   */
  constructor(
    private readonly connections: readonly (Timed | undefined)[],
    private readonly sweepEveryMs: number,
    private readonly sendTimeoutMs: number,
    private readonly now: () => number,
  ) {}

  set(conn: Timed, kind: Deadline, afterMs: number): void {
    conn.deadlineKind = kind;
    conn.deadline = this.now() + afterMs;
    this.start();
  }

  clear(conn: Timed): void {
    conn.deadlineKind = Deadline.None;
  }

  /** Output began to wait for the socket, or the socket took some: cut if it takes nothing for sendTimeoutMs. */
  armSend(conn: Timed): void {
    conn.sendDeadline = this.now() + this.sendTimeoutMs;
    this.start();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.sweep(), this.sweepEveryMs);
    runtime.unrefTimer(this.timer);
  }

  private sweep(): void {
    const now = Date.now();
    let open = 0;
    for (const conn of this.connections) {
      if (conn === undefined) continue;
      open++;
      if (conn.sendDeadline !== 0 && conn.sendDeadline <= now) {
        conn.onSendTimeout();
        continue;
      }
      const kind = conn.deadlineKind;
      if (kind === Deadline.None || conn.deadline > now) continue;
      if (kind === Deadline.Idle && conn.isSending) continue;
      conn.deadlineKind = Deadline.None;
      conn.onDeadline(kind);
    }
    if (open === 0) this.stop();
  }
}
