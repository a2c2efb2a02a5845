// One worker's error lines on stderr, rate-limited: a flood of failing handlers or cut streams writes at most
// ERROR_LINES_PER_WINDOW lines per window, then one line saying how many more were left out.
import { runtime } from "../ffi/index.ts";

/** Lines written per window; the rest of the window's lines are only counted. */
export const ERROR_LINES_PER_WINDOW = 10;
export const ERROR_LOG_WINDOW_MS = 1000;

export class ErrorLog {
  /** Lines left out since this log began (each window's count is also told in one summary line). */
  suppressed = 0;
  private windowStart = -Infinity;
  private written = 0;
  private windowSuppressed = 0;
  private summaryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly linesPerWindow = ERROR_LINES_PER_WINDOW,
    private readonly windowMs = ERROR_LOG_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Writes `message` and `error` to stderr, unless this window already had its lines. */
  report(message: string, error: unknown): void {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.summarize();
      this.windowStart = now;
      this.written = 0;
    }
    if (this.written < this.linesPerWindow) {
      this.written++;
      console.error(message, error);
      return;
    }
    this.suppressed++;
    this.windowSuppressed++;
    // The summary comes at the window's end even if nothing else is reported after the flood.
    if (this.summaryTimer === null) {
      this.summaryTimer = setTimeout(() => this.summarize(), Math.max(0, this.windowStart + this.windowMs - now));
      runtime.unrefTimer(this.summaryTimer);
    }
  }

  /** Says how many lines the window left out (if any). */
  summarize(): void {
    if (this.summaryTimer !== null) clearTimeout(this.summaryTimer);
    this.summaryTimer = null;
    const count = this.windowSuppressed;
    if (count === 0) return;
    this.windowSuppressed = 0;
    console.error(`reuseport: ${count} more error lines suppressed (at most ${this.linesPerWindow} per ${this.windowMs} ms)`);
  }
}
