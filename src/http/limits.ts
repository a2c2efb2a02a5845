// Every bound and timeout of the HTTP engine, with defaults and the checks that relate them.
import { ConfigError } from "../errors.ts";

export interface Limits {
  /** Request line + headers; above it the answer is 431. */
  maxHeaderBytes: number;
  /** Header fields per request; above it the answer is 431. */
  maxHeaderCount: number;
  /** Request body; above it the answer is 413 (Bun.serve's maxRequestBodySize). */
  maxBodyBytes: number;
  /** From the first byte of a request head to its end; above it the answer is 408 and close. */
  headerTimeoutMs: number;
  /** A keep-alive connection with no request in flight is closed after this (Bun.serve's idleTimeout). */
  idleTimeoutMs: number;
  /** Open connections per worker; further ones are accepted and closed at once, and counted. */
  maxConnections: number;
  /** Requests answered per connection read batch before other connections get a turn. */
  maxPipelinedRequests: number;
  /** A response body left unread by the handler is read and discarded up to this, else the connection closes. */
  maxDiscardBytes: number;
  /** A connection's unsent output (what the socket would not take yet) above which its pipelined requests wait
   * until it drains (counted in outputPauses); the response being written is still written whole. */
  maxPendingOutputBytes: number;
  /** A response whose bytes the socket takes none of for this long is cut (sendTimeouts); nginx's send_timeout. */
  sendTimeoutMs: number;
  /** A request body that gets no byte for this long, while the server waits for one, is answered 408 and the
   * connection closes (bodyTimeouts); nginx's client_body_timeout. */
  bodyTimeoutMs: number;
}

export const LIMITS_DEFAULT: Readonly<Limits> = {
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 100,
  maxBodyBytes: 128 * 1024 * 1024,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 10_000,
  maxConnections: 100_000,
  maxPipelinedRequests: 128,
  maxDiscardBytes: 256 * 1024,
  maxPendingOutputBytes: 64 * 1024,
  // Between Bun (idleTimeout, 10 s, ends any silent socket) and nginx (send_timeout and client_body_timeout, 60 s).
  sendTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
};

function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
    throw new ConfigError(`limits.${name}`, `must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Merges user limits over the defaults; unknown names and bad values are errors. */
export function resolveLimits(user: Partial<Limits> | undefined): Limits {
  const limits: Limits = { ...LIMITS_DEFAULT };
  if (user === undefined) return limits;
  if (typeof user !== "object" || user === null) throw new ConfigError("limits", "must be an object");
  for (const [name, value] of Object.entries(user)) {
    if (!(name in LIMITS_DEFAULT)) {
      throw new ConfigError(`limits.${name}`, `is not a limit; known: ${Object.keys(LIMITS_DEFAULT).join(", ")}`);
    }
    if (value === undefined) continue;
    (limits as unknown as Record<string, number>)[name] = positiveInteger(name, value);
  }
  if (limits.maxHeaderBytes < 64) throw new ConfigError("limits.maxHeaderBytes", "must be at least 64");
  return limits;
}

/** How often the engine checks deadlines: a quarter of the shortest timeout, within [20 ms, 1 s]. */
export function sweepIntervalMs(limits: Limits): number {
  const shortest = Math.min(limits.headerTimeoutMs, limits.idleTimeoutMs, limits.sendTimeoutMs, limits.bodyTimeoutMs);
  return Math.min(1000, Math.max(20, Math.floor(shortest / 4)));
}

/** The engine's shared read buffer: a whole head must fit with room behind it (pipelined
 * requests, body bytes), and 64 KiB lets one read take a burst of pipelined requests. */
export function readBufferBytes(limits: Limits): number {
  return Math.max(2 * limits.maxHeaderBytes, 64 * 1024);
}
