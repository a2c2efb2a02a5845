// Deno's idiom: upgradeWebSocket(request) → { socket, response }, the socket a standard WebSocket (events,
// send, close, binaryType, bufferedAmount) over a ServerWebSocket; answering with `response` completes it.
import { runtime } from "../ffi/index.ts";
import { requestOwner } from "../http/request.ts";
import type { UpgradeSource } from "../http/upgrade.ts";
import { checkUpgrade, type UpgradeRequest } from "./handshake.ts";
import type { ServerWebSocket, SocketEvents } from "./socket.ts";
import { ReadyState } from "./socket.ts";
import { type PendingUpgrade, WebSockets } from "./websockets.ts";

export interface UpgradeWebSocketOptions {
  /** The subprotocol to answer with; it must be one the client offered. */
  protocol?: string;
  /** Seconds without a received byte (a ping is sent first) before the socket closes; 0: never. Default: the server's. */
  idleTimeout?: number;
}

/** Deno.upgradeWebSocket for a request reuseport received: answer with `response` to complete it. */
export function upgradeWebSocket(request: Request, options: UpgradeWebSocketOptions = {}): { socket: WebSocketOverServer; response: Response } {
  const conn = requestOwner(request) as UpgradeSource | undefined;
  const sockets = conn?.upgrades;
  if (conn === undefined || !(sockets instanceof WebSockets)) throw new TypeError("upgradeWebSocket(): the request did not come from a reuseport server");
  if (sockets.source(request) === null) throw new TypeError("upgradeWebSocket(): the request was answered or upgraded already");
  const fields: UpgradeRequest = { key: "", protocols: [], extensions: null };
  const why = checkUpgrade(request, fields);
  if (why !== null) throw new TypeError(`upgradeWebSocket(): not a WebSocket upgrade request: ${why}`);
  const protocol = options.protocol ?? null;
  if (protocol !== null && !fields.protocols.includes(protocol)) {
    throw new TypeError(`upgradeWebSocket(): protocol ${JSON.stringify(protocol)} is not one the client offered (${fields.protocols.join(", ") || "none"})`);
  }
  const idle = options.idleTimeout;
  if (idle !== undefined && (typeof idle !== "number" || !(idle >= 0) || !Number.isFinite(idle))) {
    throw new TypeError(`upgradeWebSocket(): idleTimeout must be a non-negative number of seconds, got ${JSON.stringify(idle)}`);
  }
  const socket = new WebSocketOverServer(request.url, protocol ?? "");
  const response = new Response(null, { status: 200 });
  Object.defineProperty(response, "status", { value: 101 });
  const pending: PendingUpgrade = {
    fields, data: undefined, headers: [], events: socket.events, response, protocol,
    idleTimeoutMs: idle === undefined ? null : Math.round(idle * 1000), settle: (ws) => socket.attach(ws),
  };
  conn.pendingUpgrade = pending;
  return { socket, response };
}

/** Deno.upgradeWebSocket(request) on a request of ours does what upgradeWebSocket does (Server calls it). */
export function routeDenoUpgrades(): void {
  runtime.routeUpgradeWebSocket((request) => requestOwner(request) !== undefined, (request, options) => upgradeWebSocket(request, options));
}

type BinaryType = "blob" | "arraybuffer";

/** The standard WebSocket interface over a server-side connection. */
export class WebSocketOverServer extends EventTarget {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  private ws: ServerWebSocket<unknown> | null = null;
  private state: ReadyState = ReadyState.Connecting;
  private type: BinaryType = "blob";
  /** Sends behind a Blob wait for its bytes, so messages leave in the order they were sent. */
  private queue: Promise<void> | null = null;
  private queued = 0;

  constructor(readonly url: string, readonly protocol: string) {
    super();
  }

  /** The negotiated extensions (permessage-deflate's parameters), "" when none. */
  get extensions(): string {
    return this.ws?.extensions ?? "";
  }

  get readyState(): number {
    return this.state;
  }

  get binaryType(): BinaryType {
    return this.type;
  }

  set binaryType(value: BinaryType) {
    if (value === "blob" || value === "arraybuffer") this.type = value;
  }

  get bufferedAmount(): number {
    return (this.ws?.getBufferedAmount() ?? 0) + this.queued;
  }

  /** What the ServerWebSocket tells it. */
  readonly events: SocketEvents<unknown> = {
    open: () => {
      this.state = ReadyState.Open;
      this.fire("open", new Event("open"));
    },
    message: (_ws, data) => {
      const payload = typeof data === "string" ? data
        : this.type === "arraybuffer" ? (data as Uint8Array).slice().buffer : new Blob([data as Uint8Array<ArrayBuffer>]);
      this.fire("message", new MessageEvent("message", { data: payload }));
    },
    close: (ws, code, reason) => {
      this.state = ReadyState.Closed;
      const wasClean = ws.closedCleanly;
      if (!wasClean) this.fire("error", new Event("error"));
      this.fire("close", new CloseEvent("close", { code, reason, wasClean }));
    },
  };

  /** The upgrade completed (ws), or the handler answered with another Response (null). */
  attach(ws: ServerWebSocket<unknown> | null): void {
    if (ws === null) {
      this.state = ReadyState.Closed;
      this.fire("error", new Event("error"));
      this.fire("close", new CloseEvent("close", { code: 1006, reason: "the handler did not answer with the upgrade response", wasClean: false }));
      return;
    }
    ws.binaryType = "uint8array";
    this.ws = ws;
  }

  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void {
    if (this.state === ReadyState.Connecting) throw new DOMException("WebSocket is not open yet", "InvalidStateError");
    if (this.state !== ReadyState.Open || this.ws === null) return;
    const ws = this.ws;
    if (data instanceof Blob || this.queue !== null) {
      this.sendLater(ws, data);
      return;
    }
    ws.send(data as string | ArrayBufferView | ArrayBuffer);
  }

  private sendLater(ws: ServerWebSocket<unknown>, data: string | ArrayBufferLike | ArrayBufferView | Blob): void {
    const size = typeof data === "string" ? data.length : data instanceof Blob ? data.size : (data as ArrayBuffer).byteLength;
    this.queued += size;
    const bytes = data instanceof Blob ? data.arrayBuffer() : Promise.resolve(data);
    const previous = this.queue ?? Promise.resolve();
    const next: Promise<void> = previous.then(() => bytes).then((ready) => {
      this.queued -= size;
      if (this.queue === next) this.queue = null;
      ws.send(ready as string | ArrayBuffer);
    });
    this.queue = next;
  }

  close(code?: number, reason = ""): void {
    if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
      throw new DOMException(`close code ${code} must be 1000 or 3000-4999`, "InvalidAccessError");
    }
    if (new TextEncoder().encode(reason).byteLength > 123) throw new DOMException("a close reason is at most 123 bytes", "SyntaxError");
    if (this.state >= ReadyState.Closing) return;
    this.state = ReadyState.Closing;
    this.ws?.close(code ?? 1000, reason);
  }

  private fire(type: "open" | "message" | "close" | "error", event: Event): void {
    const handler = this[`on${type}`] as ((event: Event) => void) | null;
    if (typeof handler === "function") handler.call(this, event);
    this.dispatchEvent(event);
  }
}
