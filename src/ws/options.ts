// Bun's `websocket:` handler object: its callbacks and limits, checked once, with Bun's defaults.
import { ConfigError } from "../errors.ts";
import type { DeflateOptions } from "./deflate.ts";
import type { SocketEvents, SocketSettings } from "./socket.ts";

/** Bun's WebSocketHandler: the socket's events (every one optional but message) and its limits. */
export interface WebSocketHandler<T = unknown> extends SocketEvents<T> {
  /** Largest message received, in bytes (default 16 MiB); a larger one closes with 1009. */
  maxPayloadLength?: number;
  /** Unsent bytes past which send() drops the message (returns 0; default 16 MiB). */
  backpressureLimit?: number;
  /** Close the connection instead of dropping, past backpressureLimit (default false). */
  closeOnBackpressureLimit?: boolean;
  /** Seconds without a received byte before the connection closes (default 120; 0: never). */
  idleTimeout?: number;
  /** Ping an idle connection once before closing it (default true). */
  sendPings?: boolean;
  /** ws.publish() also reaches the publishing socket (default false). */
  publishToSelf?: boolean;
  /** permessage-deflate (RFC 7692), off by default as in Bun. */
  perMessageDeflate?: boolean | (DeflateOptions & { compress?: boolean | string; decompress?: boolean | string });
}

/** The checked handler: callbacks (absent ones are no-ops) and numbers with units. */
export interface WebSocketSettings extends SocketSettings {
  readonly handler: WebSocketHandler<unknown> | null;
  /** 0: no idle timeout. */
  readonly idleTimeoutMs: number;
  /** null: no permessage-deflate. */
  readonly deflate: DeflateOptions | null;
}

const MAX_PAYLOAD_BYTES_DEFAULT = 16 * 1024 * 1024;
const BACKPRESSURE_BYTES_DEFAULT = 16 * 1024 * 1024;
const IDLE_TIMEOUT_S_DEFAULT = 120;
const KNOWN = new Set([
  "message", "open", "close", "drain", "ping", "pong", "maxPayloadLength", "backpressureLimit", "closeOnBackpressureLimit",
  "idleTimeout", "sendPings", "publishToSelf", "perMessageDeflate",
]);

/** The settings of a server without `websocket:` (Deno's upgradeWebSocket still works on it). */
export const DEFAULT_SETTINGS: WebSocketSettings = {
  handler: null, maxPayloadBytes: MAX_PAYLOAD_BYTES_DEFAULT, backpressureBytes: BACKPRESSURE_BYTES_DEFAULT,
  closeOnBackpressureLimit: false, idleTimeoutMs: IDLE_TIMEOUT_S_DEFAULT * 1000, sendPings: true, publishToSelf: false, deflate: null,
};

/** Checks `websocket:`; throws ConfigError naming the field. */
export function webSocketSettings(value: unknown): WebSocketSettings {
  if (value === undefined) return DEFAULT_SETTINGS;
  if (typeof value !== "object" || value === null) throw new ConfigError("websocket", `must be an object of handlers, got ${value === null ? "null" : typeof value}`);
  const handler = value as WebSocketHandler<unknown> & Record<string, unknown>;
  for (const key of Object.keys(handler)) if (!KNOWN.has(key)) throw new ConfigError(`websocket.${key}`, "is not a websocket option");
  if (typeof handler.message !== "function") throw new ConfigError("websocket.message", "must be a function (it receives every message)");
  for (const name of ["open", "close", "drain", "ping", "pong"]) {
    if (handler[name] !== undefined && typeof handler[name] !== "function") throw new ConfigError(`websocket.${name}`, `must be a function, got ${typeof handler[name]}`);
  }
  for (const name of ["closeOnBackpressureLimit", "sendPings", "publishToSelf"]) {
    if (handler[name] !== undefined && typeof handler[name] !== "boolean") throw new ConfigError(`websocket.${name}`, `must be a boolean, got ${typeof handler[name]}`);
  }
  const idle = positive(handler, "idleTimeout", IDLE_TIMEOUT_S_DEFAULT, true);
  return {
    handler,
    maxPayloadBytes: positive(handler, "maxPayloadLength", MAX_PAYLOAD_BYTES_DEFAULT, false),
    backpressureBytes: positive(handler, "backpressureLimit", BACKPRESSURE_BYTES_DEFAULT, false),
    closeOnBackpressureLimit: handler.closeOnBackpressureLimit ?? false,
    idleTimeoutMs: Math.round(idle * 1000),
    sendPings: handler.sendPings ?? true,
    publishToSelf: handler.publishToSelf ?? false,
    deflate: deflateOptions(handler.perMessageDeflate),
  };
}

function positive(handler: Record<string, unknown>, name: string, fallback: number, zeroAllowed: boolean): number {
  const value = handler[name];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (value === 0 && !zeroAllowed)) {
    throw new ConfigError(`websocket.${name}`, `must be a ${zeroAllowed ? "non-negative" : "positive"} number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function deflateOptions(value: WebSocketHandler["perMessageDeflate"]): DeflateOptions | null {
  if (value === undefined || value === false) return null;
  if (value === true) return {};
  if (typeof value !== "object" || value === null) throw new ConfigError("websocket.perMessageDeflate", `must be a boolean or an object, got ${typeof value}`);
  if (value.compress === false && value.decompress === false) return null;
  const { compress: _compress, decompress: _decompress, ...options } = value;
  return options;
}
