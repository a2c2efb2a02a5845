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

/** The engine's shared read buffer: a whole head must fit with room behind it (pipelined
 * requests, body bytes), and 64 KiB lets one read take a burst of pipelined requests. */
export function readBufferBytes(limits: Limits): number {
  return Math.max(2 * limits.maxHeaderBytes, 64 * 1024);
}
